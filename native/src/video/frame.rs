//! The two kinds of picture that flow through the pipeline: raw [`Frame`]s (from a
//! source, into an encoder) and [`EncodedFrame`]s (H.264, out of an encoder or an
//! encoded source, shared by every viewer).

use bytes::Bytes;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A raw picture in planar I420 (Y, then U, then V, no padding).
#[derive(Debug, Clone)]
pub struct Frame {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// The three planes back to back.
    pub data: Vec<u8>,
    /// Counts frames from the source's start.
    pub number: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Capture time on the monotonic clock.
    pub captured: Instant,
}

impl Frame {
    /// A black frame of the given size.
    pub fn new(width: usize, height: usize) -> Self {
        let luma = width * height;
        let mut data = vec![16u8; luma + luma / 2];
        data[luma..].fill(128);
        Self {
            width,
            height,
            data,
            number: 0,
            capture_us: 0,
            captured: Instant::now(),
        }
    }

    /// The luma plane.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.width * self.height]
    }

    /// The blue-difference plane.
    pub fn u(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.data[luma..luma + luma / 4]
    }

    /// The red-difference plane.
    pub fn v(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.data[luma + luma / 4..]
    }
}

/// One encoded picture, shared by every viewer.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// H.264 Annex B bytes (start codes included).
    pub data: Bytes,
    /// An IDR picture a decoder can start from (SPS/PPS included).
    pub keyframe: bool,
    /// The source frame number.
    pub number: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Capture time on the monotonic clock.
    pub captured: Instant,
    /// Its temporal layer: 0 (the base, which every viewer gets) or 1 (a frame no
    /// other frame refers to, skipped for a viewer on a slow link).
    pub temporal_layer: u8,
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

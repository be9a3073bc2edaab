//! What the hardware hands back: which frame a coded buffer belongs to
//! ([`InFlight`]), which bytes of it are the picture, and the H.264 clean-up
//! ([`CodedOutput`]). Pure, unit-tested.

use super::H264;
use crate::video::h264::{self, ParameterSets};
use std::collections::VecDeque;
use std::time::Instant;

/// What the stream knows about a frame while the hardware holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Source frame number.
    pub number: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Capture time on the monotonic clock.
    pub captured: Instant,
}

/// Frames queued on the encoder, by the timestamp they were queued with.
///
/// Stateful encoders copy each raw picture's timestamp to its coded picture. The
/// timestamp is the frame's age since the encoder started, in microseconds, forced to
/// grow by at least 1 µs per frame, so it is unique and real time for drivers whose rate
/// control reads it.
#[derive(Debug)]
pub struct InFlight {
    started: Instant,
    last: u64,
    frames: VecDeque<(u64, FrameInfo)>,
}

impl InFlight {
    /// An empty list; timestamps count from `started`.
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            last: 0,
            frames: VecDeque::new(),
        }
    }

    /// The timestamp, in microseconds, for a frame captured at `captured`.
    pub fn stamp(&mut self, captured: Instant) -> u64 {
        let age = captured.saturating_duration_since(self.started).as_micros() as u64;
        let ts = age.max(self.last + 1);
        self.last = ts;
        ts
    }

    /// Records a frame queued with timestamp `ts` (from [`InFlight::stamp`]).
    pub fn push(&mut self, ts: u64, frame: FrameInfo) {
        self.frames.push_back((ts, frame));
    }

    /// The frame a coded picture with timestamp `ts` came from, and how many older frames
    /// the encoder dropped without a picture (they are forgotten). An unknown timestamp
    /// (a second buffer for a frame already matched, a driver's zero) matches nothing:
    /// guessing would shift every later picture onto the wrong frame.
    pub fn take(&mut self, ts: u64) -> Option<(FrameInfo, usize)> {
        let i = self.frames.iter().position(|(t, _)| *t == ts)?;
        let frame = self.frames[i].1;
        self.frames.drain(..=i);
        Some((frame, i))
    }

    /// Whether the frame queued with `ts` still waits for its picture.
    pub fn contains(&self, ts: u64) -> bool {
        self.frames.iter().any(|(t, _)| *t == ts)
    }

    /// Frames waiting for their picture.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Turns what the encoder hands back into pictures fit to send.
///
/// For H.264: a buffer with only parameter sets (drivers that send the stream header
/// apart) is remembered, not sent; SPS/PPS are put in front of every IDR that lacks
/// them, so a viewer can join at any keyframe; keyframes are read from the NAL units.
/// For other codecs the driver's keyframe flag is used.
#[derive(Debug)]
pub struct CodedOutput {
    codec: [u8; 4],
    params: ParameterSets,
}

impl CodedOutput {
    /// Clean-up for `codec`.
    pub fn new(codec: [u8; 4]) -> Self {
        Self {
            codec,
            params: ParameterSets::default(),
        }
    }

    /// The picture in `bytes` and whether it is a keyframe; `None` when the buffer holds
    /// no picture.
    pub fn picture(&mut self, bytes: &[u8], keyframe_flag: bool) -> Option<(Vec<u8>, bool)> {
        if bytes.is_empty() {
            return None;
        }
        if self.codec != H264 {
            return Some((bytes.to_vec(), keyframe_flag));
        }
        let au = self.params.complete(bytes);
        let has_slice = h264::split_nals(&au)
            .iter()
            .any(|n| matches!(h264::nal_type(n), h264::NAL_SLICE | h264::NAL_IDR));
        if !has_slice {
            return None;
        }
        let keyframe = h264::is_keyframe(&au);
        Some((au, keyframe))
    }
}

/// The bytes of a coded buffer plane, `[data_offset, bytesused)` (V4L2's `bytesused`
/// counts the offset), or `None` when the driver's numbers do not fit the buffer.
pub(super) fn payload(data_offset: u32, bytes_used: u32, length: u32) -> Option<(usize, usize)> {
    (data_offset <= bytes_used && bytes_used <= length)
        .then_some((data_offset as usize, bytes_used as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn coded_payload_bounds_come_from_the_driver_and_are_checked() {
        assert_eq!(payload(0, 4000, 65_536), Some((0, 4000)));
        // bytesused counts data_offset: the picture is bytes 64..4000.
        assert_eq!(payload(64, 4000, 65_536), Some((64, 4000)));
        assert_eq!(payload(0, 0, 65_536), Some((0, 0)));
        // A driver's nonsense is refused, never sliced.
        assert_eq!(payload(5000, 4000, 65_536), None);
        assert_eq!(payload(0, 70_000, 65_536), None);
    }

    #[test]
    fn in_flight_frames_are_matched_by_timestamp_and_dropped_ones_forgotten() {
        let start = Instant::now();
        let mut flight = InFlight::new(start);
        let info = |number| FrameInfo {
            number,
            capture_us: 1_000 + u64::from(number),
            captured: start + Duration::from_millis(u64::from(number) * 33),
        };
        let ts: Vec<u64> = (0..4)
            .map(|n| {
                let ts = flight.stamp(info(n).captured);
                flight.push(ts, info(n));
                ts
            })
            .collect();
        assert_eq!(
            ts,
            [1, 33_000, 66_000, 99_000],
            "unique, real-time timestamps"
        );
        // The encoder skipped frame 0 and returns frame 1: frame 0 is forgotten.
        assert_eq!(flight.take(ts[1]), Some((info(1), 1)));
        assert!(!flight.contains(ts[0]) && flight.contains(ts[2]));
        // A timestamp the robot never gave (a driver's 0, a second buffer for frame 1)
        // matches nothing and leaves the others waiting for their own pictures.
        assert_eq!(flight.take(0), None);
        assert_eq!(flight.take(ts[1]), None);
        assert_eq!(flight.len(), 2);
        assert_eq!(flight.take(ts[2]), Some((info(2), 0)));
        assert_eq!(flight.take(ts[3]), Some((info(3), 0)));
        assert!(flight.is_empty());
        // Two frames captured at the same instant still get distinct timestamps.
        let a = flight.stamp(start);
        let b = flight.stamp(start);
        assert!(b > a);
    }

    /// What a hardware encoder returns, made by a real H.264 encoder: a buffer of
    /// SPS+PPS on its own, then an IDR without them, then P pictures.
    #[test]
    fn h264_from_the_hardware_is_made_joinable_at_every_keyframe() {
        let pictures = crate::video::encoder::recorded_pictures(6, 4);
        let nals = |au: &[u8]| -> Vec<u8> {
            h264::split_nals(au)
                .iter()
                .map(|n| h264::nal_type(n))
                .collect()
        };
        // Split the first IDR the way header-apart drivers do.
        let first = &pictures[0].data;
        let units = h264::split_nals(first);
        let annexb = |types: &[u8]| -> Vec<u8> {
            units
                .iter()
                .filter(|n| types.contains(&h264::nal_type(n)))
                .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
                .collect()
        };
        let header = annexb(&[h264::NAL_SPS, h264::NAL_PPS]);
        let bare_idr = annexb(&[h264::NAL_IDR]);

        let mut out = CodedOutput::new(H264);
        assert_eq!(
            out.picture(&header, false),
            None,
            "a header is not a picture"
        );
        assert_eq!(out.picture(&[], false), None);
        let (idr, key) = out.picture(&bare_idr, false).unwrap();
        assert!(
            key,
            "keyframes are read from the stream, not the driver's flag"
        );
        assert_eq!(nals(&idr), [7, 8, 5]);
        let (p, key) = out.picture(&pictures[1].data, true).unwrap();
        assert!(!key);
        assert_eq!(nals(&p), [1]);
        // A later IDR that already has its parameter sets is passed as is.
        let (idr, key) = out.picture(&pictures[4].data, false).unwrap();
        assert!(key && pictures[4].keyframe);
        assert_eq!(idr, pictures[4].data.to_vec());

        // Other codecs: bytes as they are, keyframe from the driver.
        let mut fwht = CodedOutput::new(*b"FWHT");
        assert_eq!(fwht.picture(b"OOOW", true), Some((b"OOOW".to_vec(), true)));
    }
}

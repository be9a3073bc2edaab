//! Video from the browsers: each peer's camera, decoded on the robot to frames the
//! robot's program subscribes to (RTCBot's "video from the browser").
//!
//! A peer's track is depacketised by the peer into H.264 access units and handed to
//! its [`CameraDecoder`]: a thread of its own with an openh264 decoder behind a
//! bounded queue of [`DECODE_QUEUE`] units (a decoder that cannot keep up drops
//! units, counted, and asks for a keyframe). Decoded pictures go to every subscriber
//! ([`BrowserVideo::subscribe`]) as I420 [`Frame`]s; one that falls behind loses the
//! oldest. A unit that does not decode is counted and skipped, and the browser is
//! asked for a keyframe ([`CameraDecoder::wants_keyframe`]).

/// A peer's id, as the robot numbers them (`crate::control::PeerId`).
pub type PeerId = u64;

use super::frame::Frame;
use bytes::Bytes;
use openh264::formats::YUVSource;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::broadcast;

/// Access units waiting for a peer's decoder at most.
pub const DECODE_QUEUE: usize = 8;
/// Frames each subscriber may fall behind by.
pub const SUBSCRIBER_FRAMES: usize = 4;

/// One decoded picture from a peer's camera.
#[derive(Debug, Clone)]
pub struct BrowserFrame {
    /// Whose camera.
    pub peer: PeerId,
    /// The picture, I420 (`capture_us` is when it was decoded).
    pub frame: Arc<Frame>,
    /// When its last packet arrived.
    pub received: Instant,
    /// How long decoding it took, microseconds.
    pub decode_us: u64,
}

/// Counters of browsers' video since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrowserVideoCounters {
    /// Access units received.
    pub units_received: u64,
    /// Pictures decoded.
    pub frames_decoded: u64,
    /// Units that did not decode, or were dropped before decoding.
    pub decode_errors: u64,
    /// Time spent decoding, nanoseconds.
    pub decode_ns: u64,
    /// The last picture's size.
    pub width: u32,
    /// The last picture's height.
    pub height: u32,
}

#[derive(Default)]
struct Counters {
    units_received: AtomicU64,
    frames_decoded: AtomicU64,
    decode_errors: AtomicU64,
    decode_ns: AtomicU64,
    width: AtomicU32,
    height: AtomicU32,
}

struct Inner {
    frames: broadcast::Sender<Arc<BrowserFrame>>,
    counters: Counters,
}

/// Where browsers' decoded camera pictures go; cheap to clone.
#[derive(Clone)]
pub struct BrowserVideo {
    inner: Arc<Inner>,
}

impl Default for BrowserVideo {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                frames: broadcast::channel(SUBSCRIBER_FRAMES).0,
                counters: Counters::default(),
            }),
        }
    }
}

impl BrowserVideo {
    /// Every peer's decoded camera pictures from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BrowserFrame>> {
        self.inner.frames.subscribe()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> BrowserVideoCounters {
        let c = &self.inner.counters;
        BrowserVideoCounters {
            units_received: c.units_received.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            decode_ns: c.decode_ns.load(Ordering::Relaxed),
            width: c.width.load(Ordering::Relaxed),
            height: c.height.load(Ordering::Relaxed),
        }
    }

    /// A decoder for `peer`'s camera; its thread ends when it is dropped.
    pub fn decoder(&self, peer: PeerId) -> Result<CameraDecoder, String> {
        let mut decoder =
            openh264::decoder::Decoder::new().map_err(|e| format!("the openh264 decoder: {e}"))?;
        let (tx, rx) = mpsc::sync_channel::<(Bytes, Instant)>(DECODE_QUEUE);
        let wants_keyframe = Arc::new(AtomicBool::new(false));
        let video = self.clone();
        let flag = wants_keyframe.clone();
        std::thread::Builder::new()
            .name(format!("camera-in-{peer}"))
            .spawn(move || {
                while let Ok((unit, received)) = rx.recv() {
                    video.decode(peer, &mut decoder, &unit, received, &flag);
                }
            })
            .map_err(|e| format!("a decoder thread: {e}"))?;
        Ok(CameraDecoder {
            units: tx,
            video: self.clone(),
            wants_keyframe,
        })
    }

    fn decode(
        &self,
        peer: PeerId,
        decoder: &mut openh264::decoder::Decoder,
        unit: &[u8],
        received: Instant,
        wants_keyframe: &AtomicBool,
    ) {
        let c = &self.inner.counters;
        let started = Instant::now();
        let picture = match decoder.decode(unit) {
            Ok(Some(picture)) => picture,
            // Parameter sets alone, or a picture still to come.
            Ok(None) => return,
            Err(err) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                wants_keyframe.store(true, Ordering::Relaxed);
                tracing::debug!(peer, "a browser camera unit did not decode: {err}");
                return;
            }
        };
        let (width, height) = picture.dimensions();
        let mut frame = Frame::new(width, height);
        let (ys, us, vs) = picture.strides();
        copy_plane(&mut frame.data[..width * height], picture.y(), ys, width);
        let luma = width * height;
        let chroma = luma / 4;
        copy_plane(
            &mut frame.data[luma..luma + chroma],
            picture.u(),
            us,
            width / 2,
        );
        copy_plane(&mut frame.data[luma + chroma..], picture.v(), vs, width / 2);
        let elapsed = started.elapsed();
        frame.capture_us = super::now_us();
        c.decode_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        c.frames_decoded.fetch_add(1, Ordering::Relaxed);
        c.width.store(width as u32, Ordering::Relaxed);
        c.height.store(height as u32, Ordering::Relaxed);
        let _ = self.inner.frames.send(Arc::new(BrowserFrame {
            peer,
            frame: Arc::new(frame),
            received,
            decode_us: elapsed.as_micros() as u64,
        }));
    }
}

/// Copies a plane of `width`-byte rows from a strided buffer into a packed one.
fn copy_plane(out: &mut [u8], plane: &[u8], stride: usize, width: usize) {
    if width == 0 {
        return;
    }
    for (row, dst) in out.chunks_exact_mut(width).enumerate() {
        let start = row * stride;
        if let Some(src) = plane.get(start..start + width) {
            dst.copy_from_slice(src);
        }
    }
}

/// One peer's camera decoder (see the module docs).
pub struct CameraDecoder {
    units: mpsc::SyncSender<(Bytes, Instant)>,
    video: BrowserVideo,
    wants_keyframe: Arc<AtomicBool>,
}

impl CameraDecoder {
    /// Queues one access unit; a full queue drops it (counted) and asks for a
    /// keyframe.
    pub fn push(&self, unit: Bytes, received: Instant) {
        let c = &self.video.inner.counters;
        c.units_received.fetch_add(1, Ordering::Relaxed);
        if self.units.try_send((unit, received)).is_err() {
            c.decode_errors.fetch_add(1, Ordering::Relaxed);
            self.wants_keyframe.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the browser should be asked for a keyframe (a unit did not decode or
    /// was dropped); reading it clears it.
    pub fn wants_keyframe(&self) -> bool {
        self.wants_keyframe.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::encoder::VideoEncoder;

    #[tokio::test]
    async fn units_decode_to_frames_and_garbage_asks_for_a_keyframe() {
        let video = BrowserVideo::default();
        let mut frames = video.subscribe();
        let decoder = video.decoder(7).unwrap();
        decoder.push(
            Bytes::from_static(&[0, 0, 0, 1, 0x65, 0xff, 0x00, 0x13]),
            Instant::now(),
        );
        let mut encoder =
            crate::video::encoder::OpenH264Encoder::new(crate::video::EncoderSettings {
                bitrate_kbps: 500,
                fps: 30,
                keyframe_interval: 60,
                temporal_layers: 1,
            })
            .unwrap();
        let source = Frame::new(320, 240);
        let unit = encoder.encode(&source, true).unwrap().unwrap();
        decoder.push(unit.data.clone(), Instant::now());
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), frames.recv())
            .await
            .expect("a decoded frame within 10 s")
            .unwrap();
        assert_eq!((got.frame.width, got.frame.height, got.peer), (320, 240, 7));
        let c = video.counters();
        assert_eq!((c.units_received, c.frames_decoded, c.width), (2, 1, 320));
        assert_eq!(c.decode_errors, 1, "the garbage unit");
        assert!(decoder.wants_keyframe());
        assert!(!decoder.wants_keyframe(), "reading clears it");
    }
}

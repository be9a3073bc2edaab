//! The robot's video as decoded pictures: what RTCBot's Python client hands a desktop
//! program (a frame for OpenCV), here I420 planes with RGB on demand.
//!
//! - [`PictureDecoder`]: H.264 access units → [`Picture`]s (openh264). A unit that
//!   does not decode is a [`PictureError::BadUnit`] naming it; the decoder goes on
//!   with the next (and is made anew if openh264 ever panics);
//! - [`Picture`]: one decoded picture: its planes, RGB, size, and the test pattern's
//!   [`Stamp`] with the capture-to-decode latency when the picture carries one;
//! - [`PictureStream`]: the client's video decoded on a thread of its own into a
//!   bounded queue that drops the oldest pictures when the reader is slow
//!   ([`RobotClient::pictures`](super::RobotClient::pictures)).

use super::latest::Latest;
use super::ReceivedFrame;
use crate::video::Frame;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use shared_protocol::Stamp;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;

/// Decoded pictures a [`PictureStream`] keeps for a slow reader (older ones are dropped).
pub const PICTURE_QUEUE: usize = 4;

/// Why a picture could not be had.
#[derive(Debug, Error)]
pub enum PictureError {
    /// openh264 could not start (or start again).
    #[error("the openh264 decoder did not start: {0}")]
    Decoder(String),
    /// One access unit did not decode; the next ones still may.
    #[error("access unit {unit} ({bytes} bytes) did not decode: {reason}")]
    BadUnit {
        /// Which unit, counting from 1 since the decoder started.
        unit: u64,
        /// Its size.
        bytes: usize,
        /// What openh264 said.
        reason: String,
    },
    /// The decoding thread could not start.
    #[error("the decoding thread did not start: {0}")]
    Thread(String),
}

/// One decoded picture, I420 (Y, then U, then V, each packed without padding).
#[derive(Debug, Clone)]
pub struct Picture {
    /// The planes; its number and capture time are the stamp's when there is one.
    frame: Frame,
    stamp: Option<Stamp>,
    received: Instant,
    decoded: Instant,
    decoded_wall_us: u64,
}

impl Picture {
    /// A picture from packed I420 planes (`width` and `height` even); `None` when the
    /// data does not have the size's length.
    pub fn from_i420(width: usize, height: usize, yuv: Vec<u8>) -> Option<Self> {
        let luma = width.checked_mul(height)?;
        if width % 2 != 0 || height % 2 != 0 || yuv.len() != luma + luma / 2 {
            return None;
        }
        let stamp = Stamp::read(width, height, |x, y| yuv[y * width + x]);
        let now = Instant::now();
        let frame = Frame {
            width,
            height,
            data: yuv,
            number: stamp.map_or(0, |s| s.frame),
            capture_us: stamp.map_or(0, |s| s.capture_us),
            captured: now,
        };
        Some(Self {
            frame,
            stamp,
            received: now,
            decoded: now,
            decoded_wall_us: crate::video::now_us(),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.frame.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.frame.height
    }

    /// The picture as the robot's own raw [`Frame`] (to feed a pipeline, say).
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The three planes back to back.
    pub fn i420(&self) -> &[u8] {
        &self.frame.data
    }

    /// The luma plane, `width` bytes a row.
    pub fn y(&self) -> &[u8] {
        self.frame.y()
    }

    /// The U plane, `width / 2` bytes a row.
    pub fn u(&self) -> &[u8] {
        self.frame.u()
    }

    /// The V plane, `width / 2` bytes a row.
    pub fn v(&self) -> &[u8] {
        self.frame.v()
    }

    /// The picture as RGB, 3 bytes a pixel, row after row.
    pub fn rgb(&self) -> Vec<u8> {
        let mut out = vec![0; self.width() * self.height() * 3];
        self.write_rgb(&mut out);
        out
    }

    /// Writes the picture as RGB into `out` (3 bytes a pixel); a shorter `out` gets
    /// the rows that fit.
    pub fn write_rgb(&self, out: &mut [u8]) {
        let (w, cw) = (self.width(), self.width() / 2);
        let (y, u, v) = (self.y(), self.u(), self.v());
        for (row, line) in out.chunks_exact_mut(w * 3).take(self.height()).enumerate() {
            let (luma, chroma) = (&y[row * w..][..w], (row / 2) * cw);
            for (x, px) in line.chunks_exact_mut(3).enumerate() {
                let c = chroma + x / 2;
                px.copy_from_slice(&yuv_to_rgb(luma[x], u[c], v[c]));
            }
        }
    }

    /// The colour at (`x`, `y`), or `None` outside the picture.
    pub fn rgb_at(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        let width = self.width();
        if x >= width || y >= self.height() {
            return None;
        }
        let c = (y / 2) * (width / 2) + x / 2;
        Some(yuv_to_rgb(
            self.y()[y * width + x],
            self.u()[c],
            self.v()[c],
        ))
    }

    /// The frame stamp (frame number, capture time) when the picture carries one, as
    /// the robot's test pattern paints it.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp
    }

    /// From capture (the stamp's time) to decoded here, when the picture carries a
    /// stamp; the robot's clock and this one must agree (the same machine, or NTP).
    pub fn latency(&self) -> Option<Duration> {
        let stamp = self.stamp?;
        Some(Duration::from_micros(
            self.decoded_wall_us.saturating_sub(stamp.capture_us),
        ))
    }

    /// When the last packet of its access unit arrived.
    pub fn received(&self) -> Instant {
        self.received
    }

    /// When it was decoded.
    pub fn decoded(&self) -> Instant {
        self.decoded
    }

    /// When it was decoded, microseconds since the Unix epoch.
    pub fn decoded_wall_us(&self) -> u64 {
        self.decoded_wall_us
    }
}

/// One pixel from video-range BT.601 Y'CbCr (what openh264 and the robot's cameras
/// produce) to full-range RGB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// Copies a strided plane of `rows` rows of `width` bytes into a packed one;
/// `false` when the plane is shorter than its size says.
fn pack_plane(out: &mut Vec<u8>, plane: &[u8], stride: usize, width: usize, rows: usize) -> bool {
    for row in 0..rows {
        match plane.get(row * stride..row * stride + width) {
            Some(line) => out.extend_from_slice(line),
            None => return false,
        }
    }
    true
}

/// H.264 access units in, [`Picture`]s out (openh264).
pub struct PictureDecoder {
    decoder: Decoder,
    units: u64,
}

impl PictureDecoder {
    /// A new decoder.
    pub fn new() -> Result<Self, PictureError> {
        Ok(Self {
            decoder: Decoder::new().map_err(|e| PictureError::Decoder(e.to_string()))?,
            units: 0,
        })
    }

    /// Access units given so far.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Decodes one Annex B access unit that arrived at `received`: `Ok(None)` when it
    /// made no picture (parameter sets alone), an error naming it when it does not
    /// decode. Never panics: a decoder that panics is replaced by a new one (which
    /// then waits for the next keyframe).
    pub fn decode(
        &mut self,
        unit: &[u8],
        received: Instant,
    ) -> Result<Option<Picture>, PictureError> {
        self.units += 1;
        let bad = |reason: String| PictureError::BadUnit {
            unit: self.units,
            bytes: unit.len(),
            reason,
        };
        let decoder = &mut self.decoder;
        let result = catch_unwind(AssertUnwindSafe(|| match decoder.decode(unit) {
            Ok(Some(yuv)) => Ok(Some(packed(&yuv))),
            Ok(None) => Ok(None),
            Err(err) => Err(err.to_string()),
        }));
        let (width, height, yuv) = match result {
            Ok(Ok(Some(Some(picture)))) => picture,
            Ok(Ok(Some(None))) => return Err(bad("openh264 gave a malformed picture".into())),
            Ok(Ok(None)) => return Ok(None),
            Ok(Err(reason)) => return Err(bad(reason)),
            Err(_) => {
                self.decoder = Decoder::new().map_err(|e| PictureError::Decoder(e.to_string()))?;
                return Err(bad("openh264 panicked; the decoder was restarted".into()));
            }
        };
        let mut picture = Picture::from_i420(width, height, yuv)
            .ok_or_else(|| bad(format!("openh264 gave a {width}x{height} picture")))?;
        picture.received = received;
        Ok(Some(picture))
    }
}

/// The decoded picture's size and packed planes; `None` when its planes are shorter
/// than its size says (or the size is odd).
fn packed(yuv: &openh264::decoder::DecodedYUV<'_>) -> Option<(usize, usize, Vec<u8>)> {
    let (w, h) = yuv.dimensions();
    if w % 2 != 0 || h % 2 != 0 {
        return None;
    }
    let (ys, us, vs) = yuv.strides();
    let mut out = Vec::with_capacity(w * h * 3 / 2);
    let whole = pack_plane(&mut out, yuv.y(), ys, w, h)
        && pack_plane(&mut out, yuv.u(), us, w / 2, h / 2)
        && pack_plane(&mut out, yuv.v(), vs, w / 2, h / 2);
    whole.then_some((w, h, out))
}

/// The robot's video as decoded pictures, oldest first; a slow reader loses the
/// oldest (see [`dropped`](Self::dropped)). A unit that does not decode comes as an
/// error and the stream goes on; it ends (`None`) when the video does.
pub struct PictureStream {
    queue: Arc<Latest<Result<Picture, PictureError>>>,
}

impl PictureStream {
    /// Decodes `frames` on a thread of its own, keeping at most `capacity` pictures
    /// for the reader (at least one). The thread ends when the frames end or this
    /// stream is dropped.
    pub fn start(
        mut frames: mpsc::Receiver<ReceivedFrame>,
        capacity: usize,
    ) -> Result<Self, PictureError> {
        let mut decoder = PictureDecoder::new()?;
        let queue = Arc::new(Latest::new(capacity));
        let writer = queue.clone();
        std::thread::Builder::new()
            .name("pictures".into())
            .spawn(move || {
                while let Some(frame) = frames.blocking_recv() {
                    // Only this thread and the reader hold it: the reader is gone.
                    if Arc::strong_count(&writer) == 1 {
                        break;
                    }
                    match decoder.decode(&frame.data, frame.received) {
                        Ok(Some(picture)) => writer.push(Ok(picture)),
                        Ok(None) => {}
                        Err(err) => {
                            tracing::debug!("{err}");
                            writer.push(Err(err));
                        }
                    }
                }
                writer.close();
            })
            .map_err(|e| PictureError::Thread(e.to_string()))?;
        Ok(Self { queue })
    }

    /// The next picture (or a unit's error), waiting for it; `None` when the video
    /// ended.
    pub async fn next(&mut self) -> Option<Result<Picture, PictureError>> {
        self.queue.pop().await
    }

    /// The next decoded picture, skipping units that did not decode; `None` when the
    /// video ended.
    pub async fn next_picture(&mut self) -> Option<Picture> {
        loop {
            if let Ok(picture) = self.next().await? {
                return Some(picture);
            }
        }
    }

    /// The newest picture waiting, dropping older ones; `None` when none waits.
    pub fn latest(&mut self) -> Option<Picture> {
        let mut newest = None;
        while let Some(item) = self.queue.try_pop() {
            if let Ok(picture) = item {
                newest = Some(picture);
            }
        }
        newest
    }

    /// Whether the video ended (pictures may still wait).
    pub fn is_ended(&self) -> bool {
        self.queue.is_closed()
    }

    /// Pictures (and errors) dropped unread because the reader was slow.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// As a [`futures_util::Stream`].
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Picture, PictureError>> + Send + 'static {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|p| (p, s)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::encoder::recorded_pictures;

    /// The test pattern's 75% bars as RGB: white, yellow, cyan, green, magenta, red,
    /// blue (from its Y'CbCr values).
    #[test]
    fn the_test_patterns_bars_convert_to_their_colours() {
        let bars = [
            ((180, 128, 128), [191, 191, 191]),
            ((162, 44, 142), [191, 191, 0]),
            ((131, 156, 44), [0, 191, 191]),
            ((112, 72, 58), [0, 191, 0]),
            ((84, 184, 198), [191, 0, 191]),
            ((65, 100, 212), [191, 0, 0]),
            ((35, 212, 114), [0, 0, 191]),
        ];
        for ((y, u, v), want) in bars {
            let got = yuv_to_rgb(y, u, v);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    g.abs_diff(w) <= 3,
                    "({y},{u},{v}) became {got:?}, want {want:?}"
                );
            }
        }
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
    }

    #[test]
    fn rgb_takes_each_pixels_chroma_from_its_2x2_block() {
        // 4x2: left half grey, right half red.
        let mut yuv = vec![128, 128, 65, 65, 128, 128, 65, 65];
        yuv.extend([128, 100, 128, 212]);
        let p = Picture::from_i420(4, 2, yuv).expect("a 4x2 picture");
        let rgb = p.rgb();
        assert_eq!(rgb.len(), 4 * 2 * 3);
        assert_eq!(p.rgb_at(0, 1), Some(yuv_to_rgb(128, 128, 128)));
        assert_eq!(p.rgb_at(3, 1), Some(yuv_to_rgb(65, 100, 212)));
        assert_eq!(&rgb[(4 + 3) * 3..], &yuv_to_rgb(65, 100, 212));
        assert_eq!(p.rgb_at(4, 0), None);
        assert!(p.stamp().is_none() && p.latency().is_none());
    }

    #[test]
    fn wrong_sizes_make_no_picture() {
        assert!(Picture::from_i420(4, 2, vec![0; 11]).is_none());
        assert!(Picture::from_i420(3, 2, vec![0; 9]).is_none());
        assert!(Picture::from_i420(usize::MAX, 2, vec![]).is_none());
    }

    #[test]
    fn decodes_the_test_pattern_with_its_stamp() {
        let mut decoder = PictureDecoder::new().expect("openh264");
        let units = recorded_pictures(5, 30);
        let pictures: Vec<Picture> = units
            .iter()
            .filter_map(|u| decoder.decode(&u.data, Instant::now()).expect("decodes"))
            .collect();
        assert_eq!(pictures.len(), 5);
        let frames: Vec<u32> = pictures.iter().map(|p| p.stamp().unwrap().frame).collect();
        assert_eq!(frames, vec![0, 1, 2, 3, 4]);
        let p = &pictures[0];
        assert_eq!((p.width(), p.height()), (320, 240));
        assert!(p.latency().is_some());
        // The first bar (white), below the stamp and above the moving box.
        let white = p.rgb_at(20, 60).unwrap();
        assert!(white.iter().all(|c| c.abs_diff(191) < 12), "{white:?}");
    }

    #[test]
    fn garbage_units_are_errors_and_decoding_goes_on() {
        let mut decoder = PictureDecoder::new().expect("openh264");
        let units = recorded_pictures(4, 30);
        let first = decoder.decode(&units[0].data, Instant::now()).unwrap();
        assert!(first.is_some());
        let mut errors = 0;
        let garbage: [&[u8]; 5] = [
            &[],
            &[0, 0, 0, 1],
            &[0, 0, 0, 1, 0x65, 0xff, 0xff, 0xff, 0xff, 0x00, 0x13],
            &[0, 0, 1, 0x67, 0x42, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8],
        ];
        for g in garbage {
            if let Err(err) = decoder.decode(g, Instant::now()) {
                assert!(err.to_string().contains("did not decode"), "{err}");
                errors += 1;
            }
        }
        assert!(errors > 0, "openh264 took every garbage unit");
        // A new keyframe decodes after the garbage.
        let fresh = recorded_pictures(1, 30);
        let picture = (0..3)
            .find_map(|_| {
                decoder
                    .decode(&fresh[0].data, Instant::now())
                    .ok()
                    .flatten()
            })
            .expect("a keyframe decodes after garbage");
        assert_eq!(picture.stamp().map(|s| s.frame), Some(0));
    }

    #[tokio::test]
    async fn a_stream_decodes_in_order_and_ends_with_its_frames() {
        let (tx, rx) = mpsc::channel(16);
        let mut stream = PictureStream::start(rx, 16).expect("starts");
        for unit in recorded_pictures(6, 30) {
            tx.send(ReceivedFrame {
                data: unit.data,
                received: Instant::now(),
            })
            .await
            .unwrap();
        }
        tx.send(ReceivedFrame {
            data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65, 0xff, 0x00, 0x13]),
            received: Instant::now(),
        })
        .await
        .unwrap();
        drop(tx);
        let mut frames = Vec::new();
        let mut errors = 0;
        let deadline = Duration::from_secs(10);
        while let Some(item) = tokio::time::timeout(deadline, stream.next())
            .await
            .expect("the stream ends after its frames")
        {
            match item {
                Ok(p) => frames.push(p.stamp().expect("stamped").frame),
                Err(_) => errors += 1,
            }
        }
        assert_eq!(frames, vec![0, 1, 2, 3, 4, 5]);
        assert!(errors <= 1);
        assert!(stream.is_ended());
        assert_eq!(stream.dropped(), 0);
    }
}

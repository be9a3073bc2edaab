//! Video encoders: raw [`Frame`]s in, H.264 Annex B access units out.
//!
//! [`VideoEncoder`] is what the stream drives; [`openh264`] is the software encoder,
//! [`m2m`] the V4L2 memory-to-memory hardware encoder, and [`FallbackEncoder`] hands
//! over from a failing hardware encoder to openh264.

pub mod m2m;
pub mod openh264;

pub use self::openh264::OpenH264Encoder;
use super::frame::{EncodedFrame, Frame};
use thiserror::Error;

/// Why encoding failed.
#[derive(Debug, Error)]
pub enum EncoderError {
    /// openh264 refused (the message is repeated here for log lines).
    #[error("openh264: {0}")]
    OpenH264(#[from] ::openh264::Error),
    /// The hardware encoder failed.
    #[error(transparent)]
    Hardware(#[from] m2m::M2mError),
    /// An encoder of your own failed.
    #[error("H.264 encoder error: {0}")]
    Codec(String),
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    /// Target bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames between periodic keyframes.
    pub keyframe_interval: u32,
    /// Temporal layers (1 or 2): with 2, every other frame is a layer-1 frame that no
    /// other frame references, so a viewer on a slow link can skip it (see
    /// [`layers`](crate::video::layers)); encoders without temporal scalability (the
    /// hardware path) ignore it and mark every frame layer 0.
    pub temporal_layers: u8,
}

/// Something that turns raw frames into H.264.
pub trait VideoEncoder: Send + 'static {
    /// A short name for logs and telemetry, e.g. `openh264`.
    fn name(&self) -> &str;
    /// Encodes one frame; `None` when the encoder chose to skip it.
    fn encode(
        &mut self,
        frame: &Frame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncoderError>;
    /// A picture finished after `encode` returned (hardware encoders work in their own
    /// time); the stream calls this after every `encode`, whatever it returned, until
    /// it returns `None`.
    fn next_ready(&mut self) -> Option<EncodedFrame> {
        None
    }
    /// Frames it dropped on its own so far (its rate control skipped them); a picture
    /// still in the works is not one.
    fn frames_skipped(&self) -> u64 {
        0
    }
    /// Changes the target bitrate from the next frame on, without a keyframe
    /// (congestion control); false when this encoder cannot, and keeps its own.
    fn set_bitrate(&mut self, kbps: u32) -> bool {
        let _ = kbps;
        false
    }
}

/// Makes an encoder when it is needed (the stream's first viewer, a fallback).
pub type EncoderFactory = Box<dyn FnOnce() -> Result<Box<dyn VideoEncoder>, EncoderError> + Send>;

/// Failed frames in a row (an error, or no picture back) after which
/// [`FallbackEncoder`] gives up on its first encoder (one second of video at 30 fps).
pub const FAILURES_BEFORE_FALLBACK: u32 = 30;

/// An encoder that switches to a second one, for good, when the first keeps failing:
/// the robot's `auto` mode puts the hardware encoder first and openh264 second, so a
/// codec block that stops working costs a second of video, not the stream.
pub struct FallbackEncoder {
    current: Box<dyn VideoEncoder>,
    fallback: Option<EncoderFactory>,
    failures: u32,
    /// Frames the encoders before `current` skipped.
    skipped_before: u64,
    /// The last bitrate asked for, handed on to the fallback when it takes over.
    bitrate: Option<u32>,
}

impl FallbackEncoder {
    /// Encodes with `first`; after [`FAILURES_BEFORE_FALLBACK`] failed frames in a row,
    /// with the encoder `then` makes.
    pub fn new(first: Box<dyn VideoEncoder>, then: EncoderFactory) -> Self {
        Self {
            current: first,
            fallback: Some(then),
            failures: 0,
            skipped_before: 0,
            bitrate: None,
        }
    }
}

impl VideoEncoder for FallbackEncoder {
    fn name(&self) -> &str {
        self.current.name()
    }

    fn encode(
        &mut self,
        frame: &Frame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncoderError> {
        // A frame with no picture back counts like an error: a hung encoder takes
        // frames and returns nothing (pictures it hands out late reset the count in
        // `next_ready`).
        let error = match self.current.encode(frame, force_keyframe) {
            Ok(Some(picture)) => {
                self.failures = 0;
                return Ok(Some(picture));
            }
            Ok(None) => None,
            Err(err) => Some(err),
        };
        self.failures += 1;
        if self.failures >= FAILURES_BEFORE_FALLBACK {
            if let Some(make) = self.fallback.take() {
                let why = error
                    .as_ref()
                    .map_or("no picture back".to_owned(), |e| e.to_string());
                let next = make().inspect_err(|e| {
                    tracing::error!(
                        "encoder {} failed {} frames in a row ({why}) and its fallback \
                         cannot start: {e}",
                        self.current.name(),
                        self.failures
                    );
                })?;
                tracing::warn!(
                    "encoder {} failed {} frames in a row ({why}); switching to {}",
                    self.current.name(),
                    self.failures,
                    next.name()
                );
                self.skipped_before += self.current.frames_skipped();
                self.current = next;
                self.failures = 0;
                if let Some(kbps) = self.bitrate {
                    self.current.set_bitrate(kbps);
                }
                // The new encoder starts the stream afresh: a keyframe.
                return self.current.encode(frame, true);
            }
        }
        match error {
            Some(err) => Err(err),
            None => Ok(None),
        }
    }

    fn frames_skipped(&self) -> u64 {
        self.skipped_before + self.current.frames_skipped()
    }

    fn set_bitrate(&mut self, kbps: u32) -> bool {
        self.bitrate = Some(kbps);
        self.current.set_bitrate(kbps)
    }

    fn next_ready(&mut self) -> Option<EncodedFrame> {
        let picture = self.current.next_ready();
        if picture.is_some() {
            self.failures = 0;
        }
        picture
    }
}

/// Test support: a real recording, `n` frames of 320x240 test pattern encoded by
/// openh264 at 500 kbit/s with a keyframe every `keyframe_interval` frames, one
/// picture per frame.
#[cfg(test)]
pub(crate) fn recorded_pictures(n: usize, keyframe_interval: u32) -> Vec<EncodedFrame> {
    let mut enc = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: 500,
        fps: 30,
        keyframe_interval,
        temporal_layers: 1,
    })
    .expect("openh264 starts");
    crate::video::source::test_pattern::TestPattern::new(320, 240)
        .and_then(|mut pattern| pattern.record(n))
        .expect("test pattern frames")
        .iter()
        .map(|f| {
            enc.encode(f, false)
                .expect("openh264 encodes")
                .expect("openh264 skips no test-pattern frame")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::h264::{nal_type, split_nals};
    use crate::video::source::{test_pattern::TestPattern, VideoSource};

    /// Broken hardware, as the stream sees it: every frame fails.
    struct Broken;

    impl VideoEncoder for Broken {
        fn name(&self) -> &str {
            "broken"
        }
        fn encode(&mut self, _: &Frame, _: bool) -> Result<Option<EncodedFrame>, EncoderError> {
            Err(EncoderError::Codec("EIO".into()))
        }
    }

    #[test]
    fn a_failing_encoder_is_replaced_after_a_second_of_failures() {
        let settings = EncoderSettings {
            bitrate_kbps: 500,
            fps: 30,
            keyframe_interval: 60,
            temporal_layers: 1,
        };
        let mut enc = FallbackEncoder::new(
            Box::new(Broken),
            Box::new(
                move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>),
            ),
        );
        let frames = TestPattern::new(160, 120).unwrap().record(40).unwrap();
        for frame in &frames[..FAILURES_BEFORE_FALLBACK as usize - 1] {
            let err = enc.encode(frame, false).unwrap_err().to_string();
            assert!(err.contains("EIO"), "{err}");
            assert_eq!(enc.name(), "broken");
        }
        // The 30th failure switches; that frame comes out of openh264 as a keyframe.
        let first = enc
            .encode(&frames[FAILURES_BEFORE_FALLBACK as usize - 1], false)
            .unwrap()
            .expect("a picture from the fallback");
        assert!(first.keyframe);
        assert_eq!(first.number, FAILURES_BEFORE_FALLBACK - 1);
        assert_eq!(enc.name(), "openh264");
        for frame in &frames[FAILURES_BEFORE_FALLBACK as usize..] {
            assert!(enc.encode(frame, false).unwrap().is_some());
        }
    }

    #[test]
    fn encodes_keyframes_on_demand_with_parameter_sets() {
        let settings = EncoderSettings {
            bitrate_kbps: 800,
            fps: 30,
            keyframe_interval: 60,
            temporal_layers: 1,
        };
        let mut encoder = OpenH264Encoder::new(settings).unwrap();
        let mut source = TestPattern::new(320, 240).unwrap();
        let mut frame = Frame::new(320, 240);
        let mut kinds = Vec::new();
        for i in 0..10 {
            source.capture(&mut frame).unwrap();
            let out = encoder
                .encode(&frame, i == 5)
                .unwrap()
                .expect("no skipped frames");
            assert_eq!(out.number, i);
            kinds.push(out.keyframe);
            let nals: Vec<u8> = split_nals(&out.data).iter().map(|n| nal_type(n)).collect();
            if out.keyframe {
                assert!(
                    nals.contains(&7) && nals.contains(&8) && nals.contains(&5),
                    "{nals:?}"
                );
            } else {
                assert!(nals.contains(&1), "{nals:?}");
            }
        }
        assert_eq!(
            kinds,
            [true, false, false, false, false, true, false, false, false, false]
        );
    }

    /// An encoder that takes frames and never gives a picture back, like a hung
    /// hardware encoder.
    struct Stalled {
        calls: u32,
    }

    impl VideoEncoder for Stalled {
        fn name(&self) -> &str {
            "stalled"
        }
        fn encode(&mut self, _: &Frame, _: bool) -> Result<Option<EncodedFrame>, EncoderError> {
            self.calls += 1;
            Ok(None)
        }
    }

    #[test]
    fn a_stalled_encoder_is_replaced_too() {
        let settings = EncoderSettings {
            bitrate_kbps: 500,
            fps: 30,
            keyframe_interval: 60,
            temporal_layers: 1,
        };
        let mut enc = FallbackEncoder::new(
            Box::new(Stalled { calls: 0 }),
            Box::new(
                move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>),
            ),
        );
        let frames = TestPattern::new(160, 120).unwrap().record(90).unwrap();
        let first = frames
            .iter()
            .find_map(|f| enc.encode(f, false).ok().flatten())
            .expect("a picture from the fallback within 3 s of stalled frames");
        assert!(first.keyframe);
        assert_eq!(enc.name(), "openh264");
    }
}

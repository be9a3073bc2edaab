//! The software encoder: Cisco's openh264, built from the bundled source by the
//! `openh264` crate (the best-kept Rust binding of a real-time H.264 encoder; `nasm`
//! makes its assembly paths available). It emits constrained baseline, which every
//! browser decodes, with SPS/PPS before each IDR so that a viewer can join at any
//! keyframe.

use super::{EncoderError, EncoderSettings, VideoEncoder};
use crate::video::frame::{EncodedFrame, Frame};
use bytes::Bytes;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

/// The openh264 software encoder.
pub struct OpenH264Encoder {
    encoder: Encoder,
    out: Vec<u8>,
}

struct I420<'a>(&'a Frame);

impl YUVSource for I420<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width, self.0.height)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.0.width, self.0.width / 2, self.0.width / 2)
    }
    fn y(&self) -> &[u8] {
        self.0.y()
    }
    fn u(&self) -> &[u8] {
        self.0.u()
    }
    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

impl OpenH264Encoder {
    /// A real-time, constrained-baseline encoder with the given settings.
    pub fn new(settings: EncoderSettings) -> Result<Self, EncoderError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(
                settings.bitrate_kbps.saturating_mul(1000),
            ))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .profile(Profile::Baseline)
            .skip_frames(true)
            // Real time on a Pi-class CPU: the fastest motion search, one thread (the
            // robot has other work, and threads cost more than they save at 640x480).
            .complexity(Complexity::Low)
            .num_threads(1)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.keyframe_interval.max(1),
            ));
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
        Ok(Self {
            encoder,
            out: Vec::with_capacity(64 * 1024),
        })
    }
}

impl VideoEncoder for OpenH264Encoder {
    fn name(&self) -> &str {
        "openh264"
    }

    fn encode(
        &mut self,
        frame: &Frame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncoderError> {
        if force_keyframe {
            self.encoder.force_intra_frame();
        }
        let stream = self.encoder.encode(&I420(frame))?;
        let keyframe = match stream.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            FrameType::IDR => true,
            _ => false,
        };
        self.out.clear();
        stream.write_vec(&mut self.out);
        if self.out.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data: Bytes::copy_from_slice(&self.out),
            keyframe,
            number: frame.number,
            capture_us: frame.capture_us,
            captured: frame.captured,
        }))
    }
}

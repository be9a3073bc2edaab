//! The software encoder: Cisco's openh264, built from the bundled source by the
//! `openh264` crate (the best-kept Rust binding of a real-time H.264 encoder; `nasm`
//! makes its assembly paths available). It emits constrained baseline, which every
//! browser decodes, with SPS/PPS before each IDR so that a viewer can join at any
//! keyframe.
//!
//! **Every frame.** Its rate control may skip frames to keep the bitrate
//! (`skip_frames`); a robot driven by video must stay live first, so it is off: an
//! expensive picture costs quality (a higher quantiser), never a held frame. Frames
//! carry their capture time, which the rate control budgets with.
//!
//! **Bitrate on the fly.** Congestion control moves the target while the stream runs;
//! the `openh264` crate sets it only when the encoder starts, so [`set_bitrate`]
//! reaches openh264's `SetOption` through the crate's raw API: the one `unsafe` block
//! of the library, an FFI call with a pointer to a local struct.
//!
//! [`set_bitrate`]: VideoEncoder::set_bitrate

use super::{EncoderError, EncoderSettings, VideoEncoder};
use crate::video::frame::{EncodedFrame, Frame};
use bytes::Bytes;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

/// The openh264 software encoder.
pub struct OpenH264Encoder {
    encoder: Encoder,
    out: Vec<u8>,
    /// The first frame's capture time; timestamps count from it (monotonic: a clock
    /// step never sends them backwards).
    first: Option<std::time::Instant>,
    skipped: u64,
    /// The target in bit/s: what openh264 has, or will get once it started.
    bitrate_bps: u32,
    /// openh264 took the target above (false until its first frame initialised it).
    bitrate_applied: bool,
    /// The target openh264 has now, bit/s.
    applied_bps: u32,
    /// Temporal layers asked for (1 or 2).
    temporal_layers: u8,
    /// The picture size openh264 took the temporal layers for (the crate starts the
    /// encoder with one layer at the first frame, and again at each new size).
    layers_for: Option<(usize, usize)>,
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
            .skip_frames(false)
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
            first: None,
            skipped: 0,
            bitrate_bps: settings.bitrate_kbps.saturating_mul(1000),
            bitrate_applied: true,
            applied_bps: settings.bitrate_kbps.saturating_mul(1000),
            temporal_layers: settings.temporal_layers.clamp(1, 2),
            layers_for: None,
        })
    }

    /// Hands openh264 the temporal layers: the crate starts the encoder with one, so
    /// this reads the parameters in force back and sets them again with more (openh264
    /// restarts its stream with an IDR picture).
    fn apply_temporal_layers(&mut self) -> Result<(), EncoderError> {
        use openh264_sys2::{SEncParamExt, ENCODER_OPTION_SVC_ENCODE_PARAM_EXT};
        let mut params = SEncParamExt::default();
        let api = &mut self.encoder;
        // SAFETY: the encoder is initialised (it encoded a frame); `params` is a valid
        // `SEncParamExt` that outlives both calls, which is what openh264's GetOption
        // fills and SetOption reads for this option.
        #[allow(unsafe_code)]
        let code = unsafe {
            let raw = api.raw_api();
            let got = raw.get_option(
                ENCODER_OPTION_SVC_ENCODE_PARAM_EXT,
                std::ptr::from_mut(&mut params).cast(),
            );
            if got == 0 {
                params.iTemporalLayerNum = i32::from(self.temporal_layers);
                raw.set_option(
                    ENCODER_OPTION_SVC_ENCODE_PARAM_EXT,
                    std::ptr::from_mut(&mut params).cast(),
                )
            } else {
                got
            }
        };
        if code == 0 {
            Ok(())
        } else {
            Err(EncoderError::Codec(format!(
                "openh264 refused {} temporal layers (code {code})",
                self.temporal_layers
            )))
        }
    }

    /// Hands openh264 the target bitrate (the crate initialises the encoder at the
    /// first frame, so this waits for one).
    fn apply_bitrate(&mut self) -> Result<(), EncoderError> {
        use openh264_sys2::{
            SBitrateInfo, ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE,
            SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
        };
        let bps = i32::try_from(self.bitrate_bps).unwrap_or(i32::MAX);
        let encoder = &mut self.encoder;
        let mut set = |option: ENCODER_OPTION, layer| {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: bps,
            };
            // SAFETY: the encoder is initialised (it encoded a frame), and `info` is a
            // valid `SBitrateInfo` that outlives the call, which is what openh264's
            // SetOption reads for these two options.
            #[allow(unsafe_code)]
            let code = unsafe {
                encoder
                    .raw_api()
                    .set_option(option, std::ptr::from_mut(&mut info).cast())
            };
            if code == 0 {
                Ok(())
            } else {
                Err(EncoderError::Codec(format!(
                    "openh264 refused bitrate {bps} bit/s (option {option}, code {code})"
                )))
            }
        };
        // openh264 refuses a target above the layer's ceiling: raise the ceiling
        // first, or lower it last.
        if self.bitrate_bps > self.applied_bps {
            set(ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0)?;
            set(ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL)?;
        } else {
            set(ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL)?;
            set(ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0)?;
        }
        self.applied_bps = self.bitrate_bps;
        Ok(())
    }
}

impl VideoEncoder for OpenH264Encoder {
    fn name(&self) -> &str {
        "openh264"
    }

    fn frames_skipped(&self) -> u64 {
        self.skipped
    }

    fn set_bitrate(&mut self, kbps: u32) -> bool {
        self.bitrate_bps = kbps.saturating_mul(1000);
        self.bitrate_applied = false;
        true
    }

    fn encode(
        &mut self,
        frame: &Frame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncoderError> {
        if force_keyframe {
            self.encoder.force_intra_frame();
        }
        if !self.bitrate_applied && self.first.is_some() {
            // Once: a refusal is logged, and the bitrate in force stays.
            self.bitrate_applied = true;
            if let Err(err) = self.apply_bitrate() {
                tracing::warn!("{err}");
            }
        }
        let first = *self.first.get_or_insert(frame.captured);
        let at = Timestamp::from_millis(frame.captured.duration_since(first).as_millis() as u64);
        let size = (frame.width, frame.height);
        if self.temporal_layers > 1 && self.layers_for != Some(size) {
            // The crate (re)starts openh264 with one layer at this frame: let it, drop
            // that picture, take the layers (which restarts the stream), and encode the
            // frame again, so the stream starts with one keyframe, not two. Once per
            // size: a refusal is logged, and the stream keeps one layer.
            self.encoder.encode_at(&I420(frame), at)?;
            self.layers_for = Some(size);
            if let Err(err) = self.apply_temporal_layers() {
                tracing::warn!("{err}");
            }
        }
        let stream = self.encoder.encode_at(&I420(frame), at)?;
        // The layer of the picture's coded slices (all of one frame share it).
        let temporal_layer = (0..stream.num_layers())
            .filter_map(|i| stream.layer(i))
            .filter(|layer| layer.is_video())
            .map(|layer| layer.raw_info().uiTemporalId)
            .max()
            .unwrap_or(0);
        let keyframe = match stream.frame_type() {
            FrameType::Skip => {
                self.skipped += 1;
                return Ok(None);
            }
            FrameType::Invalid => return Ok(None),
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
            temporal_layer,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{TestPattern, VideoSource};
    use std::time::{Duration, Instant};

    /// Encodes `frames` of the noisy pattern at `kbps`, 30 fps in capture time; how
    /// many pictures came out and how many the encoder skipped.
    fn encode_noisy(kbps: u32, frames: u32) -> (u32, u64) {
        let mut source = TestPattern::new(640, 480).unwrap().with_noise(6);
        let mut encoder = OpenH264Encoder::new(EncoderSettings {
            bitrate_kbps: kbps,
            fps: 30,
            keyframe_interval: 60,
            temporal_layers: 1,
        })
        .unwrap();
        let start = Instant::now();
        let mut frame = Frame::new(640, 480);
        let mut pictures = 0;
        for n in 0..frames {
            source.capture(&mut frame).unwrap();
            // As a 30 fps camera would stamp them, however fast the test runs.
            frame.captured = start + Duration::from_micros(33_333) * n;
            if encoder.encode(&frame, false).unwrap().is_some() {
                pictures += 1;
            }
        }
        (pictures, encoder.frames_skipped())
    }

    /// 60 frames of the noisy pattern at 640x480 with `layers` temporal layers.
    fn encode_layers(layers: u8) -> Vec<EncodedFrame> {
        let mut source = TestPattern::new(640, 480).unwrap().with_noise(6);
        let mut encoder = OpenH264Encoder::new(EncoderSettings {
            bitrate_kbps: 1000,
            fps: 30,
            keyframe_interval: 60,
            temporal_layers: layers,
        })
        .unwrap();
        let start = Instant::now();
        let mut frame = Frame::new(640, 480);
        (0..60)
            .filter_map(|n| {
                source.capture(&mut frame).unwrap();
                frame.captured = start + Duration::from_micros(33_333) * n;
                encoder.encode(&frame, false).unwrap()
            })
            .collect()
    }

    #[test]
    fn two_temporal_layers_alternate_and_the_base_alone_decodes() {
        let frames = encode_layers(2);
        assert_eq!(frames.len(), 60, "every frame is encoded");
        // One keyframe to start with (the restart with two layers is not a second),
        // then the layers alternate from the first frame on.
        assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 1, "keyframes");
        assert!(frames[0].keyframe && frames[0].temporal_layer == 0);
        let layers: Vec<u8> = frames.iter().map(|f| f.temporal_layer).collect();
        let ones = layers.iter().filter(|&&l| l == 1).count();
        assert!(
            (27..=31).contains(&ones),
            "about every other frame is layer 1: {layers:?}"
        );
        assert!(
            layers.windows(2).all(|w| w[0] != 1 || w[1] != 1),
            "no two layer-1 frames in a row: {layers:?}"
        );
        // A viewer on the base layer decodes every frame it gets.
        let mut decoder = openh264::decoder::Decoder::new().unwrap();
        let mut pictures = 0;
        for frame in frames.iter().filter(|f| f.temporal_layer == 0) {
            match decoder.decode(&frame.data) {
                Ok(Some(_)) => pictures += 1,
                Ok(None) => {}
                Err(err) => panic!(
                    "the base layer alone does not decode: frame {}: {err}",
                    frame.number
                ),
            }
        }
        let base = frames.iter().filter(|f| f.temporal_layer == 0).count();
        assert_eq!(
            pictures, base,
            "pictures decoded from {base} base-layer frames"
        );
    }

    #[test]
    fn one_temporal_layer_marks_every_frame_base() {
        let frames = encode_layers(1);
        assert_eq!(frames.len(), 60);
        assert!(frames.iter().all(|f| f.temporal_layer == 0));
    }

    #[test]
    fn an_expensive_picture_costs_quality_never_a_frame() {
        // Far below what noise at 640x480 needs: the rate control is under pressure.
        let (pictures, skipped) = encode_noisy(300, 90);
        assert_eq!(
            (pictures, skipped),
            (90, 0),
            "(pictures, skipped) at 300 kbit/s"
        );
    }
}

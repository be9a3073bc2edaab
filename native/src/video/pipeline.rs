//! The pipeline the configuration asks for: which source (`video.camera`) and which
//! encoder (`video.encoder`).
//!
//! A camera that delivers H.264 is passed through; raw frames are encoded by the V4L2
//! memory-to-memory hardware encoder when asked for or found, else openh264.

use super::config::{EncoderChoice, VideoConfig};
use super::encoder::m2m::{self, M2mEncoder, M2mError};
use super::encoder::{
    EncoderFactory, EncoderSettings, FallbackEncoder, OpenH264Encoder, VideoEncoder,
};
use super::source::file::{AnnexBSource, Y4mSource};
use super::source::test_pattern::TestPattern;
use super::source::v4l2::{auto_candidates, list_cameras, open_camera, OpenedCamera};
use super::source::{Camera, SourceError, VideoSource};
use super::stream::Pipeline;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the configured video could not be set up.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The video source could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// `video.encoder = "hardware"` and no hardware encoder is usable.
    #[error("video.encoder = \"hardware\"")]
    Hardware(#[source] M2mError),
}

/// The noise of `test-pattern:noisy`, in luma levels: what the benchmarks and the
/// congestion-control tests use as a camera-like load.
pub const NOISE: u8 = 6;

/// The pipeline for `[video]`'s `camera`: a camera (H.264 passed through, else encoded), a
/// file, or the test pattern.
pub fn open_pipeline(v: &VideoConfig) -> Result<Pipeline, PipelineError> {
    let want = (v.width, v.height);
    let devices = match &v.camera {
        Camera::Auto => auto_candidates(list_cameras(), want, v.fps),
        Camera::Device(path) => {
            // An explicit device must work: its error stops the robot.
            return match open_camera(path, want, v.fps)? {
                OpenedCamera::H264(cam) => Ok(Pipeline::PassThrough(Box::new(cam))),
                OpenedCamera::Raw(cam) => encode(v, Box::new(cam)),
            };
        }
        Camera::TestPattern => Vec::new(),
        Camera::NoisyTestPattern => {
            let noisy = TestPattern::new(v.width, v.height)?.with_noise(NOISE);
            return encode(v, Box::new(noisy));
        }
        Camera::File(path) => {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            return match ext.as_str() {
                "h264" | "264" => Ok(Pipeline::PassThrough(Box::new(AnnexBSource::open(path)?))),
                _ => encode(v, Box::new(Y4mSource::open(path)?)),
            };
        }
    };
    // auto: the first camera that opens, else the test pattern.
    for device in devices {
        match open_camera(&device, want, v.fps) {
            Ok(OpenedCamera::H264(cam)) => return Ok(Pipeline::PassThrough(Box::new(cam))),
            Ok(OpenedCamera::Raw(cam)) => return encode(v, Box::new(cam)),
            Err(err) => tracing::warn!("camera auto: skipping {}: {err}", device.display()),
        }
    }
    encode(v, Box::new(TestPattern::new(v.width, v.height)?))
}

/// Raw frames from `source`, encoded by the encoder `video.encoder` picks: the V4L2
/// memory-to-memory hardware encoder when asked for or found, else openh264.
///
/// `hardware` opens the encoder once now, so that a robot without a usable one stops
/// at start with a clear error; the stream opens it again when the first viewer
/// arrives. In `auto`, a hardware encoder that fails to open, or later fails
/// [`super::encoder::FAILURES_BEFORE_FALLBACK`] frames in a row (a hung encoder fails
/// too), gives way to openh264 with a warning.
pub fn encode(v: &VideoConfig, source: Box<dyn VideoSource>) -> Result<Pipeline, PipelineError> {
    let settings = encoder_settings(v);
    let (w, h) = source.size();
    let open = move |path: &Path| M2mEncoder::open(path, m2m::H264, w as u32, h as u32, settings);
    let hardware = match v.encoder {
        EncoderChoice::Software => None,
        EncoderChoice::Hardware => {
            let path =
                hardware_encoder(v.encoder_device.as_deref()).map_err(PipelineError::Hardware)?;
            drop(open(&path).map_err(PipelineError::Hardware)?);
            Some(path)
        }
        EncoderChoice::Auto => match hardware_encoder(v.encoder_device.as_deref()) {
            Ok(path) => Some(path),
            // A device the user named deserves a warning when it cannot be used.
            Err(err) if v.encoder_device.is_some() => {
                tracing::warn!("hardware encoder unusable ({err}); encoding with openh264");
                None
            }
            Err(err) => {
                tracing::info!("no hardware encoder ({err}); encoding with openh264");
                None
            }
        },
    };
    let fallback = v.encoder == EncoderChoice::Auto;
    let make_encoder: EncoderFactory = match hardware {
        None => software_encoder(settings),
        Some(path) => Box::new(move || match open(&path) {
            Ok(enc) if fallback => Ok(Box::new(FallbackEncoder::new(
                Box::new(enc),
                software_encoder(settings),
            )) as Box<dyn VideoEncoder>),
            Ok(enc) => Ok(Box::new(enc) as Box<dyn VideoEncoder>),
            Err(err) if fallback => {
                tracing::warn!("hardware encoder unusable ({err}); encoding with openh264");
                software_encoder(settings)()
            }
            Err(err) => Err(err.into()),
        }),
    };
    Ok(Pipeline::Encode {
        source,
        make_encoder,
    })
}

/// The encoder settings `[video]` asks for.
pub fn encoder_settings(v: &VideoConfig) -> EncoderSettings {
    EncoderSettings {
        bitrate_kbps: v.bitrate_kbps,
        fps: v.fps,
        keyframe_interval: (v.keyframe_interval_s * f64::from(v.fps)).round().max(1.0) as u32,
        temporal_layers: if v.temporal_layers { 2 } else { 1 },
    }
}

/// Makes openh264 encoders with `settings`.
pub fn software_encoder(settings: EncoderSettings) -> EncoderFactory {
    Box::new(move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>))
}

/// The configured hardware encoder device, checked, or the first one found.
fn hardware_encoder(device: Option<&Path>) -> Result<PathBuf, M2mError> {
    match device {
        Some(path) => m2m::check_path(path, m2m::H264).map(|()| path.to_owned()),
        None => m2m::find_encoder(m2m::H264),
    }
}

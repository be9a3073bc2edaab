//! The `[video]` settings: source, size, rate and encoder.

use super::rate::{Follow, RatePolicy};
use super::source::Camera;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The video pipeline: source size and rate, encoder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// The video source: `auto` (the first V4L2 capture device, else the test
    /// pattern), `test-pattern`, a device path such as `/dev/video0`, or `file:PATH`
    /// (`.y4m` raw frames, encoded; `.h264`/`.264` Annex B, passed through).
    pub camera: Camera,
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target encoder bitrate in kbit/s: where the stream starts, and what it keeps
    /// without congestion control.
    pub bitrate_kbps: u32,
    /// Congestion control: the robot estimates each viewer's bandwidth from its
    /// transport-wide congestion control feedback and sets the one encoder's bitrate
    /// from it (see `follow`), so a link that narrows costs sharpness, not latency.
    pub congestion_control: bool,
    /// The lowest bitrate congestion control may set, kbit/s.
    pub min_kbps: u32,
    /// The highest bitrate congestion control may set, kbit/s (default: `bitrate_kbps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_kbps: Option<u32>,
    /// Whose estimate sets the bitrate: `driver` (the driving viewer's, else the
    /// slowest viewer's) or `slowest`.
    pub follow: Follow,
    /// Two temporal layers in openh264's stream (on by default): every other frame is
    /// one no other frame refers to, so a viewer whose link carries clearly less than
    /// the encoder's target gets half the frame rate at about two thirds of the bits
    /// instead of a growing queue, without a second encode. The hardware encoder and a
    /// camera's own H.264 have one layer, whatever this says.
    pub temporal_layers: bool,
    /// Seconds between periodic keyframes (new viewers also get one at once).
    pub keyframe_interval_s: f64,
    /// Which H.264 encoder turns raw frames into video (cameras that give H.264 need
    /// none).
    pub encoder: EncoderChoice,
    /// The hardware encoder's device, e.g. `/dev/video11`; by default the first V4L2
    /// memory-to-memory H.264 encoder found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_device: Option<PathBuf>,
}

/// Which encoder the robot uses for raw frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderChoice {
    /// The hardware encoder when one is found and opens, else openh264.
    #[default]
    Auto,
    /// openh264 on the CPU, always.
    Software,
    /// The V4L2 memory-to-memory encoder; the robot refuses to start without one.
    Hardware,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            camera: Camera::Auto,
            width: 640,
            height: 480,
            fps: 30,
            bitrate_kbps: 1000,
            congestion_control: true,
            min_kbps: 150,
            max_kbps: None,
            follow: Follow::Driver,
            temporal_layers: true,
            keyframe_interval_s: 2.0,
            encoder: EncoderChoice::Auto,
            encoder_device: None,
        }
    }
}

impl std::str::FromStr for EncoderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "software" => Ok(Self::Software),
            "hardware" => Ok(Self::Hardware),
            _ => Err(format!("{s:?} must be auto, software or hardware")),
        }
    }
}

impl VideoConfig {
    /// Time between two frames.
    pub fn frame_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.fps))
    }

    /// The bounds congestion control keeps the bitrate in, and whom it follows.
    pub fn rate_policy(&self) -> RatePolicy {
        RatePolicy {
            min_kbps: self.min_kbps,
            max_kbps: self.max_kbps.unwrap_or(self.bitrate_kbps),
            follow: self.follow,
        }
    }

    /// Checks ranges the types cannot express: the setting's name and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let v = self;
        if !(16..=3840).contains(&v.width) || v.width % 2 != 0 {
            return Err((
                "video.width",
                format!("{} must be even and in 16..=3840", v.width),
            ));
        }
        if !(16..=2160).contains(&v.height) || v.height % 2 != 0 {
            return Err((
                "video.height",
                format!("{} must be even and in 16..=2160", v.height),
            ));
        }
        if !(1..=120).contains(&v.fps) {
            return Err(("video.fps", format!("{} must be in 1..=120", v.fps)));
        }
        if !(50..=50_000).contains(&v.bitrate_kbps) {
            return Err((
                "video.bitrate_kbps",
                format!("{} must be in 50..=50000", v.bitrate_kbps),
            ));
        }
        if !(50..=50_000).contains(&v.min_kbps) {
            return Err((
                "video.min_kbps",
                format!("{} must be in 50..=50000", v.min_kbps),
            ));
        }
        if let Some(max) = v.max_kbps {
            if !(v.min_kbps..=50_000).contains(&max) {
                return Err((
                    "video.max_kbps",
                    format!("{max} must be in video.min_kbps ({})..=50000", v.min_kbps),
                ));
            }
        }
        if v.min_kbps > v.bitrate_kbps.max(v.max_kbps.unwrap_or(0)) {
            return Err((
                "video.min_kbps",
                format!(
                    "{} is above video.bitrate_kbps ({}) and video.max_kbps",
                    v.min_kbps, v.bitrate_kbps
                ),
            ));
        }
        if !(v.keyframe_interval_s.is_finite() && (0.1..=3600.0).contains(&v.keyframe_interval_s)) {
            return Err((
                "video.keyframe_interval_s",
                format!("{} must be in 0.1..=3600", v.keyframe_interval_s),
            ));
        }
        if let Some(device) = &v.encoder_device {
            if v.encoder == EncoderChoice::Software {
                return Err((
                    "video.encoder_device",
                    format!(
                        "{} is set but video.encoder is \"software\"",
                        device.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

//! Video sources: where pictures come from.
//!
//! A [`VideoSource`] fills raw I420 [`Frame`]s on demand: the built-in
//! [`TestPattern`](test_pattern::TestPattern) (the default when no camera exists), a
//! Y4M file ([`file`]), a V4L2 camera ([`v4l2`]), or your own. Sources that already
//! produce H.264 (a camera's H.264 format, an Annex B file) implement
//! [`EncodedSource`] instead: the stream passes their access units through without
//! decoding or encoding.
//!
//! [`Camera`] is the `video.camera` setting: which source the robot opens.

pub mod file;
pub mod test_pattern;
pub mod v4l2;

use super::frame::{EncodedFrame, Frame};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;
use thiserror::Error;

/// Why a source could not produce a frame.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The requested size is not usable.
    #[error("unsupported frame size {width}x{height}: {reason}")]
    Size {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Why.
        reason: &'static str,
    },
    /// A file source could not be read or is not in the expected format.
    #[error("video file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A camera device failed.
    #[error("camera {device}: {reason}")]
    Device {
        /// The device path.
        device: String,
        /// What is wrong.
        reason: String,
    },
    /// A source of your own failed.
    #[error("video source {source_name}: {error}")]
    Other {
        /// The source's name.
        source_name: String,
        /// Its error.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Something that produces raw frames: a camera, a file, a test pattern.
pub trait VideoSource: Send + 'static {
    /// A short name for logs and telemetry, e.g. `test-pattern`.
    fn name(&self) -> &str;
    /// Frame size in pixels.
    fn size(&self) -> (usize, usize);
    /// Fills `frame` with the next picture and stamps its number and capture time.
    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError>;
}

/// Something that produces H.264 access units already encoded: a camera's H.264
/// format, an Annex B file. The stream sends them as they are.
pub trait EncodedSource: Send + 'static {
    /// A short name for logs and telemetry, e.g. `file:clip.h264`.
    fn name(&self) -> &str;
    /// Frame size in pixels.
    fn size(&self) -> (usize, usize);
    /// The next access unit, Annex B, with SPS/PPS in front of every IDR.
    fn next_frame(&mut self) -> Result<EncodedFrame, SourceError>;
}

/// Which video source the robot streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Camera {
    /// The first capture device; the test pattern when there is none.
    Auto,
    /// The built-in test pattern.
    TestPattern,
    /// The test pattern with sensor-like noise in every frame (`test-pattern:noisy`):
    /// it costs the encoder what a real camera does, for trying bitrate and
    /// congestion control without one.
    NoisyTestPattern,
    /// A V4L2 device such as `/dev/video0`.
    Device(PathBuf),
    /// A `.y4m` or `.h264` file, looped.
    File(PathBuf),
}

impl std::str::FromStr for Camera {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "test-pattern" => Ok(Self::TestPattern),
            "test-pattern:noisy" => Ok(Self::NoisyTestPattern),
            _ => {
                if let Some(path) = s.strip_prefix("file:") {
                    if path.is_empty() {
                        return Err("file: needs a path, e.g. file:clip.h264".into());
                    }
                    Ok(Self::File(path.into()))
                } else if s.starts_with("/dev/") {
                    Ok(Self::Device(s.into()))
                } else {
                    Err(format!(
                        "camera {s:?} must be auto, test-pattern, test-pattern:noisy, /dev/videoN \
                         or file:PATH"
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::TestPattern => f.write_str("test-pattern"),
            Self::NoisyTestPattern => f.write_str("test-pattern:noisy"),
            Self::Device(p) => write!(f, "{}", p.display()),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl Serialize for Camera {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Camera {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("video.camera: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_specs_parse_with_clear_errors() {
        assert_eq!("auto".parse::<Camera>().unwrap(), Camera::Auto);
        assert_eq!(
            "/dev/video2".parse::<Camera>().unwrap(),
            Camera::Device("/dev/video2".into())
        );
        assert_eq!(
            "file:a.h264".parse::<Camera>().unwrap(),
            Camera::File("a.h264".into())
        );
        assert!("webcam"
            .parse::<Camera>()
            .unwrap_err()
            .contains("must be auto"));
        assert!("file:".parse::<Camera>().is_err());
        for spec in [
            "test-pattern",
            "test-pattern:noisy",
            "auto",
            "/dev/video0",
            "file:x.y4m",
        ] {
            assert_eq!(spec.parse::<Camera>().unwrap().to_string(), spec);
        }
    }
}

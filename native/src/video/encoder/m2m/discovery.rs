//! Which V4L2 device is a memory-to-memory encoder for a coded format, and why the
//! others are not (pure [`check_device`] on a [`DeviceDescription`], unit-tested on
//! recorded descriptions; [`describe`] reads one from a device).

use super::{M2mError, H264};
use std::path::{Path, PathBuf};
use v4l2r::device::{Device, DeviceConfig};
use v4l2r::ioctl::{self, Capabilities};
use v4l2r::QueueType;

/// How a device takes its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum M2mApi {
    /// `V4L2_CAP_VIDEO_M2M_MPLANE` (the Pi's codec, most SoC codecs).
    MultiPlanar,
    /// `V4L2_CAP_VIDEO_M2M`.
    SinglePlanar,
}

/// What a V4L2 device says about itself: the input of [`check_device`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    /// Driver name, e.g. `bcm2835-codec`.
    pub driver: String,
    /// Card name, e.g. `bcm2835-codec-encode`.
    pub card: String,
    /// `None` when the device is not memory-to-memory (a camera, say).
    pub api: Option<M2mApi>,
    /// Formats it takes on its OUTPUT queue (what we send), as fourccs.
    pub output_formats: Vec<[u8; 4]>,
    /// Formats it gives on its CAPTURE queue (what we get back).
    pub capture_formats: Vec<[u8; 4]>,
}

/// A raw picture layout an encoder can take, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Planar 4:2:0, Y then U then V in one buffer (`YU12`): our frames' own layout.
    Yu12,
    /// Y then interleaved UV in one buffer (`NV12`).
    Nv12,
    /// Planar 4:2:0 with one buffer per plane (`YM12`).
    Ym12,
    /// Y and interleaved UV in two buffers (`NM12`).
    Nm12,
}

impl RawFormat {
    const PREFERENCE: [RawFormat; 4] = [Self::Yu12, Self::Nv12, Self::Ym12, Self::Nm12];

    /// The V4L2 fourcc.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Yu12 => *b"YU12",
            Self::Nv12 => *b"NV12",
            Self::Ym12 => *b"YM12",
            Self::Nm12 => *b"NM12",
        }
    }

    pub(super) fn planes(self) -> usize {
        match self {
            Self::Yu12 | Self::Nv12 => 1,
            Self::Nm12 => 2,
            Self::Ym12 => 3,
        }
    }
}

pub(super) fn fourcc_list(formats: &[[u8; 4]]) -> String {
    if formats.is_empty() {
        return "none".into();
    }
    formats
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim_end().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides whether `device` can encode raw frames into `codec`, and with which raw
/// layout; the error says why not, in words for a log line.
pub fn check_device(device: &DeviceDescription, codec: [u8; 4]) -> Result<RawFormat, String> {
    let name = String::from_utf8_lossy(&codec).to_string();
    if device.api.is_none() {
        return Err(format!(
            "{} ({}) is not a memory-to-memory device",
            device.card, device.driver
        ));
    }
    if !device.capture_formats.contains(&codec) {
        return Err(format!(
            "{} ({}) does not produce {name} (it produces {})",
            device.card,
            device.driver,
            fourcc_list(&device.capture_formats)
        ));
    }
    RawFormat::PREFERENCE
        .into_iter()
        .find(|raw| device.output_formats.contains(&raw.fourcc()))
        .ok_or_else(|| {
            format!(
                "{} ({}) takes no 4:2:0 pictures (it takes {})",
                device.card,
                device.driver,
                fourcc_list(&device.output_formats)
            )
        })
}

/// Reads a device's description: capabilities, then (for M2M devices only, so that a
/// camera in use is never touched beyond QUERYCAP) the formats of both queues.
pub fn describe(path: &Path) -> Result<DeviceDescription, M2mError> {
    let device = open_device(path)?;
    Ok(describe_open(&device))
}

pub(super) fn open_device(path: &Path) -> Result<Device, M2mError> {
    Device::open(path, DeviceConfig::new().non_blocking_dqbuf())
        .map_err(|e| device_error(path, "open the device", chain(&e)))
}

pub(super) fn device_error(
    path: &Path,
    action: &'static str,
    reason: impl std::fmt::Display,
) -> M2mError {
    M2mError::Device {
        path: path.to_owned(),
        action,
        reason: reason.to_string(),
    }
}

/// An error and its causes on one line (v4l2r's errors keep the errno as a source).
pub(super) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) fn describe_open(device: &Device) -> DeviceDescription {
    let caps = device.caps();
    let device_caps = caps.device_caps();
    let api = if device_caps.contains(Capabilities::VIDEO_M2M_MPLANE) {
        Some(M2mApi::MultiPlanar)
    } else if device_caps.contains(Capabilities::VIDEO_M2M) {
        Some(M2mApi::SinglePlanar)
    } else {
        None
    };
    let formats = |queue: QueueType| -> Vec<[u8; 4]> {
        ioctl::FormatIterator::new(device, queue)
            .map(|f| f.pixelformat.into())
            .collect()
    };
    let (output_formats, capture_formats) = match api {
        Some(M2mApi::MultiPlanar) => (
            formats(QueueType::VideoOutputMplane),
            formats(QueueType::VideoCaptureMplane),
        ),
        Some(M2mApi::SinglePlanar) => (
            formats(QueueType::VideoOutput),
            formats(QueueType::VideoCapture),
        ),
        None => (Vec::new(), Vec::new()),
    };
    DeviceDescription {
        driver: caps.driver.clone(),
        card: caps.card.clone(),
        api,
        output_formats,
        capture_formats,
    }
}

/// Checks that the device at `path` encodes raw frames into `codec`.
pub fn check_path(path: &Path, codec: [u8; 4]) -> Result<(), M2mError> {
    check_device(&describe(path)?, codec)
        .map(|_| ())
        .map_err(|reason| M2mError::NotAnEncoder {
            path: path.to_owned(),
            reason,
        })
}

/// The first device that encodes raw frames into `codec`.
pub fn find_encoder(codec: [u8; 4]) -> Result<PathBuf, M2mError> {
    let mut tried = Vec::new();
    for path in crate::video::source::v4l2::video_nodes() {
        match check_path(&path, codec) {
            Ok(()) => return Ok(path),
            Err(err) => tried.push(err.to_string()),
        }
    }
    Err(M2mError::NotFound {
        codec: String::from_utf8_lossy(&codec).into(),
        tried: if tried.is_empty() {
            "no /dev/video* devices".into()
        } else {
            tried.join("; ")
        },
    })
}

/// One line for the `cameras` subcommand: the hardware encoder raw cameras would use.
pub fn describe_encoder() -> String {
    match find_encoder(H264) {
        Ok(path) => {
            let card = describe(&path).map(|d| d.card).unwrap_or_default();
            format!(
                "hardware H.264 encoder: {} ({card}); video.encoder = \"auto\" uses it\n",
                path.display()
            )
        }
        Err(err) => format!("{err}; raw video is encoded with openh264\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fourccs(list: &[&[u8; 4]]) -> Vec<[u8; 4]> {
        list.iter().map(|f| **f).collect()
    }

    /// The Raspberry Pi's codec nodes (bcm2835-codec, as its format tables register
    /// them), the kernel's vicodec encoder, and a USB camera.
    fn pi_encoder() -> DeviceDescription {
        DeviceDescription {
            driver: "bcm2835-codec".into(),
            card: "bcm2835-codec-encode".into(),
            api: Some(M2mApi::MultiPlanar),
            output_formats: fourccs(&[
                b"YU12", b"YV12", b"NV12", b"NV21", b"RGBP", b"RGB3", b"BGR3", b"BGR4", b"YUYV",
                b"YVYU", b"UYVY", b"VYUY",
            ]),
            capture_formats: fourccs(&[b"H264"]),
        }
    }

    #[test]
    fn picks_the_encoder_among_the_pi_codec_nodes_and_says_why_not_for_others() {
        assert_eq!(check_device(&pi_encoder(), H264), Ok(RawFormat::Yu12));

        let decoder = DeviceDescription {
            card: "bcm2835-codec-decode".into(),
            output_formats: fourccs(&[b"H264", b"MJPG", b"MPG2"]),
            capture_formats: fourccs(&[b"YU12", b"YV12", b"NV12", b"NV21", b"RGBP"]),
            ..pi_encoder()
        };
        let err = check_device(&decoder, H264).unwrap_err();
        assert!(err.contains("does not produce H264"), "{err}");
        assert!(err.contains("YU12, YV12, NV12"), "{err}");

        let isp = DeviceDescription {
            card: "bcm2835-codec-isp".into(),
            output_formats: fourccs(&[b"YUYV", b"RGB3"]),
            capture_formats: fourccs(&[b"YU12", b"NV12"]),
            ..pi_encoder()
        };
        assert!(check_device(&isp, H264).is_err());

        let camera = DeviceDescription {
            driver: "uvcvideo".into(),
            card: "HD Webcam".into(),
            api: None,
            output_formats: vec![],
            capture_formats: vec![],
        };
        let err = check_device(&camera, H264).unwrap_err();
        assert!(err.contains("not a memory-to-memory device"), "{err}");

        // An encoder that only takes packed RGB and YUYV cannot take our frames.
        let rgb_only = DeviceDescription {
            output_formats: fourccs(&[b"RGB3", b"YUYV"]),
            ..pi_encoder()
        };
        let err = check_device(&rgb_only, H264).unwrap_err();
        assert!(
            err.contains("takes no 4:2:0 pictures (it takes RGB3, YUYV)"),
            "{err}"
        );

        // NV12-only encoders (Qualcomm's Venus) and multi-planar layouts are taken.
        let venus = DeviceDescription {
            driver: "qcom-venus".into(),
            card: "Qualcomm Venus video encoder".into(),
            output_formats: fourccs(&[b"NV12"]),
            ..pi_encoder()
        };
        assert_eq!(check_device(&venus, H264), Ok(RawFormat::Nv12));
        let ym12 = DeviceDescription {
            output_formats: fourccs(&[b"NM12", b"YM12"]),
            ..pi_encoder()
        };
        assert_eq!(check_device(&ym12, H264), Ok(RawFormat::Ym12));
        // The codec is a parameter: vicodec makes FWHT, not H.264. (Its formats as
        // recorded in the test VM of tests/tests/v4l2_vm.rs.)
        let vicodec = DeviceDescription {
            driver: "vicodec".into(),
            card: "vicodec".into(),
            output_formats: fourccs(&[
                b"YU12", b"YV12", b"422P", b"NV12", b"NV21", b"NV16", b"NV61", b"NV24", b"NV42",
                b"YUYV", b"YVYU", b"UYVY", b"VYUY", b"BGR3", b"RGB3", b"HSV3", b"BGR4", b"XR24",
                b"AR24", b"RGB4", b"BX24", b"BA24", b"RX24", b"RA24", b"XB24", b"AB24", b"HSV4",
                b"GREY",
            ]),
            capture_formats: fourccs(&[b"FWHT"]),
            ..pi_encoder()
        };
        assert!(check_device(&vicodec, H264).is_err());
        assert_eq!(check_device(&vicodec, *b"FWHT"), Ok(RawFormat::Yu12));
    }
}

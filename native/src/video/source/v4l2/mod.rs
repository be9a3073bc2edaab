//! V4L2 cameras (USB webcams, the Pi camera through libcamera's V4L2 compatibility):
//! listing devices, choosing a capture format, and capturing.
//!
//! Formats are chosen by cost ([`negotiate`], a pure function over what the device
//! offers): H.264 from the camera is passed straight through ([`V4lH264Camera`], no
//! decode, no encode), then MJPEG (decoded, then encoded), then raw YUV420, NV12 and
//! YUYV (converted to I420, then encoded) ([`V4lCamera`]). Within a format the size
//! closest to the configured one wins, then the rate closest to the configured fps.
//!
//! [`Camera`] (`--camera auto|/dev/videoN|test-pattern|file:PATH`) says which source
//! to open; `auto` takes the first capture device and falls back to the test pattern
//! when there is none.
//!
//! Files: [`formats`] (the pure choice), [`convert`] (pixels to I420), this module (the
//! devices).

pub mod convert;
pub mod formats;

pub use convert::{copy_i420, mjpeg_to_i420, nv12_to_i420, yuyv_to_i420};
pub use formats::{
    auto_candidates, describe_cameras, is_auto_candidate, negotiate, CameraInfo, Choice,
    FormatOption, PixelFormat,
};

use crate::video::frame::{now_us, EncodedFrame, Frame};
use crate::video::h264::{is_keyframe, ParameterSets};
use crate::video::source::{EncodedSource, SourceError, VideoSource};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::time::Instant;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

fn device_error(path: &Path, reason: impl std::fmt::Display) -> SourceError {
    SourceError::Device {
        device: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// `/dev/video*` nodes, sorted by number.
pub(crate) fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// Reads what one device offers; `None` when it is not a capture device.
pub fn probe(path: &Path) -> Result<Option<CameraInfo>, SourceError> {
    let dev = Device::with_path(path).map_err(|e| device_error(path, e))?;
    let caps = dev.query_caps().map_err(|e| device_error(path, e))?;
    if !caps
        .capabilities
        .contains(v4l::capability::Flags::VIDEO_CAPTURE)
    {
        return Ok(None);
    }
    let mut options = Vec::new();
    for desc in dev.enum_formats().unwrap_or_default() {
        for size in dev.enum_framesizes(desc.fourcc).unwrap_or_default() {
            for d in size.size.to_discrete().into_iter().take(64) {
                let fps = dev
                    .enum_frameintervals(desc.fourcc, d.width, d.height)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| match i.interval {
                        v4l::frameinterval::FrameIntervalEnum::Discrete(f) => f,
                        v4l::frameinterval::FrameIntervalEnum::Stepwise(s) => s.min,
                    })
                    .filter(|f| f.numerator > 0)
                    .map(|f| f64::from(f.denominator) / f64::from(f.numerator))
                    .collect();
                options.push(FormatOption {
                    fourcc: desc.fourcc.repr,
                    width: d.width,
                    height: d.height,
                    fps,
                });
            }
        }
    }
    Ok(Some(CameraInfo {
        path: path.to_owned(),
        name: caps.card,
        bus: caps.bus,
        options,
    }))
}

/// Every capture device with its formats (devices that cannot be opened are skipped).
pub fn list_cameras() -> Vec<CameraInfo> {
    video_nodes()
        .iter()
        .filter_map(|p| probe(p).ok().flatten())
        .collect()
}

/// A device opened for capture: the negotiated format and the row stride the driver
/// set (`bytesperline`; 0 when it reports none).
struct Opened {
    dev: Device,
    choice: Choice,
    stride: usize,
    stream: v4l::io::mmap::Stream<'static>,
}

/// Opens `path` in the negotiated format.
fn open_device(path: &Path, want: (u32, u32), fps: u32) -> Result<Opened, SourceError> {
    let info = probe(path)?.ok_or_else(|| device_error(path, "is not a video capture device"))?;
    let choice = negotiate(&info.options, want, f64::from(fps)).ok_or_else(|| {
        device_error(
            path,
            "offers no usable format (H.264, MJPEG, YUV420, NV12 or YUYV)",
        )
    })?;
    let dev = Device::with_path(path).map_err(|e| device_error(path, e))?;
    let mut format = dev.format().map_err(|e| device_error(path, e))?;
    format.width = choice.width;
    format.height = choice.height;
    format.fourcc = FourCC::new(&choice.format.fourcc());
    let set = dev.set_format(&format).map_err(|e| device_error(path, e))?;
    if set.fourcc != format.fourcc || set.width != choice.width || set.height != choice.height {
        return Err(device_error(
            path,
            format!(
                "asked for {:?} {}x{}, the driver gave {} {}x{}",
                choice.format, choice.width, choice.height, set.fourcc, set.width, set.height
            ),
        ));
    }
    let rate = choice.fps.round().max(1.0) as u32;
    if let Err(e) = dev.set_params(&v4l::video::capture::Parameters::with_fps(rate)) {
        tracing::warn!("{}: cannot set {rate} fps: {e}", path.display());
    }
    let mut stream = v4l::io::mmap::Stream::with_buffers(&dev, Type::VideoCapture, 4)
        .map_err(|e| device_error(path, e))?;
    // A camera that stops delivering is an error, not a hung video thread.
    stream.set_timeout(CAPTURE_TIMEOUT);
    // Drivers may pad rows (to 32 or 64 bytes, say): conversions follow this stride.
    let stride = set.stride as usize;
    Ok(Opened {
        dev,
        choice,
        stride,
        stream,
    })
}

/// A V4L2 camera delivering raw or MJPEG frames, converted to I420.
pub struct V4lCamera {
    name: String,
    path: PathBuf,
    _dev: Device,
    stream: v4l::io::mmap::Stream<'static>,
    choice: Choice,
    /// Bytes from one row to the next in the driver's buffers (0: unpadded).
    stride: usize,
    next: u32,
}

impl V4lCamera {
    /// The format in use.
    pub fn choice(&self) -> Choice {
        self.choice
    }
}

impl VideoSource for V4lCamera {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> (usize, usize) {
        (self.choice.width as usize, self.choice.height as usize)
    }

    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
        let (w, h) = self.size();
        if frame.width != w || frame.height != h {
            *frame = Frame::new(w, h);
        }
        let (buf, _) = self
            .stream
            .next()
            .map_err(|e| device_error(&self.path, e))?;
        let converted = match self.choice.format {
            PixelFormat::Yuv420 => copy_i420(buf, w, h, self.stride, &mut frame.data),
            PixelFormat::Nv12 => nv12_to_i420(buf, w, h, self.stride, &mut frame.data),
            PixelFormat::Yuyv => yuyv_to_i420(buf, w, h, self.stride, &mut frame.data),
            PixelFormat::Mjpeg => mjpeg_to_i420(buf, w, h, &mut frame.data),
            PixelFormat::H264 => Err("H.264 is passed through, not captured raw".into()),
        };
        converted.map_err(|reason| device_error(&self.path, reason))?;
        frame.number = self.next;
        frame.captured = Instant::now();
        frame.capture_us = now_us();
        self.next = self.next.wrapping_add(1);
        Ok(())
    }
}

/// A V4L2 camera delivering H.264, passed through.
pub struct V4lH264Camera {
    name: String,
    path: PathBuf,
    _dev: Device,
    stream: v4l::io::mmap::Stream<'static>,
    size: (usize, usize),
    sets: ParameterSets,
    next: u32,
}

impl EncodedSource for V4lH264Camera {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> (usize, usize) {
        self.size
    }

    fn next_frame(&mut self) -> Result<EncodedFrame, SourceError> {
        let (buf, _) = self
            .stream
            .next()
            .map_err(|e| device_error(&self.path, e))?;
        let data = self.sets.complete(buf);
        let frame = EncodedFrame {
            keyframe: is_keyframe(&data),
            data: Bytes::from(data),
            number: self.next,
            capture_us: now_us(),
            captured: Instant::now(),
            // A camera's own H.264 has one temporal layer.
            temporal_layer: 0,
        };
        self.next = self.next.wrapping_add(1);
        Ok(frame)
    }
}

/// An opened camera: raw frames to encode, or H.264 to pass through.
pub enum OpenedCamera {
    /// Raw or MJPEG frames.
    Raw(V4lCamera),
    /// H.264 from the camera.
    H264(V4lH264Camera),
}

/// Opens a V4L2 device in the best format it offers for `want` at `fps`.
pub fn open_camera(path: &Path, want: (u32, u32), fps: u32) -> Result<OpenedCamera, SourceError> {
    let Opened {
        dev,
        choice,
        stride,
        stream,
    } = open_device(path, want, fps)?;
    let name = format!("{}:{:?}", path.display(), choice.format);
    tracing::info!(
        "camera {} opened: {:?} {}x{} @ {} fps",
        path.display(),
        choice.format,
        choice.width,
        choice.height,
        choice.fps
    );
    Ok(if choice.format == PixelFormat::H264 {
        OpenedCamera::H264(V4lH264Camera {
            name,
            path: path.to_owned(),
            _dev: dev,
            stream,
            size: (choice.width as usize, choice.height as usize),
            sets: ParameterSets::default(),
            next: 0,
        })
    } else {
        OpenedCamera::Raw(V4lCamera {
            name,
            path: path.to_owned(),
            _dev: dev,
            stream,
            choice,
            stride,
            next: 0,
        })
    })
}

/// How long a capture may wait for the next frame before it is an error.
const CAPTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

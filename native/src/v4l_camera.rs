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

use crate::camera::{now_us, CameraError, EncodedSource, Frame, VideoSource};
use crate::encoder::EncodedFrame;
use crate::h264::{is_keyframe, ParameterSets};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::time::Instant;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// Which video source the robot streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Camera {
    /// The first capture device; the test pattern when there is none.
    Auto,
    /// The built-in test pattern.
    TestPattern,
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
                        "camera {s:?} must be auto, test-pattern, /dev/videoN or file:PATH"
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
            Self::Device(p) => write!(f, "{}", p.display()),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// Capture formats the robot can use, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PixelFormat {
    /// H.264 from the camera's own encoder: passed through.
    H264,
    /// Motion JPEG: decoded, then encoded.
    Mjpeg,
    /// Planar 4:2:0 (`YU12`), the encoder's own layout.
    Yuv420,
    /// Semi-planar 4:2:0 (`NV12`).
    Nv12,
    /// Packed 4:2:2 (`YUYV`).
    Yuyv,
}

impl PixelFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::H264 => *b"H264",
            Self::Mjpeg => *b"MJPG",
            Self::Yuv420 => *b"YU12",
            Self::Nv12 => *b"NV12",
            Self::Yuyv => *b"YUYV",
        }
    }

    /// The format for a four-character code, if the robot can use it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        [
            Self::H264,
            Self::Mjpeg,
            Self::Yuv420,
            Self::Nv12,
            Self::Yuyv,
        ]
        .into_iter()
        .find(|f| f.fourcc() == code)
        .or(match &code {
            b"JPEG" => Some(Self::Mjpeg),
            _ => None,
        })
    }
}

/// One size a device offers in one format, with its frame rates.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOption {
    /// The four-character code, as the device reports it.
    pub fourcc: [u8; 4],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates offered at this size.
    pub fps: Vec<f64>,
}

/// What [`negotiate`] picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate to ask for.
    pub fps: f64,
}

/// Picks a capture format: the cheapest usable format, then the size closest to
/// `want` (exact, else the smallest larger one, else the largest), then the rate
/// closest to `fps` (at least `fps` when offered). `None` when nothing is usable.
pub fn negotiate(options: &[FormatOption], want: (u32, u32), fps: f64) -> Option<Choice> {
    let format = options
        .iter()
        .filter_map(|o| PixelFormat::from_fourcc(o.fourcc))
        .min()?;
    let sizes: Vec<&FormatOption> = options
        .iter()
        .filter(|o| PixelFormat::from_fourcc(o.fourcc) == Some(format))
        .filter(|o| o.width % 2 == 0 && o.height % 2 == 0 && o.width > 0 && o.height > 0)
        .collect();
    let area = |o: &FormatOption| u64::from(o.width) * u64::from(o.height);
    let covers = |o: &&&FormatOption| o.width >= want.0 && o.height >= want.1;
    let best = sizes
        .iter()
        .find(|o| (o.width, o.height) == want)
        .or_else(|| sizes.iter().filter(covers).min_by_key(|o| area(o)))
        .or_else(|| sizes.iter().max_by_key(|o| area(o)))?;
    let rate = best
        .fps
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r > 0.0)
        .min_by(|a, b| {
            // Prefer rates at or above the wanted one, then the closest.
            let key = |r: f64| ((r < fps - 1e-6) as u8, (r - fps).abs());
            key(*a)
                .partial_cmp(&key(*b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(fps);
    Some(Choice {
        format,
        width: best.width,
        height: best.height,
        fps: rate,
    })
}

/// One capture device and what it offers.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraInfo {
    /// Device path.
    pub path: PathBuf,
    /// The driver's name for it.
    pub name: String,
    /// Where it is attached (`usb-...`, `platform:...`).
    pub bus: String,
    /// Every format, size and rate.
    pub options: Vec<FormatOption>,
}

fn device_error(path: &Path, reason: impl std::fmt::Display) -> CameraError {
    CameraError::Device {
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
pub fn probe(path: &Path) -> Result<Option<CameraInfo>, CameraError> {
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

/// The `cameras` subcommand's text: one block per device, or "no camera found".
pub fn describe_cameras(cameras: &[CameraInfo]) -> String {
    if cameras.is_empty() {
        return "no camera found (no V4L2 capture device under /dev/video*); \
                the robot will stream the test pattern\n"
            .into();
    }
    let mut out = String::new();
    for cam in cameras {
        out.push_str(&format!("{} ({})\n", cam.path.display(), cam.name));
        for o in &cam.options {
            let code = String::from_utf8_lossy(&o.fourcc).into_owned();
            let usable = if PixelFormat::from_fourcc(o.fourcc).is_some() {
                ""
            } else {
                " (not usable)"
            };
            let rates: Vec<String> = o.fps.iter().map(|r| format!("{r:.0}")).collect();
            out.push_str(&format!(
                "  {code} {}x{} @ {} fps{usable}\n",
                o.width,
                o.height,
                rates.join("/")
            ));
        }
    }
    out
}

/// Opens `path` in the negotiated format.
fn open_device(
    path: &Path,
    want: (u32, u32),
    fps: u32,
) -> Result<(Device, Choice, v4l::io::mmap::Stream<'static>), CameraError> {
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
    Ok((dev, choice, stream))
}

/// A V4L2 camera delivering raw or MJPEG frames, converted to I420.
pub struct V4lCamera {
    name: String,
    path: PathBuf,
    _dev: Device,
    stream: v4l::io::mmap::Stream<'static>,
    choice: Choice,
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

    fn capture(&mut self, frame: &mut Frame) -> Result<(), CameraError> {
        let (w, h) = self.size();
        if frame.width != w || frame.height != h {
            *frame = Frame::new(w, h);
        }
        let (buf, _) = self
            .stream
            .next()
            .map_err(|e| device_error(&self.path, e))?;
        let converted = match self.choice.format {
            PixelFormat::Yuv420 => copy_i420(buf, w, h, &mut frame.data),
            PixelFormat::Nv12 => nv12_to_i420(buf, w, h, &mut frame.data),
            PixelFormat::Yuyv => yuyv_to_i420(buf, w, h, &mut frame.data),
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

    fn next_frame(&mut self) -> Result<EncodedFrame, CameraError> {
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
pub fn open_camera(path: &Path, want: (u32, u32), fps: u32) -> Result<OpenedCamera, CameraError> {
    let (dev, choice, stream) = open_device(path, want, fps)?;
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
            next: 0,
        })
    })
}

/// How long a capture may wait for the next frame before it is an error.
const CAPTURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `auto` may pick this device: not an ISP or codec node (a Pi exposes many
/// capture-capable nodes that are not cameras), and offering a usable format.
pub fn is_auto_candidate(cam: &CameraInfo, want: (u32, u32), fps: u32) -> bool {
    let name = cam.name.to_ascii_lowercase();
    let not_a_camera = ["isp", "codec", "pispbe", "rpivid", "hevc"]
        .iter()
        .any(|w| name.contains(w));
    !not_a_camera && negotiate(&cam.options, want, f64::from(fps)).is_some()
}

/// Capture devices `auto` may use, USB cameras first.
pub fn auto_candidates(cameras: Vec<CameraInfo>, want: (u32, u32), fps: u32) -> Vec<PathBuf> {
    let mut usable: Vec<CameraInfo> = cameras
        .into_iter()
        .filter(|c| is_auto_candidate(c, want, fps))
        .collect();
    usable.sort_by_key(|c| !c.bus.starts_with("usb"));
    usable.into_iter().map(|c| c.path).collect()
}

fn check_len(buf: &[u8], need: usize, what: &str) -> Result<(), String> {
    if buf.len() < need {
        Err(format!("{what} buffer is {} bytes, need {need}", buf.len()))
    } else {
        Ok(())
    }
}

/// Copies a planar 4:2:0 buffer.
pub fn copy_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let need = w * h * 3 / 2;
    check_len(buf, need, "YUV420")?;
    out[..need].copy_from_slice(&buf[..need]);
    Ok(())
}

/// Converts NV12 (Y plane, then interleaved U/V) to I420.
pub fn nv12_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let luma = w * h;
    check_len(buf, luma * 3 / 2, "NV12")?;
    out[..luma].copy_from_slice(&buf[..luma]);
    let (u, v) = out[luma..luma * 3 / 2].split_at_mut(luma / 4);
    for (i, uv) in buf[luma..luma * 3 / 2].chunks_exact(2).enumerate() {
        u[i] = uv[0];
        v[i] = uv[1];
    }
    Ok(())
}

/// Converts packed YUYV 4:2:2 to I420 (chroma of even rows).
pub fn yuyv_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let luma = w * h;
    check_len(buf, luma * 2, "YUYV")?;
    let (y, chroma) = out[..luma * 3 / 2].split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    for row in 0..h {
        let line = &buf[row * w * 2..(row + 1) * w * 2];
        for (col, px) in line.chunks_exact(4).enumerate() {
            y[row * w + col * 2] = px[0];
            y[row * w + col * 2 + 1] = px[2];
            if row % 2 == 0 {
                let c = (row / 2) * (w / 2) + col;
                u[c] = px[1];
                v[c] = px[3];
            }
        }
    }
    Ok(())
}

/// Decodes one MJPEG frame to I420 (BT.601 full-range, as JPEG uses).
pub fn mjpeg_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let mut decoder = jpeg_decoder::Decoder::new(buf);
    let pixels = decoder
        .decode()
        .map_err(|e| format!("bad MJPEG frame: {e}"))?;
    let info = decoder.info().ok_or("bad MJPEG frame: no header")?;
    if (usize::from(info.width), usize::from(info.height)) != (w, h) {
        return Err(format!(
            "MJPEG frame is {}x{}, expected {w}x{h}",
            info.width, info.height
        ));
    }
    let luma = w * h;
    let rgb: &dyn Fn(usize) -> (f32, f32, f32) = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => &|i| {
            (
                f32::from(pixels[i * 3]),
                f32::from(pixels[i * 3 + 1]),
                f32::from(pixels[i * 3 + 2]),
            )
        },
        jpeg_decoder::PixelFormat::L8 => &|i| {
            let l = f32::from(pixels[i]);
            (l, l, l)
        },
        other => return Err(format!("MJPEG pixel format {other:?} is not supported")),
    };
    let (y, chroma) = out[..luma * 3 / 2].split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    for row in 0..h {
        for col in 0..w {
            let (r, g, b) = rgb(row * w + col);
            y[row * w + col] = (0.299 * r + 0.587 * g + 0.114 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            if row % 2 == 0 && col % 2 == 0 {
                let c = (row / 2) * (w / 2) + col / 2;
                u[c] = (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
                v[c] = (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: &[u8; 4], width: u32, height: u32, fps: &[f64]) -> FormatOption {
        FormatOption {
            fourcc: *code,
            width,
            height,
            fps: fps.to_vec(),
        }
    }

    #[test]
    fn negotiation_prefers_cheap_formats_then_close_sizes_and_rates() {
        let webcam = [
            opt(b"YUYV", 640, 480, &[30.0, 15.0]),
            opt(b"YUYV", 1280, 720, &[10.0]),
            opt(b"MJPG", 640, 480, &[30.0]),
            opt(b"MJPG", 1920, 1080, &[30.0]),
        ];
        let c = negotiate(&webcam, (640, 480), 30.0).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.fps),
            (PixelFormat::Mjpeg, 640, 480, 30.0)
        );
        // Add H.264 (Pi camera, C920...): passed through, even at another size.
        let mut with_h264 = webcam.to_vec();
        with_h264.push(opt(b"H264", 1280, 720, &[60.0, 30.0, 15.0]));
        with_h264.push(opt(b"H264", 1920, 1080, &[30.0]));
        let c = negotiate(&with_h264, (640, 480), 25.0).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.fps),
            (PixelFormat::H264, 1280, 720, 30.0)
        );
        // Raw only: YUV420 beats NV12 beats YUYV.
        let raw = [
            opt(b"YUYV", 640, 480, &[30.0]),
            opt(b"NV12", 640, 480, &[30.0]),
            opt(b"YU12", 640, 480, &[30.0]),
        ];
        assert_eq!(
            negotiate(&raw, (640, 480), 30.0).unwrap().format,
            PixelFormat::Yuv420
        );
        assert_eq!(
            negotiate(&raw[..2], (640, 480), 30.0).unwrap().format,
            PixelFormat::Nv12
        );
        // Nothing big enough: the largest; a rate below the wanted one when that is all.
        let small = [
            opt(b"YUYV", 320, 240, &[15.0]),
            opt(b"YUYV", 160, 120, &[30.0]),
        ];
        let c = negotiate(&small, (640, 480), 30.0).unwrap();
        assert_eq!((c.width, c.height, c.fps), (320, 240, 15.0));
        // Unusable formats only: nothing.
        assert_eq!(
            negotiate(&[opt(b"RGB3", 640, 480, &[30.0])], (640, 480), 30.0),
            None
        );
        assert_eq!(negotiate(&[], (640, 480), 30.0), None);
    }

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
    }

    #[test]
    fn pixel_conversions_put_planes_in_place() {
        // 4x2 NV12: Y 0..8, then UV pairs (10,20), (11,21).
        let nv12 = [0, 1, 2, 3, 4, 5, 6, 7, 10, 20, 11, 21];
        let mut out = [0u8; 12];
        nv12_to_i420(&nv12, 4, 2, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 20, 21]);
        // 4x2 YUYV: Y0 U Y1 V per pixel pair.
        let yuyv = [1, 50, 2, 60, 3, 51, 4, 61, 5, 0, 6, 0, 7, 0, 8, 0];
        let mut out = [0u8; 12];
        yuyv_to_i420(&yuyv, 4, 2, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 50, 51, 60, 61]);
        assert!(yuyv_to_i420(&yuyv[..8], 4, 2, &mut out)
            .unwrap_err()
            .contains("need 16"));
        assert!(mjpeg_to_i420(&[0xFF, 0xD8, 1, 2], 4, 2, &mut out)
            .unwrap_err()
            .contains("bad MJPEG"));
    }

    #[test]
    fn listing_never_fails_and_says_when_nothing_is_there() {
        let cameras = list_cameras();
        let text = describe_cameras(&cameras);
        if cameras.is_empty() {
            assert!(text.contains("no camera found"));
        }
        let text = describe_cameras(&[CameraInfo {
            path: "/dev/video0".into(),
            name: "USB cam".into(),
            bus: "usb-0000:01:00.0-1.3".into(),
            options: vec![
                opt(b"MJPG", 640, 480, &[30.0, 15.0]),
                opt(b"RGB3", 640, 480, &[30.0]),
            ],
        }]);
        assert!(text.contains("/dev/video0 (USB cam)"));
        assert!(text.contains("MJPG 640x480 @ 30/15 fps"));
        assert!(text.contains("RGB3 640x480 @ 30 fps (not usable)"));
    }

    #[test]
    fn auto_skips_isp_and_codec_nodes_and_prefers_usb() {
        let cam = |path: &str, name: &str, bus: &str, code: &[u8; 4]| CameraInfo {
            path: path.into(),
            name: name.into(),
            bus: bus.into(),
            options: vec![opt(code, 640, 480, &[30.0])],
        };
        let found = vec![
            cam("/dev/video0", "unicam", "platform:fe801000.csi", b"pRAA"),
            cam(
                "/dev/video1",
                "mmal service",
                "platform:bcm2835-camera",
                b"YU12",
            ),
            cam(
                "/dev/video14",
                "bcm2835-isp",
                "platform:bcm2835-isp",
                b"YU12",
            ),
            cam("/dev/video2", "HD Webcam", "usb-0000:01:00.0-1.2", b"MJPG"),
        ];
        assert_eq!(
            auto_candidates(found, (640, 480), 30),
            [PathBuf::from("/dev/video2"), PathBuf::from("/dev/video1")]
        );
    }
}

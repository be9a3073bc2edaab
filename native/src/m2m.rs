//! The V4L2 memory-to-memory hardware encoder: raw [`Frame`]s in, H.264 out, encoded
//! by the SoC's codec block (the Raspberry Pi's `bcm2835-codec` at `/dev/video11`, or
//! any other *stateful* M2M encoder such as Qualcomm's Venus), so that the robot's CPU
//! only copies pixels.
//!
//! A stateful encoder has two queues: raw pictures go into its OUTPUT queue, coded
//! pictures come back on its CAPTURE queue, each carrying the timestamp of the picture
//! it was made from. [`M2mEncoder`] keeps both queues fed from the stream thread, one
//! frame at a time: it copies the frame into a free OUTPUT buffer, queues it, and waits
//! (bounded) for the coded picture; pictures that arrive late are handed out by
//! [`VideoEncoder::next_ready`], so nothing the hardware produced is lost.
//!
//! Why `v4l2r` rather than the `v4l` crate the camera uses: the Pi's codec speaks the
//! multi-planar API, which `v4l` 0.14 cannot drive; `v4l2r` is the safe binding of the
//! whole V4L2 API (typed queues, buffer states, multi-planar formats) written for
//! ChromeOS's video work. Version 0.0.6 is pinned because later versions need kernel
//! headers newer than Debian 12's. Its high-level `encoder` runs its own thread and
//! panics on unexpected device events, so this module drives the queues itself.
//!
//! The pure parts are unit-tested on recorded device descriptions: which device is an
//! encoder ([`check_device`]), where each plane of a frame goes in the device's buffers
//! ([`PlaneLayout`]), which coded buffer belongs to which frame ([`InFlight`]) and the
//! H.264 clean-up of what the hardware returns ([`CodedOutput`]). The ioctl path runs
//! against the kernel's own `vicodec` encoder inside a VM (`tests/tests/v4l2_vm.rs`).

use crate::camera::Frame;
use crate::encoder::{EncodedFrame, EncoderError, EncoderSettings, VideoEncoder};
use crate::h264::{self, ParameterSets};
use bytes::Bytes;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use v4l2r::bindings;
use v4l2r::device::poller::{DeviceEvent, Poller};
use v4l2r::device::queue::direction::{Capture, Output};
use v4l2r::device::queue::{BuffersAllocated, GetFreeCaptureBuffer, GetFreeOutputBuffer, Queue};
use v4l2r::device::{AllocatedQueue, Device, DeviceConfig, Stream, TryDequeue};
use v4l2r::ioctl::{self, BufferFlags, Capabilities, DqBufError, DqBufIoctlError};
use v4l2r::memory::MmapHandle;
use v4l2r::nix::sys::time::TimeVal;
use v4l2r::Format;
use v4l2r::QueueType;

/// The coded format the robot streams.
pub const H264: [u8; 4] = *b"H264";

/// Raw pictures queued on the encoder at once.
const OUTPUT_BUFFERS: u32 = 3;
/// Coded buffers the encoder can fill ahead of us.
const CAPTURE_BUFFERS: u32 = 4;
/// Frames in a row without a coded picture back before the encoder counts as stalled.
const STALLED_AFTER: u32 = 30;

/// Why the hardware encoder cannot be used.
#[derive(Debug, Error)]
pub enum M2mError {
    /// No device on this machine is a usable encoder.
    #[error("no V4L2 memory-to-memory {codec} encoder found ({tried})")]
    NotFound {
        /// The coded format looked for.
        codec: String,
        /// Each device looked at and why it was passed over, or "no /dev/video* devices".
        tried: String,
    },
    /// The device is not an encoder for the wanted format.
    #[error("{path}: {reason}")]
    NotAnEncoder {
        /// The device.
        path: PathBuf,
        /// What it lacks.
        reason: String,
    },
    /// A V4L2 call failed.
    #[error("{path}: cannot {action}: {reason}")]
    Device {
        /// The device.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// What the kernel said.
        reason: String,
    },
}

impl From<M2mError> for EncoderError {
    fn from(err: M2mError) -> Self {
        EncoderError::Codec(err.to_string())
    }
}

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

    fn planes(self) -> usize {
        match self {
            Self::Yu12 | Self::Nv12 => 1,
            Self::Nm12 => 2,
            Self::Ym12 => 3,
        }
    }
}

fn fourcc_list(formats: &[[u8; 4]]) -> String {
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

fn open_device(path: &Path) -> Result<Device, M2mError> {
    Device::open(path, DeviceConfig::new().non_blocking_dqbuf())
        .map_err(|e| device_error(path, "open the device", chain(&e)))
}

fn device_error(path: &Path, action: &'static str, reason: impl std::fmt::Display) -> M2mError {
    M2mError::Device {
        path: path.to_owned(),
        action,
        reason: reason.to_string(),
    }
}

/// An error and its causes on one line (v4l2r's errors keep the errno as a source).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn describe_open(device: &Device) -> DeviceDescription {
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
    for path in crate::v4l_camera::video_nodes() {
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

/// Which part of a frame one copy moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Y,
    U,
    V,
    /// U and V interleaved, U first.
    Uv,
}

/// One plane of a frame placed in a device buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlaneCopy {
    /// Index of the V4L2 buffer plane it goes in.
    buffer_plane: usize,
    /// Byte offset of its first row there.
    offset: usize,
    /// Bytes from one row to the next there.
    stride: usize,
    component: Component,
}

/// Where each plane of a `width`×`height` I420 frame goes in the device's buffers, from
/// the format the driver settled on (its `bytesperline` and `sizeimage` per buffer
/// plane). Drivers pad rows (the Pi's codec to 32 bytes) and may add bytes after the
/// picture; every copy is checked to fit before any is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneLayout {
    width: usize,
    height: usize,
    copies: Vec<PlaneCopy>,
    /// `bytesused` of each buffer plane.
    bytes_used: Vec<usize>,
}

impl PlaneLayout {
    /// The layout for `format` with the driver's `(bytesperline, sizeimage)` per plane.
    pub fn new(
        format: RawFormat,
        width: usize,
        height: usize,
        planes: &[(usize, usize)],
    ) -> Result<Self, String> {
        if width % 2 != 0 || height % 2 != 0 || width == 0 || height == 0 {
            return Err(format!("{width}x{height} is not an even size"));
        }
        if planes.len() != format.planes() {
            return Err(format!(
                "{} needs {} buffer planes, the driver set {}",
                fourcc_list(&[format.fourcc()]),
                format.planes(),
                planes.len()
            ));
        }
        let (cw, ch) = (width / 2, height / 2);
        let overflow = || format!("the driver's format for {width}x{height} overflows");
        let copy = |buffer_plane, offset, stride, component| PlaneCopy {
            buffer_plane,
            offset,
            stride,
            component,
        };
        let copies = match format {
            RawFormat::Yu12 | RawFormat::Nv12 => {
                let stride = planes[0].0;
                if stride < width {
                    return Err(format!("bytesperline {stride} < width {width}"));
                }
                // As V4L2 defines these formats: the chroma follows `height` rows of
                // `bytesperline`; whatever `sizeimage` has beyond (alignment, metadata)
                // is the driver's and left alone.
                let chroma = stride.checked_mul(height).ok_or_else(overflow)?;
                if format == RawFormat::Yu12 {
                    let cstride = stride / 2;
                    let v = cstride
                        .checked_mul(ch)
                        .and_then(|n| n.checked_add(chroma))
                        .ok_or_else(overflow)?;
                    vec![
                        copy(0, 0, stride, Component::Y),
                        copy(0, chroma, cstride, Component::U),
                        copy(0, v, cstride, Component::V),
                    ]
                } else {
                    vec![
                        copy(0, 0, stride, Component::Y),
                        copy(0, chroma, stride, Component::Uv),
                    ]
                }
            }
            RawFormat::Ym12 => vec![
                copy(0, 0, planes[0].0, Component::Y),
                copy(1, 0, planes[1].0, Component::U),
                copy(2, 0, planes[2].0, Component::V),
            ],
            RawFormat::Nm12 => vec![
                copy(0, 0, planes[0].0, Component::Y),
                copy(1, 0, planes[1].0, Component::Uv),
            ],
        };
        // Every row of every copy must fit in its buffer plane.
        for c in &copies {
            let (row, rows) = match c.component {
                Component::Y => (width, height),
                Component::U | Component::V => (cw, ch),
                Component::Uv => (width, ch),
            };
            let end = c
                .stride
                .checked_mul(rows - 1)
                .and_then(|n| n.checked_add(c.offset))
                .and_then(|n| n.checked_add(row))
                .ok_or_else(overflow)?;
            if c.stride < row || end > planes[c.buffer_plane].1 {
                return Err(format!(
                    "the driver's plane {} (bytesperline {}, sizeimage {}) cannot hold a \
                     {width}x{height} picture",
                    c.buffer_plane, planes[c.buffer_plane].0, planes[c.buffer_plane].1
                ));
            }
        }
        Ok(Self {
            width,
            height,
            copies,
            bytes_used: planes.iter().map(|p| p.1).collect(),
        })
    }

    /// `bytesused` to queue for each buffer plane.
    pub fn bytes_used(&self) -> &[usize] {
        &self.bytes_used
    }

    /// Copies `frame` into the mapped buffer planes.
    pub fn fill(&self, frame: &Frame, planes: &mut [&mut [u8]]) -> Result<(), String> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(format!(
                "frame is {}x{}, the encoder was set up for {}x{}",
                frame.width, frame.height, self.width, self.height
            ));
        }
        let (w, cw, ch) = (self.width, self.width / 2, self.height / 2);
        for c in &self.copies {
            let dst = planes
                .get_mut(c.buffer_plane)
                .ok_or_else(|| format!("buffer plane {} is not mapped", c.buffer_plane))?;
            let needed = self.bytes_used[c.buffer_plane].min(dst.len());
            if needed < self.bytes_used[c.buffer_plane] {
                return Err(format!(
                    "buffer plane {} is {} bytes, the format needs {}",
                    c.buffer_plane,
                    dst.len(),
                    self.bytes_used[c.buffer_plane]
                ));
            }
            let rows = |src: &[u8], row: usize, dst: &mut [u8]| {
                for (i, line) in src.chunks_exact(row).enumerate() {
                    let at = c.offset + i * c.stride;
                    dst[at..at + row].copy_from_slice(line);
                }
            };
            match c.component {
                Component::Y => rows(frame.y(), w, dst),
                Component::U => rows(frame.u(), cw, dst),
                Component::V => rows(frame.v(), cw, dst),
                Component::Uv => {
                    let (u, v) = (frame.u(), frame.v());
                    for r in 0..ch {
                        let at = c.offset + r * c.stride;
                        let line = &mut dst[at..at + w];
                        for (i, pair) in line.chunks_exact_mut(2).enumerate() {
                            pair[0] = u[r * cw + i];
                            pair[1] = v[r * cw + i];
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// What the stream knows about a frame while the hardware holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Source frame number.
    pub number: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
    /// Capture time on the monotonic clock.
    pub captured: Instant,
}

/// Frames queued on the encoder, by the timestamp they were queued with.
///
/// Stateful encoders copy each raw picture's timestamp to its coded picture. The
/// timestamp is the frame's age since the encoder started, in microseconds, forced to
/// grow by at least 1 µs per frame, so it is unique and real time for drivers whose rate
/// control reads it.
#[derive(Debug)]
pub struct InFlight {
    started: Instant,
    last: u64,
    frames: VecDeque<(u64, FrameInfo)>,
}

impl InFlight {
    /// An empty list; timestamps count from `started`.
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            last: 0,
            frames: VecDeque::new(),
        }
    }

    /// The timestamp, in microseconds, for a frame captured at `captured`.
    pub fn stamp(&mut self, captured: Instant) -> u64 {
        let age = captured.saturating_duration_since(self.started).as_micros() as u64;
        let ts = age.max(self.last + 1);
        self.last = ts;
        ts
    }

    /// Records a frame queued with timestamp `ts` (from [`InFlight::stamp`]).
    pub fn push(&mut self, ts: u64, frame: FrameInfo) {
        self.frames.push_back((ts, frame));
    }

    /// The frame a coded picture with timestamp `ts` came from, and how many older frames
    /// the encoder dropped without a picture (they are forgotten). An unknown timestamp
    /// (a second buffer for a frame already matched, a driver's zero) matches nothing:
    /// guessing would shift every later picture onto the wrong frame.
    pub fn take(&mut self, ts: u64) -> Option<(FrameInfo, usize)> {
        let i = self.frames.iter().position(|(t, _)| *t == ts)?;
        let frame = self.frames[i].1;
        self.frames.drain(..=i);
        Some((frame, i))
    }

    /// Whether the frame queued with `ts` still waits for its picture.
    pub fn contains(&self, ts: u64) -> bool {
        self.frames.iter().any(|(t, _)| *t == ts)
    }

    /// Frames waiting for their picture.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when no frame waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Turns what the encoder hands back into pictures fit to send.
///
/// For H.264: a buffer with only parameter sets (drivers that send the stream header
/// apart) is remembered, not sent; SPS/PPS are put in front of every IDR that lacks
/// them, so a viewer can join at any keyframe; keyframes are read from the NAL units.
/// For other codecs the driver's keyframe flag is used.
#[derive(Debug)]
pub struct CodedOutput {
    codec: [u8; 4],
    params: ParameterSets,
}

impl CodedOutput {
    /// Clean-up for `codec`.
    pub fn new(codec: [u8; 4]) -> Self {
        Self {
            codec,
            params: ParameterSets::default(),
        }
    }

    /// The picture in `bytes` and whether it is a keyframe; `None` when the buffer holds
    /// no picture.
    pub fn picture(&mut self, bytes: &[u8], keyframe_flag: bool) -> Option<(Vec<u8>, bool)> {
        if bytes.is_empty() {
            return None;
        }
        if self.codec != H264 {
            return Some((bytes.to_vec(), keyframe_flag));
        }
        let au = self.params.complete(bytes);
        let has_slice = h264::split_nals(&au)
            .iter()
            .any(|n| matches!(h264::nal_type(n), h264::NAL_SLICE | h264::NAL_IDR));
        if !has_slice {
            return None;
        }
        let keyframe = h264::is_keyframe(&au);
        Some((au, keyframe))
    }
}

type MmapQueue<D> = Queue<D, BuffersAllocated<Vec<MmapHandle>>>;

/// A stateful V4L2 M2M encoder, driven synchronously from the stream thread.
pub struct M2mEncoder {
    name: String,
    path: PathBuf,
    device: Arc<Device>,
    output: MmapQueue<Output>,
    capture: MmapQueue<Capture>,
    poller: Poller,
    layout: PlaneLayout,
    in_flight: InFlight,
    coded: CodedOutput,
    ready: VecDeque<EncodedFrame>,
    /// How long `encode` waits for the picture of the frame it queued.
    wait: Duration,
    /// A keyframe was asked for and not yet applied to a queued frame.
    keyframe_pending: bool,
    /// `encode` calls in a row that gave no picture.
    barren: u32,
    /// Pictures the driver flagged as corrupt.
    corrupt: u64,
    skipped: u64,
}

impl M2mEncoder {
    /// Opens `path` as an encoder from `width`×`height` raw frames to `codec`.
    pub fn open(
        path: &Path,
        codec: [u8; 4],
        width: u32,
        height: u32,
        settings: EncoderSettings,
    ) -> Result<Self, M2mError> {
        let device = Arc::new(open_device(path)?);
        let description = describe_open(&device);
        let raw = check_device(&description, codec).map_err(|reason| M2mError::NotAnEncoder {
            path: path.to_owned(),
            reason,
        })?;
        let mplane = description.api == Some(M2mApi::MultiPlanar);
        let mut output = if mplane {
            Queue::get_output_mplane_queue(device.clone())
        } else {
            Queue::get_output_queue(device.clone())
        }
        .map_err(|e| device_error(path, "take the OUTPUT queue", chain(&e)))?;
        let mut capture = if mplane {
            Queue::get_capture_mplane_queue(device.clone())
        } else {
            Queue::get_capture_queue(device.clone())
        }
        .map_err(|e| device_error(path, "take the CAPTURE queue", chain(&e)))?;

        // The stateful encoder order: coded format first, then the raw one.
        let (w, h) = (width as usize, height as usize);
        let coded: Format = capture
            .change_format()
            .map_err(|e| device_error(path, "read the CAPTURE format", chain(&e)))?
            .set_pixelformat(&codec)
            .set_size(w, h)
            // Let the driver choose strides and sizes afresh, not echo G_FMT's.
            .set_planes_layout([v4l2r::PlaneLayout::default()])
            .apply()
            .map_err(|e| device_error(path, "set the coded format", chain(&e)))?;
        if <[u8; 4]>::from(coded.pixelformat) != codec {
            return Err(device_error(
                path,
                "set the coded format",
                format!(
                    "the driver chose {}",
                    fourcc_list(&[coded.pixelformat.into()])
                ),
            ));
        }
        let raw_format: Format = output
            .change_format()
            .map_err(|e| device_error(path, "read the OUTPUT format", chain(&e)))?
            .set_pixelformat(&raw.fourcc())
            .set_size(w, h)
            .set_planes_layout(vec![v4l2r::PlaneLayout::default(); raw.planes()])
            .apply()
            .map_err(|e| device_error(path, "set the raw format", chain(&e)))?;
        if <[u8; 4]>::from(raw_format.pixelformat) != raw.fourcc()
            || (raw_format.width, raw_format.height) != (width, height)
        {
            return Err(device_error(
                path,
                "set the raw format",
                format!(
                    "asked for {} {width}x{height}, the driver chose {} {}x{}",
                    fourcc_list(&[raw.fourcc()]),
                    fourcc_list(&[raw_format.pixelformat.into()]),
                    raw_format.width,
                    raw_format.height
                ),
            ));
        }
        let planes: Vec<(usize, usize)> = raw_format
            .plane_fmt
            .iter()
            .map(|p| (p.bytesperline as usize, p.sizeimage as usize))
            .collect();
        let layout = PlaneLayout::new(raw, w, h, &planes)
            .map_err(|reason| device_error(path, "use the raw format", reason))?;

        set_controls(&device, codec, (width, height), settings);
        set_frame_rate(&device, mplane, settings.fps);

        let output = output
            .request_buffers::<Vec<MmapHandle>>(OUTPUT_BUFFERS)
            .map_err(|e| device_error(path, "allocate OUTPUT buffers", chain(&e)))?;
        let capture = capture
            .request_buffers::<Vec<MmapHandle>>(CAPTURE_BUFFERS)
            .map_err(|e| device_error(path, "allocate CAPTURE buffers", chain(&e)))?;
        let mut poller = Poller::new(device.clone())
            .map_err(|e| device_error(path, "poll the device", chain(&e)))?;
        // Wake when a coded picture is ready or a raw buffer is done (the kernel flags
        // only filled queues, and CAPTURE always has buffers queued).
        for event in [DeviceEvent::CaptureReady, DeviceEvent::OutputReady] {
            poller
                .enable_event(event)
                .map_err(|e| device_error(path, "poll the device", chain(&e)))?;
        }
        output
            .stream_on()
            .map_err(|e| device_error(path, "start the OUTPUT queue", chain(&e)))?;
        capture
            .stream_on()
            .map_err(|e| device_error(path, "start the CAPTURE queue", chain(&e)))?;
        let fps = settings.fps.max(1);
        let mut encoder = Self {
            name: format!("v4l2-m2m {} ({})", path.display(), description.card),
            path: path.to_owned(),
            device,
            output,
            capture,
            poller,
            layout,
            in_flight: InFlight::new(Instant::now()),
            coded: CodedOutput::new(codec),
            ready: VecDeque::new(),
            // Two frame periods, at least 50 ms: a hardware encoder takes a few ms.
            wait: Duration::from_secs(2)
                .div_f64(f64::from(fps))
                .max(Duration::from_millis(50)),
            keyframe_pending: false,
            barren: 0,
            corrupt: 0,
            skipped: 0,
        };
        encoder.queue_capture_buffers()?;
        Ok(encoder)
    }

    /// Frames the encoder dropped or had no buffer for.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn error(&self, action: &'static str, reason: impl std::fmt::Display) -> M2mError {
        device_error(&self.path, action, reason)
    }

    /// Hands every free CAPTURE buffer back to the driver.
    fn queue_capture_buffers(&mut self) -> Result<(), M2mError> {
        while let Ok(buffer) = self.capture.try_get_free_buffer() {
            buffer
                .queue()
                .map_err(|e| self.error("queue a CAPTURE buffer", e))?;
        }
        Ok(())
    }

    /// Takes back done OUTPUT buffers and every coded picture ready now.
    fn collect(&mut self) -> Result<(), M2mError> {
        loop {
            match self.output.try_dequeue() {
                Ok(_) => {}
                Err(DqBufError::IoctlError(DqBufIoctlError::NotReady)) => break,
                Err(e) => return Err(self.error("take back a raw buffer", e)),
            }
        }
        loop {
            let buffer = match self.capture.try_dequeue() {
                Ok(buffer) => buffer,
                Err(DqBufError::IoctlError(DqBufIoctlError::NotReady)) => break,
                Err(e) => return Err(self.error("take a coded buffer", e)),
            };
            let flags = buffer.data.flags();
            let tv = buffer.data.timestamp();
            let ts = (tv.tv_sec as u64)
                .saturating_mul(1_000_000)
                .saturating_add(tv.tv_usec as u64);
            let plane = buffer.data.get_first_plane();
            let range = payload(
                plane.data_offset.copied().unwrap_or(0),
                *plane.bytesused,
                *plane.length,
            );
            let bytes = match range {
                Some((start, end)) if !flags.contains(BufferFlags::ERROR) => buffer
                    .get_plane_mapping(0)
                    .map(|m| m.as_ref()[..end - start].to_vec())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            drop(buffer);
            if flags.contains(BufferFlags::ERROR) || range.is_none() {
                self.corrupt += 1;
                if self.corrupt == 1 || self.corrupt % 100 == 0 {
                    tracing::warn!(
                        "{}: {} coded pictures flagged corrupt or out of bounds",
                        self.name,
                        self.corrupt
                    );
                }
                continue;
            }
            let Some((data, keyframe)) = self
                .coded
                .picture(&bytes, flags.contains(BufferFlags::KEYFRAME))
            else {
                continue;
            };
            match self.in_flight.take(ts) {
                Some((info, dropped)) => {
                    self.skipped += dropped as u64;
                    self.ready.push_back(EncodedFrame {
                        data: Bytes::from(data),
                        keyframe,
                        number: info.number,
                        capture_us: info.capture_us,
                        captured: info.captured,
                    });
                }
                None => tracing::debug!("{}: a picture for no queued frame ({ts})", self.name),
            }
        }
        self.queue_capture_buffers()
    }

    /// Collects until `done` holds or `wait` passes.
    fn collect_until(
        &mut self,
        wait: Duration,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), M2mError> {
        let deadline = Instant::now() + wait;
        loop {
            self.collect()?;
            let now = Instant::now();
            if done(self) || now >= deadline {
                return Ok(());
            }
            // epoll counts whole milliseconds: round up, or the last one would spin.
            let left = Duration::from_millis((deadline - now).as_micros().div_ceil(1000) as u64);
            self.poller
                .poll(Some(left))
                .map_err(|e| self.error("wait for the encoder", e))?;
        }
    }

    /// Copies `frame` into a free raw buffer and queues it; returns its timestamp, or
    /// `None` when every raw buffer is still with the hardware.
    fn queue_frame(&mut self, frame: &Frame) -> Result<Option<u64>, M2mError> {
        if self.output.num_free_buffers() == 0 {
            let wait = self.wait;
            self.collect_until(wait, |s| s.output.num_free_buffers() > 0)?;
        }
        let Ok(buffer) = self.output.try_get_free_buffer() else {
            return Ok(None);
        };
        let mut maps = Vec::with_capacity(self.layout.bytes_used().len());
        for plane in 0..self.layout.bytes_used().len() {
            maps.push(
                buffer
                    .get_plane_mapping(plane)
                    .ok_or_else(|| self.error("map a raw buffer", "mmap failed"))?,
            );
        }
        {
            let mut slices: Vec<&mut [u8]> = maps.iter_mut().map(|m| m.as_mut()).collect();
            self.layout
                .fill(frame, &mut slices)
                .map_err(|e| self.error("fill a raw buffer", e))?;
        }
        drop(maps);
        if self.keyframe_pending {
            // A button control for the next frame queued; drivers without it make
            // keyframes on their own period.
            let _ = ioctl::s_ctrl(
                &*self.device,
                bindings::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME,
                1,
            );
            self.keyframe_pending = false;
        }
        let ts = self.in_flight.stamp(frame.captured);
        let bytes_used = self.layout.bytes_used().to_vec();
        buffer
            .set_timestamp(TimeVal::new((ts / 1_000_000) as _, (ts % 1_000_000) as _))
            .queue(&bytes_used)
            .map_err(|e| self.error("queue a raw buffer", e))?;
        self.in_flight.push(
            ts,
            FrameInfo {
                number: frame.number,
                capture_us: frame.capture_us,
                captured: frame.captured,
            },
        );
        Ok(Some(ts))
    }
}

/// The bytes of a coded buffer plane, `[data_offset, bytesused)` (V4L2's `bytesused`
/// counts the offset), or `None` when the driver's numbers do not fit the buffer.
fn payload(data_offset: u32, bytes_used: u32, length: u32) -> Option<(usize, usize)> {
    (data_offset <= bytes_used && bytes_used <= length)
        .then_some((data_offset as usize, bytes_used as usize))
}

/// Sets the rate-control and stream-shape controls the driver has; missing ones are
/// skipped (drivers differ; the Pi's codec has all of them).
fn set_controls(
    device: &Device,
    codec: [u8; 4],
    (width, height): (u32, u32),
    settings: EncoderSettings,
) {
    let gop = settings.keyframe_interval.max(1) as i32;
    let mut controls = vec![
        (
            "bitrate",
            bindings::V4L2_CID_MPEG_VIDEO_BITRATE,
            settings
                .bitrate_kbps
                .saturating_mul(1000)
                .min(i32::MAX as u32) as i32,
        ),
        (
            "bitrate mode CBR",
            bindings::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
            bindings::v4l2_mpeg_video_bitrate_mode_V4L2_MPEG_VIDEO_BITRATE_MODE_CBR as i32,
        ),
        ("GOP size", bindings::V4L2_CID_MPEG_VIDEO_GOP_SIZE, gop),
        ("no B-frames", bindings::V4L2_CID_MPEG_VIDEO_B_FRAMES, 0),
    ];
    if codec == H264 {
        controls.extend([
            (
                "constrained baseline",
                bindings::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                bindings::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE
                    as i32,
            ),
            (
                "level",
                bindings::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                h264_level(width, height, settings.fps) as i32,
            ),
            ("I period", bindings::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, gop),
            (
                "SPS/PPS with every IDR",
                bindings::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
                1,
            ),
            (
                "SPS/PPS before IDR",
                bindings::V4L2_CID_MPEG_VIDEO_PREPEND_SPSPPS_TO_IDR,
                1,
            ),
            (
                "header with the first frame",
                bindings::V4L2_CID_MPEG_VIDEO_HEADER_MODE,
                bindings::v4l2_mpeg_video_header_mode_V4L2_MPEG_VIDEO_HEADER_MODE_JOINED_WITH_1ST_FRAME
                    as i32,
            ),
        ]);
    }
    for (what, id, value) in controls {
        if let Err(err) = ioctl::s_ctrl(device, id, value) {
            tracing::debug!("hardware encoder: {what} not set: {err}");
        }
    }
}

/// The lowest H.264 level (a V4L2 menu value) that holds `width`×`height` at `fps`:
/// 3.1, which the robot's SDP offers (`profile-level-id=42e01f`) and every browser
/// decodes, up to 720p30; 4.0 up to 1080p30; 4.2 beyond. (Browsers decode higher
/// levels than they are offered; a level too low would make the encoder refuse.)
fn h264_level(width: u32, height: u32, fps: u32) -> u32 {
    let macroblocks = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let per_second = macroblocks * u64::from(fps);
    if macroblocks <= 3_600 && per_second <= 108_000 {
        bindings::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1
    } else if macroblocks <= 8_192 && per_second <= 245_760 {
        bindings::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0
    } else {
        bindings::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2
    }
}

/// Tells the encoder the frame rate (`VIDIOC_S_PARM` on OUTPUT), which rate control
/// needs to turn the bitrate into bits per frame; skipped by drivers without it.
fn set_frame_rate(device: &Device, mplane: bool, fps: u32) {
    let parm = bindings::v4l2_streamparm {
        type_: if mplane {
            bindings::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
        } else {
            bindings::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT
        },
        parm: bindings::v4l2_streamparm__bindgen_ty_1 {
            output: bindings::v4l2_outputparm {
                timeperframe: bindings::v4l2_fract {
                    numerator: 1,
                    denominator: fps.max(1),
                },
                ..Default::default()
            },
        },
    };
    if let Err(err) = ioctl::s_parm::<_, bindings::v4l2_streamparm>(device, parm) {
        tracing::debug!("hardware encoder: frame rate not set: {err}");
    }
}

impl VideoEncoder for M2mEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode(
        &mut self,
        frame: &Frame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncoderError> {
        if (frame.width, frame.height) != (self.layout.width, self.layout.height) {
            return Err(self
                .error(
                    "encode",
                    format!(
                        "frame is {}x{}, the encoder was set up for {}x{}",
                        frame.width, frame.height, self.layout.width, self.layout.height
                    ),
                )
                .into());
        }
        self.keyframe_pending |= force_keyframe;
        self.collect()?;
        match self.queue_frame(frame)? {
            Some(ts) => {
                let wait = self.wait;
                self.collect_until(wait, |s| !s.in_flight.contains(ts))?;
            }
            // Every raw buffer is still with the hardware: this frame is skipped.
            None => self.skipped += 1,
        }
        // A hung or broken encoder gives nothing back: after a run of empty calls that
        // is an error, so that the stream reports it and `auto` falls back.
        let picture = self.ready.pop_front();
        if picture.is_some() {
            self.barren = 0;
        } else {
            self.barren += 1;
            if self.barren >= STALLED_AFTER {
                return Err(self
                    .error(
                        "encode",
                        format!("no coded picture for {} frames in a row", self.barren),
                    )
                    .into());
            }
        }
        Ok(picture)
    }

    fn next_ready(&mut self) -> Option<EncodedFrame> {
        self.ready.pop_front()
    }
}

impl Drop for M2mEncoder {
    fn drop(&mut self) {
        // Stop both queues so the driver lets go of the buffers before they are freed.
        let _ = self.output.stream_off();
        let _ = self.capture.stream_off();
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

    /// A frame whose every byte says where it came from: Y = row+col, U = 100+row,
    /// V = 200+col (mod 256).
    fn marked_frame(w: usize, h: usize) -> Frame {
        let mut f = Frame::new(w, h);
        let (cw, ch) = (w / 2, h / 2);
        for r in 0..h {
            for c in 0..w {
                f.data[r * w + c] = (r + c) as u8;
            }
        }
        for r in 0..ch {
            for c in 0..cw {
                f.data[w * h + r * cw + c] = (100 + r) as u8;
                f.data[w * h + cw * ch + r * cw + c] = (200 + c) as u8;
            }
        }
        f
    }

    #[test]
    fn yu12_with_padded_rows_puts_each_plane_where_the_driver_wants_it() {
        // Rows padded to 32 bytes (the Pi's codec: 1000 wide becomes 1024 bytes per
        // line) and a sizeimage with room to spare after the picture (alignment or
        // metadata, as some drivers add): chroma follows 600 rows of 1024 bytes.
        let (w, h) = (1000, 600);
        let size = 1024 * 600 * 3 / 2 + 8192;
        let layout = PlaneLayout::new(RawFormat::Yu12, w, h, &[(1024, size)]).unwrap();
        let mut buf = vec![0u8; size];
        layout
            .fill(&marked_frame(w, h), &mut [buf.as_mut_slice()])
            .unwrap();
        assert_eq!(buf[0], 0);
        assert_eq!(buf[1024 * 7 + 5], 12, "Y row 7 col 5 at stride 1024");
        assert_eq!(buf[1024 * 7 + 1000], 0, "padding untouched");
        let u = 1024 * 600;
        assert_eq!(
            buf[u + 512 * 3 + 4],
            103,
            "U row 3 at stride 512 after 600 rows"
        );
        let v = u + 512 * 300;
        assert_eq!(buf[v + 512 * 299 + 499], (200 + 499) as u8, "last V sample");
        assert!(
            buf[v + 512 * 300..].iter().all(|&b| b == 0),
            "the driver's spare bytes"
        );
        assert_eq!(layout.bytes_used(), &[size]);

        // Unpadded 640x480 is our own layout, byte for byte.
        let layout = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(640, 460_800)]).unwrap();
        let frame = marked_frame(640, 480);
        let mut buf = vec![0u8; 460_800];
        layout.fill(&frame, &mut [buf.as_mut_slice()]).unwrap();
        assert_eq!(buf, frame.data);
    }

    #[test]
    fn nv12_and_multi_planar_layouts_interleave_and_split_chroma() {
        let frame = marked_frame(64, 32);
        let nv12 = PlaneLayout::new(RawFormat::Nv12, 64, 32, &[(64, 64 * 32 * 3 / 2)]).unwrap();
        let mut buf = vec![0u8; 64 * 48];
        nv12.fill(&frame, &mut [buf.as_mut_slice()]).unwrap();
        let uv = 64 * 32;
        assert_eq!(&buf[uv..uv + 4], &[100, 200, 100, 201]);
        assert_eq!(&buf[uv + 64 * 15 + 62..uv + 64 * 16], &[115, 231]);

        let nm12 = PlaneLayout::new(RawFormat::Nm12, 64, 32, &[(64, 2048), (64, 1024)]).unwrap();
        let (mut y, mut c) = (vec![0u8; 2048], vec![0u8; 1024]);
        nm12.fill(&frame, &mut [y.as_mut_slice(), c.as_mut_slice()])
            .unwrap();
        assert_eq!(y, frame.y());
        assert_eq!(&c[..2], &[100, 200]);

        let ym12 =
            PlaneLayout::new(RawFormat::Ym12, 64, 32, &[(64, 2048), (32, 512), (32, 512)]).unwrap();
        let (mut y, mut u, mut v) = (vec![0u8; 2048], vec![0u8; 512], vec![0u8; 512]);
        ym12.fill(
            &frame,
            &mut [y.as_mut_slice(), u.as_mut_slice(), v.as_mut_slice()],
        )
        .unwrap();
        assert_eq!(
            (y.as_slice(), u.as_slice(), v.as_slice()),
            (frame.y(), frame.u(), frame.v())
        );
    }

    #[test]
    fn layouts_that_cannot_hold_the_picture_are_refused() {
        let err = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(640, 1000)]).unwrap_err();
        assert!(err.contains("cannot hold a 640x480 picture"), "{err}");
        let err = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(320, 460_800)]).unwrap_err();
        assert!(err.contains("bytesperline 320 < width 640"), "{err}");
        let err =
            PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(usize::MAX / 2, 460_800)]).unwrap_err();
        assert!(err.contains("overflows"), "{err}");
        let err = PlaneLayout::new(RawFormat::Ym12, 640, 480, &[(640, 460_800)]).unwrap_err();
        assert!(err.contains("needs 3 buffer planes"), "{err}");
        let layout = PlaneLayout::new(RawFormat::Yu12, 64, 32, &[(64, 3072)]).unwrap();
        let mut small = vec![0u8; 100];
        let err = layout
            .fill(&marked_frame(64, 32), &mut [small.as_mut_slice()])
            .unwrap_err();
        assert!(err.contains("is 100 bytes, the format needs 3072"), "{err}");
        let err = layout
            .fill(&marked_frame(32, 32), &mut [vec![0u8; 3072].as_mut_slice()])
            .unwrap_err();
        assert!(err.contains("frame is 32x32"), "{err}");
    }

    #[test]
    fn h264_level_is_the_lowest_that_holds_the_stream() {
        use bindings::{
            v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1 as L31,
            v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0 as L40,
            v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2 as L42,
        };
        let cases = [
            ((640, 480, 30), L31),
            ((1280, 720, 30), L31),
            ((1280, 720, 60), L40),
            ((1920, 1080, 30), L40),
            ((1920, 1080, 60), L42),
        ];
        for ((w, h, fps), level) in cases {
            assert_eq!(h264_level(w, h, fps), level, "{w}x{h}@{fps}");
        }
    }

    #[test]
    fn coded_payload_bounds_come_from_the_driver_and_are_checked() {
        assert_eq!(payload(0, 4000, 65_536), Some((0, 4000)));
        // bytesused counts data_offset: the picture is bytes 64..4000.
        assert_eq!(payload(64, 4000, 65_536), Some((64, 4000)));
        assert_eq!(payload(0, 0, 65_536), Some((0, 0)));
        // A driver's nonsense is refused, never sliced.
        assert_eq!(payload(5000, 4000, 65_536), None);
        assert_eq!(payload(0, 70_000, 65_536), None);
    }

    #[test]
    fn in_flight_frames_are_matched_by_timestamp_and_dropped_ones_forgotten() {
        let start = Instant::now();
        let mut flight = InFlight::new(start);
        let info = |number| FrameInfo {
            number,
            capture_us: 1_000 + u64::from(number),
            captured: start + Duration::from_millis(u64::from(number) * 33),
        };
        let ts: Vec<u64> = (0..4)
            .map(|n| {
                let ts = flight.stamp(info(n).captured);
                flight.push(ts, info(n));
                ts
            })
            .collect();
        assert_eq!(
            ts,
            [1, 33_000, 66_000, 99_000],
            "unique, real-time timestamps"
        );
        // The encoder skipped frame 0 and returns frame 1: frame 0 is forgotten.
        assert_eq!(flight.take(ts[1]), Some((info(1), 1)));
        assert!(!flight.contains(ts[0]) && flight.contains(ts[2]));
        // A timestamp the robot never gave (a driver's 0, a second buffer for frame 1)
        // matches nothing and leaves the others waiting for their own pictures.
        assert_eq!(flight.take(0), None);
        assert_eq!(flight.take(ts[1]), None);
        assert_eq!(flight.len(), 2);
        assert_eq!(flight.take(ts[2]), Some((info(2), 0)));
        assert_eq!(flight.take(ts[3]), Some((info(3), 0)));
        assert!(flight.is_empty());
        // Two frames captured at the same instant still get distinct timestamps.
        let a = flight.stamp(start);
        let b = flight.stamp(start);
        assert!(b > a);
    }

    /// What a hardware encoder returns, made by a real H.264 encoder: a buffer of
    /// SPS+PPS on its own, then an IDR without them, then P pictures.
    #[test]
    fn h264_from_the_hardware_is_made_joinable_at_every_keyframe() {
        let pictures = crate::encoder::recorded_pictures(6, 4);
        let nals = |au: &[u8]| -> Vec<u8> {
            h264::split_nals(au)
                .iter()
                .map(|n| h264::nal_type(n))
                .collect()
        };
        // Split the first IDR the way header-apart drivers do.
        let first = &pictures[0].data;
        let units = h264::split_nals(first);
        let annexb = |types: &[u8]| -> Vec<u8> {
            units
                .iter()
                .filter(|n| types.contains(&h264::nal_type(n)))
                .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
                .collect()
        };
        let header = annexb(&[h264::NAL_SPS, h264::NAL_PPS]);
        let bare_idr = annexb(&[h264::NAL_IDR]);

        let mut out = CodedOutput::new(H264);
        assert_eq!(
            out.picture(&header, false),
            None,
            "a header is not a picture"
        );
        assert_eq!(out.picture(&[], false), None);
        let (idr, key) = out.picture(&bare_idr, false).unwrap();
        assert!(
            key,
            "keyframes are read from the stream, not the driver's flag"
        );
        assert_eq!(nals(&idr), [7, 8, 5]);
        let (p, key) = out.picture(&pictures[1].data, true).unwrap();
        assert!(!key);
        assert_eq!(nals(&p), [1]);
        // A later IDR that already has its parameter sets is passed as is.
        let (idr, key) = out.picture(&pictures[4].data, false).unwrap();
        assert!(key && pictures[4].keyframe);
        assert_eq!(idr, pictures[4].data.to_vec());

        // Other codecs: bytes as they are, keyframe from the driver.
        let mut fwht = CodedOutput::new(*b"FWHT");
        assert_eq!(fwht.picture(b"OOOW", true), Some((b"OOOW".to_vec(), true)));
    }
}

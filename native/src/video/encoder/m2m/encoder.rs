//! The encoder itself: format negotiation, MMAP buffers on both queues, controls,
//! and one frame at a time through the queues from the stream thread.

use super::coded::{payload, CodedOutput, FrameInfo, InFlight};
use super::discovery::{
    chain, check_device, describe_open, device_error, fourcc_list, open_device, M2mApi,
};
use super::layout::PlaneLayout;
use super::{M2mError, H264};
use crate::video::encoder::{EncodedFrame, EncoderError, EncoderSettings, VideoEncoder};
use crate::video::frame::Frame;
use bytes::Bytes;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use v4l2r::bindings;
use v4l2r::device::poller::{DeviceEvent, Poller};
use v4l2r::device::queue::direction::{Capture, Output};
use v4l2r::device::queue::{BuffersAllocated, GetFreeCaptureBuffer, GetFreeOutputBuffer, Queue};
use v4l2r::device::{AllocatedQueue, Device, Stream, TryDequeue};
use v4l2r::ioctl::{self, BufferFlags, DqBufError, DqBufIoctlError};
use v4l2r::memory::MmapHandle;
use v4l2r::nix::sys::time::TimeVal;
use v4l2r::Format;

/// Raw pictures queued on the encoder at once.
const OUTPUT_BUFFERS: u32 = 3;
/// Coded buffers the encoder can fill ahead of us.
const CAPTURE_BUFFERS: u32 = 4;
/// Frames in a row without a coded picture back before the encoder counts as stalled.
const STALLED_AFTER: u32 = 30;

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
                        // The V4L2 M2M encoders have no temporal scalability.
                        temporal_layer: 0,
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

    /// `V4L2_CID_MPEG_VIDEO_BITRATE` while streaming, which the Pi's codec applies from
    /// the next frame; false where the driver has no such control (vicodec) or refuses
    /// it, and the bitrate it started with holds.
    fn set_bitrate(&mut self, kbps: u32) -> bool {
        let bps = kbps.saturating_mul(1000).min(i32::MAX as u32) as i32;
        match ioctl::s_ctrl(&*self.device, bindings::V4L2_CID_MPEG_VIDEO_BITRATE, bps) {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!("{}: bitrate {kbps} kbit/s not set: {err}", self.name);
                false
            }
        }
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
}

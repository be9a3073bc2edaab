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
//!
//! Files: [`discovery`] (which device is an encoder), [`layout`] (where each plane
//! goes), [`coded`] (timestamps in flight, H.264 clean-up), [`encoder`] (the queues
//! and controls).

mod coded;
mod discovery;
mod encoder;
mod layout;

pub use coded::{CodedOutput, FrameInfo, InFlight};
pub use discovery::{
    check_device, check_path, describe, describe_encoder, find_encoder, DeviceDescription, M2mApi,
    RawFormat,
};
pub use encoder::M2mEncoder;
pub use layout::PlaneLayout;

use std::path::PathBuf;
use thiserror::Error;

/// The coded format the robot streams.
pub const H264: [u8; 4] = *b"H264";

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

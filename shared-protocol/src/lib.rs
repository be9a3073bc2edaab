//! Everything that crosses the wire between an rtcbot-rs robot and its peers.
//!
//! The crate is pure data: no I/O, no async, so that the robot (`native`) and the
//! browser client (`wasm-client`) share one definition of every message.
//!
//! - [`signaling`]: the offer/answer [`SessionDescription`], serialised exactly as
//!   RTCBot does (`{"type":"offer","sdp":"..."}`).
//! - [`control`]: messages from a driver to the robot ([`Control`]): drive state,
//!   rtcbot.js keyboard and gamepad events, pings and any other JSON.
//! - [`telemetry`]: messages from the robot to its peers ([`Telemetry`]).
//! - [`settings`]: live video settings, asked for by an admin and announced by the
//!   robot ([`VideoSettings`]).
//! - [`janus`]: Janus's VideoRoom API, for the robot publishing to an SFU and for
//!   whoever watches through it.
//! - [`room`]: a relay room's addresses (`ice`, `status`) beside where offers go.
//! - [`stamp`]: the frame number and capture time painted into test-pattern frames,
//!   so a receiver can read them back after decoding and measure latency.
//!
//! Every parser here validates at the boundary and returns a [`ProtocolError`] with a
//! clear message; none of them panics on any input.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod control;
mod error;
pub mod janus;
pub mod room;
pub mod settings;
pub mod signaling;
pub mod stamp;
pub mod telemetry;

pub use control::{Control, DriveState, GamepadEvent, KeyEvent, KeyEventKind, Ping};
pub use error::ProtocolError;
pub use settings::VideoSettings;
pub use signaling::{SdpType, SessionDescription};
pub use stamp::Stamp;
pub use telemetry::{MotorState, Pong, RobotStatus, SfuStats, SfuWatch, StreamStats, Telemetry};

/// The largest data-channel message either side accepts, in bytes.
///
/// webrtc-rs and browsers deliver messages up to 16 KiB reliably; anything larger
/// is refused before it is parsed.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The label of the data channel RTCBot peers use for messages.
pub const DEFAULT_CHANNEL: &str = "default";

/// The label of the data channel a driver sends its [`DriveState`]s on: opened by the
/// offerer as unordered with no retransmission (`{ordered: false, maxRetransmits:
/// 0}`), so that a lost packet never holds the states behind it. A drive state is
/// latest-wins and carries a `seq`, so the robot drops stale or reordered ones; the
/// dead-man covers a burst of losses. Everything else (and drive states from clients
/// that do not open this channel, such as rtcbot.js) goes on [`DEFAULT_CHANNEL`].
pub const DRIVE_CHANNEL: &str = "drive";

//! WebRTC: the robot's peers and the client that offers to them.
//!
//! - [`connection`]: peer connections as both sides build them (codec, interceptors,
//!   ICE, mDNS), session descriptions, the gathering wait;
//! - [`session`]: what incoming messages mean and what is told back (pure,
//!   unit-tested);
//! - [`peer`]: the answering peer: one per `/connect` offer, its message channel with a
//!   bounded outbox, its video and audio tracks fed from the shared streams, and
//!   renegotiation on the data channel;
//! - [`sdp`]: what an offer's media sections ask for (pure, unit-tested);
//! - [`media_in`]: the browser's microphone and camera tracks, decoded for the robot;
//! - [`client`]: the offering side (what RTCBot's Python desktop code does): drive and
//!   watch a robot from Rust;
//! - [`whep`]: a WHEP client (receive-only offer, `POST` as `application/sdp`,
//!   `DELETE` on its session): watch the robot's `/whep`, or any WHEP server;
//! - [`feedback`]: viewers' keyframe requests (RTCP PLI/FIR) surfaced to the stream,
//!   and their bandwidth estimates (congestion control) to the robot;
//! - [`estimator`]: the bandwidth estimate from a viewer's feedback (pure, unit-tested);
//! - [`config`]: the `[webrtc]` settings.
//!
//! A peer reaches the rest of the robot only through its [`peer::PeerContext`]: the
//! control hub, the video and audio streams, where incoming media goes, and a callback for when it is gone.

pub mod client;
pub mod config;
pub mod connection;
pub mod estimator;
pub mod feedback;
pub mod media_in;
pub mod peer;
pub mod sdp;
pub mod session;
pub mod whep;

pub use client::{ClientError, ClientOptions, ReceivedAudio, ReceivedFrame, RobotClient};
pub use config::{IceServer, WebRtcConfig};
pub use peer::{PeerError, SendError};

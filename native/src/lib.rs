//! The rtcbot-rs robot, as a library: program a robot that browsers (or the Rust
//! [`RobotClient`]) watch and drive over WebRTC.
//!
//! ```no_run
//! # async fn run() -> Result<(), rtcbot::Error> {
//! let robot = rtcbot::Robot::start(rtcbot::Config::default())?;
//! let mut messages = robot.subscribe();                 // every peer's messages
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! tokio::spawn(rtcbot::serve(listener, robot.clone(), rtcbot::shutdown_signal()));
//! while let Some(event) = messages.recv().await {       // None once it shuts down
//!     robot.broadcast(&rtcbot::protocol::Telemetry::Json(
//!         serde_json::json!({"echo": format!("{:?}", event.control)}),
//!     ));
//! }
//! # Ok(()) }
//! ```
//!
//! The map, one folder per concern; data flows one way:
//!
//! - [`video`]: source → encoder → stream. Sources ([`video::source`]: the test
//!   pattern, files, V4L2 cameras, yours) → [`video::encoder`] (openh264, the V4L2
//!   memory-to-memory hardware encoder) → [`video::stream`] (one encode shared by
//!   every viewer) → each peer's track;
//! - [`audio`]: sound both ways. Sources (the test tone, WAV files, ALSA) → Opus,
//!   once for every listener → each peer's audio track; each peer's microphone →
//!   Opus decoding → the speaker (ALSA, a WAV file) and the program's subscribers;
//! - [`rtc`]: WebRTC. The answering [`rtc::peer`] (one per `/connect`), the pure
//!   [`rtc::session`] (what incoming messages mean), the offering [`rtc::client`];
//! - [`control`]: data channel → protocol ([`protocol`], the `shared-protocol` crate) →
//!   [`control::hub`] (one driver at a time, dead-man stop) → [`control::drive`]
//!   (motor commands) → [`serial`] (the microcontroller link, C structs packed with
//!   Python `struct` format strings);
//! - [`robot`]: the [`Robot`] that ties them together, its builder and peer registry;
//! - [`http`]: the axum router (`POST /connect`, `/health`, the browser bundle) and
//!   [`serve`];
//! - [`auth`]: tokens and roles (viewer, driver, admin), the generated driver token,
//!   the `/connect` quota per address;
//! - [`relay`]: reaching the robot through a relay room (`rtcbot-relay`, rtcbot.dev):
//!   it connects out and answers the offers that arrive there;
//! - [`sfu`]: publishing the one stream to a Janus VideoRoom, so many viewers watch
//!   through it for one upload;
//! - [`config`]: the one typed configuration; [`Error`]: the crate's error.
//!
//! The `rtcbot-robot` binary is a thin shell over these.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod audio;
pub mod auth;
pub mod config;
pub mod control;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod relay;
pub mod robot;
pub mod rtc;
pub mod serial;
pub mod sfu;
pub mod video;

pub use self::rtc::{ClientOptions, RobotClient};
pub use config::Config;
pub use error::{chain as error_chain, Error};
pub use http::{router, serve, serve_app, shutdown_signal};
pub use robot::{Messages, PeerInfo, Robot, RobotBuilder};
pub use shared_protocol as protocol;

/// The README's Rust code, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

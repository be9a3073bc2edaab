//! The rtcbot-rs robot, as a library.
//!
//! Data flows one way, one module per step:
//!
//! - video: [`camera`] (a [`camera::VideoSource`], the test pattern by default) →
//!   [`encoder`] (H.264, once: openh264, or the hardware encoder in [`m2m`]) → [`stream`] (the shared stream every viewer reads) →
//!   [`peer`] (each peer's track);
//! - control: [`peer`] (data channel) → `shared_protocol` (parsing, validation) →
//!   [`control`] (the hub: one driver at a time, dead-man stop) → [`drive`] (motor
//!   commands) → [`serial`] (the microcontroller link) using [`structs`] (C-struct
//!   packing with Python `struct` format strings).
//!
//! [`robot::Robot`] ties them together and keeps the registry of peers; [`server`] is
//! the axum app (`POST /connect`, the browser bundle); [`config`] is the one typed
//! configuration; [`client`] is the offering side (what RTCBot's Python desktop code
//! does), used to drive a robot from Rust, by the tests and by the benchmark.
//! The `rtcbot-robot` binary is a thin shell over these.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod camera;
pub mod client;
pub mod config;
pub mod control;
pub mod drive;
pub mod encoder;
pub mod feedback;
pub mod file_source;
pub mod h264;
pub mod m2m;
pub mod peer;
pub mod robot;
pub mod serial;
pub mod server;
pub mod stream;
pub mod structs;
pub mod v4l_camera;

pub use config::Config;
pub use robot::Robot;
pub use shared_protocol as protocol;

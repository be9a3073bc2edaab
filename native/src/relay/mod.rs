//! Reaching the robot through a relay: the robot connects **out** by WebSocket to a
//! room of `rtcbot-relay` (or rtcbot.dev, or any server speaking that protocol) and
//! answers the offers that arrive there, as its own `POST /connect` does, so a robot
//! behind NAT on a 4G modem is reached from anywhere.
//!
//! - [`config`]: the `[relay]` settings (`url`, `key`, `role`), checked;
//! - [`link`]: the connection: one offer frame in, one answer frame out, pings, and
//!   reconnection with backoff while the robot runs (peers already connected stay).

pub mod config;
pub mod link;

pub use config::RelayConfig;
pub use link::{run, Answerer, RelayState, RelayStatus};

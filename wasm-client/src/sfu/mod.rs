//! Watching the robot through its SFU (a Janus VideoRoom) instead of taking video
//! and sound from the robot itself, so the robot uploads one stream whatever the
//! number of pages; the page keeps its data channels to the robot for driving and
//! telemetry.
//!
//! - [`janus`]: the VideoRoom messages a subscriber sends and Janus's replies, held
//!   to `shared_protocol::janus` by its tests (pure);
//! - [`plan`]: when to subscribe, where the picture comes from, whether the robot
//!   sends its own media to the page, what to remember for the next load (pure);
//! - `Subscriber` (wasm32): one subscription, its I/O and its own peer connection.

pub mod janus;
pub mod plan;
#[cfg(target_arch = "wasm32")]
mod subscriber;
#[cfg(target_arch = "wasm32")]
pub use subscriber::{Subscriber, SubscriberEvent};

//! Publishing the robot's one stream to an SFU (Janus's VideoRoom), so that any
//! number of viewers watch through it while the robot uploads one stream; the
//! driver's control path stays direct.
//!
//! Why the VideoRoom plugin and not Streaming: a VideoRoom publisher is a WebRTC peer
//! (encrypted, ICE through NAT as on a 4G uplink, keyframe requests back to the robot),
//! where Streaming takes plain RTP.
//!
//! - [`config`]: the `[sfu]` settings (Janus's HTTP API, room, secret, PIN, publisher
//!   id), checked;
//! - [`janus`]: the requests and what Janus's replies and errors mean (pure, in
//!   `shared-protocol`, which the browser app watching through Janus shares);
//! - [`api`]: the HTTP I/O: a session, handles, requests, the long poll of events;
//! - [`publish`]: the publisher: a send-only WebRTC connection fed from the shared
//!   encode (and Opus stream), kept alive, published again with backoff when it ends
//!   (Janus unreachable or restarted, a wrong secret, a missing room: each logged with
//!   what to fix, and in [`SfuStatus`]); a stale publisher of the robot's own id (a
//!   session from before a restart) is kicked with the room's secret;
//! - [`viewer`]: a subscriber to a feed, to watch through Janus from Rust.
//!
//! The publisher is a task of the robot's own; the robot's direct peers never wait
//! on it.

pub mod api;
pub mod config;
pub mod publish;
pub mod viewer;

pub use shared_protocol::janus;

pub use api::SfuError;
pub use config::SfuConfig;
pub use publish::{run, Media, SfuPhase, SfuState, SfuStatus};
pub use viewer::JanusViewer;

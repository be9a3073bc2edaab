//! `rtcbot-relay`: a signaling relay with rooms, so a robot behind NAT (a 4G modem, a
//! home router) is reached from anywhere. It speaks rtcbot.dev's protocol (RTCBot's
//! "Connecting over 4G" tutorial), so RTCBot's own robots and pages work with it: the
//! robot connects **out** by WebSocket to `/<room>`, a browser `POST`s its offer to
//! `/<room>`, the relay hands the offer to the robot and returns its answer. Media
//! then flows between browser and robot directly (or through TURN); the relay sees
//! only the signaling.
//!
//! The map:
//!
//! - [`room`]: a room's rules, pure: names, keys that claim a room, offers a second;
//! - [`rooms`]: the rooms in memory, the robots in them and the offers on their way;
//! - [`turn`]: short-lived TURN credentials (coturn's REST scheme), pure;
//! - [`http`]: the routes ([`http::app`]) and each robot's socket;
//! - [`config`]: the one typed configuration.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! rtcbot_relay::run(listener, rtcbot_relay::RelayConfig::default(), std::future::pending()).await
//! # }
//! ```

pub mod config;
pub mod http;
pub mod room;
pub mod rooms;
pub mod turn;

pub use config::RelayConfig;
pub use rooms::Rooms;

use std::future::Future;
use std::sync::Arc;

/// The router for `config`, with fresh rooms.
pub fn app(config: RelayConfig) -> axum::Router {
    let config = Arc::new(config);
    http::app(http::AppState {
        rooms: Arc::new(Rooms::new(config.clone())),
        max_message_bytes: config.max_message_bytes,
        offer_timeout: config.offer_timeout(),
        www: config.www.clone(),
        config: config.clone(),
    })
}

/// Serves the relay on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(config))
        .with_graceful_shutdown(shutdown)
        .await
}

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
//! - [`shared`]: rooms shared between relays through Redis (`redis_url`), so any
//!   relay reaches a robot connected to another ([`shared::wire`], what they say, is
//!   pure);
//! - [`peers`]: rooms of browsers: pages in a room passing messages to each other
//!   (signalling between operators), in memory on each relay;
//! - [`limit`]: offers per client address, on top of each room's rate;
//! - [`http`]: the routes ([`http::app`]) and each robot's socket;
//! - [`config`]: the one typed configuration;
//! - [`testing`]: a throwaway `redis-server`, for tests and benchmarks.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! rtcbot_relay::run(listener, rtcbot_relay::RelayConfig::default(), std::future::pending()).await
//! # }
//! ```

pub mod config;
pub mod http;
pub mod limit;
pub mod peers;
pub mod room;
pub mod rooms;
pub mod shared;
pub mod testing;
pub mod turn;

pub use config::RelayConfig;
pub use rooms::Rooms;
pub use shared::{RedisStatus, Shared, SharedError};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// A relay ready to serve: its routes, and with Redis its link to the other relays.
pub struct Relay {
    router: axum::Router,
    shared: Option<Arc<Shared>>,
    link: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// The relay for `config`, with fresh rooms; with `redis_url`, its link to Redis
    /// starts on the current tokio runtime (and keeps trying while Redis is away).
    pub fn new(config: RelayConfig) -> Result<Self, SharedError> {
        let config = Arc::new(config);
        let rooms = Arc::new(Rooms::new(config.clone()));
        let (shared, link) = match &config.redis_url {
            Some(url) => {
                let shared = Shared::new(url, rooms.clone())?;
                let link = shared.start()?;
                (Some(shared), Some(link))
            }
            None => (None, None),
        };
        let router = http::app(http::AppState {
            rooms,
            max_message_bytes: config.max_message_bytes,
            offer_timeout: config.offer_timeout(),
            www: config.www.clone(),
            limiter: limit::AddressLimiter::new(
                config.offer_address_burst,
                config.offers_per_address_per_minute,
            ),
            config: config.clone(),
            shared: shared.clone(),
        });
        Ok(Self {
            router,
            shared,
            link,
        })
    }

    /// The routes.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// How the link to Redis goes, and every change (`None` without Redis).
    pub fn redis_status(&self) -> Option<watch::Receiver<RedisStatus>> {
        self.shared.as_ref().map(|s| s.status())
    }

    /// Serves on `listener` until `shutdown` completes; then, with Redis, its rooms
    /// stop naming this relay, so the other relays know at once.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(shared) = &self.shared {
            shared.leave_all().await;
        }
        if let Some(link) = self.link {
            link.abort();
        }
        served
    }
}

/// The router for `config`, with fresh rooms (with `redis_url`, call it inside a
/// tokio runtime; a bad URL or no runtime is an error).
pub fn app(config: RelayConfig) -> Result<axum::Router, SharedError> {
    Relay::new(config).map(|relay| relay.router())
}

/// Serves the relay on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let relay = Relay::new(config).map_err(std::io::Error::other)?;
    relay.serve(listener, shutdown).await
}

/// A relay on a thread and tokio runtime of its own, as a separate process would be:
/// dropping it kills it (every socket it holds closes, nothing is cleaned up), so
/// tests and benchmarks can watch the others cope.
pub struct Detached {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How its link to Redis goes (`None` without Redis).
    pub redis: Option<watch::Receiver<RedisStatus>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Detached {
    /// Starts a relay on `addr` (port 0: any free port; `config.listen` is not used).
    pub fn start(addr: SocketAddr, config: RelayConfig) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let relay = {
            let _entered = runtime.enter();
            Relay::new(config).map_err(std::io::Error::other)?
        };
        let redis = relay.redis_status();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            relay.serve(listener, std::future::pending()).await
        });
        Ok(Self {
            addr,
            redis,
            runtime: Some(runtime),
        })
    }
}

impl Drop for Detached {
    /// Kills the relay: its runtime shuts down on a thread of its own (a runtime may
    /// not be dropped inside another) and is gone, with every task and socket, when
    /// this returns, so its port is free again at once.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let _ = std::thread::spawn(move || drop(runtime)).join();
        }
    }
}

//! The robot: configuration, video stream, control hub and the registry of peers.
//!
//! [`Robot`] is what the HTTP server and the binary hold. Each `/connect` offer
//! becomes a peer ([`Robot::connect`]); peers that fail, close or never connect are
//! removed and their resources freed; [`Robot::shutdown`] closes them all and stops
//! the motors.

use crate::camera::{TestPattern, VideoSource};
use crate::config::Config;
use crate::control::{ControlHub, PeerId};
use crate::encoder::{EncoderSettings, OpenH264Encoder, VideoEncoder};
use crate::peer::{negotiate, Peer, PeerError};
use crate::stream::{StreamCounters, VideoStream};
use shared_protocol::{MotorState, RobotStatus, SessionDescription, StreamStats, Telemetry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Peers served at once; more get a clear refusal.
pub const MAX_PEERS: usize = 32;
/// How long a moving drive state lasts without a new message.
pub const DEFAULT_SILENCE: Duration = Duration::from_millis(300);

/// Why the robot could not start.
#[derive(Debug, Error)]
pub enum RobotError {
    /// The video source could not be opened.
    #[error(transparent)]
    Camera(#[from] crate::camera::CameraError),
}

/// The running robot; cheap to clone.
#[derive(Clone)]
pub struct Robot {
    inner: Arc<RobotInner>,
}

pub(crate) struct RobotInner {
    pub(crate) config: Config,
    pub(crate) stream: VideoStream,
    pub(crate) hub: ControlHub,
    peers: Mutex<HashMap<PeerId, Arc<Peer>>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

impl Robot {
    /// Starts a robot with the built-in test-pattern camera.
    ///
    /// Must be called inside a tokio runtime: it spawns the stats and watchdog tasks.
    pub fn start(config: Config) -> Result<Self, RobotError> {
        let source = TestPattern::new(config.video.width, config.video.height)?;
        Ok(Self::with_source(config, Box::new(source)))
    }

    /// Starts a robot that streams from `source`, encoded with openh264.
    pub fn with_source(config: Config, source: Box<dyn VideoSource>) -> Self {
        let v = &config.video;
        let settings = EncoderSettings {
            bitrate_kbps: v.bitrate_kbps,
            fps: v.fps,
            keyframe_interval: (v.keyframe_interval_s * f64::from(v.fps)).round().max(1.0) as u32,
        };
        let stream = VideoStream::start(
            source,
            Box::new(
                move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>),
            ),
            config.frame_period(),
        );
        let hub = ControlHub::new(DEFAULT_SILENCE);
        tokio::spawn(hub.clone().watch_silence());
        let inner = Arc::new(RobotInner {
            config,
            stream,
            hub,
            peers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        });
        tokio::spawn(report_stats(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// Answers a browser's (or any offerer's) offer and adds the new peer.
    pub async fn connect(
        &self,
        offer: &SessionDescription,
    ) -> Result<SessionDescription, PeerError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(PeerError::ShuttingDown);
        }
        if inner.peer_count() >= MAX_PEERS {
            return Err(PeerError::TooMany(MAX_PEERS));
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (peer, answer) = negotiate(inner, id, offer).await?;
        inner.peers.lock().expect("peers lock").insert(id, peer);
        tracing::info!(
            peer = id,
            "answered an offer ({} peers)",
            inner.peer_count()
        );
        Ok(answer)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where drivers' messages arrive.
    pub fn controls(&self) -> &ControlHub {
        &self.inner.hub
    }

    /// The shared video stream.
    pub fn stream(&self) -> &VideoStream {
        &self.inner.stream
    }

    /// Video counters (encoder instances, frames, bytes...).
    pub fn counters(&self) -> StreamCounters {
        self.inner.stream.counters()
    }

    /// Peers currently registered (connecting or connected).
    pub fn peer_count(&self) -> usize {
        self.inner.peer_count()
    }

    /// Sends a message to every peer, like RTCBot's `put_nowait` on each connection.
    pub async fn broadcast(&self, msg: &Telemetry) {
        self.inner.broadcast(msg).await;
    }

    /// Stops the motors, closes every peer and stops the video.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        inner.hub.stop("the robot is shutting down");
        let peers: Vec<_> = inner.peers.lock().expect("peers lock").drain().collect();
        for (id, peer) in peers {
            inner.hub.peer_left(id);
            peer.shared.abort_tasks();
            let _ = peer.pc.close().await;
        }
        inner.stream.stop();
        tracing::info!("robot shut down");
    }
}

impl RobotInner {
    fn peer_count(&self) -> usize {
        self.peers.lock().expect("peers lock").len()
    }

    /// Removes a peer and frees its resources; safe to call more than once.
    pub(crate) fn remove_peer(&self, id: PeerId, reason: &str) {
        let peer = self.peers.lock().expect("peers lock").remove(&id);
        if let Some(peer) = peer {
            tracing::info!(peer = id, "removing peer: {reason}");
            self.hub.peer_left(id);
            peer.shared.abort_tasks();
            tokio::spawn(async move {
                let _ = peer.pc.close().await;
            });
        }
    }

    /// The status message as `peer` should see it.
    pub(crate) fn status_for(&self, peer: PeerId) -> Telemetry {
        let driver = self.hub.driver();
        let moving = !self.hub.drive().borrow().is_stopped();
        Telemetry::Status(RobotStatus {
            driver: driver.is_some(),
            you_drive: driver == Some(peer),
            motors: if moving {
                MotorState::Running
            } else {
                MotorState::Stopped
            },
            reason: None,
        })
    }

    async fn broadcast(&self, msg: &Telemetry) {
        let peers: Vec<_> = self
            .peers
            .lock()
            .expect("peers lock")
            .values()
            .cloned()
            .collect();
        for peer in peers {
            peer.shared.send(msg).await;
        }
    }
}

/// Every second, sends stream figures and status to every peer.
async fn report_stats(robot: std::sync::Weak<RobotInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<(Instant, StreamCounters)> = None;
    loop {
        tick.tick().await;
        let Some(robot) = robot.upgrade() else { return };
        let now = Instant::now();
        let counters = robot.stream.counters();
        let (fps, kbps) = match last {
            Some((t, c)) => {
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                (
                    (counters.frames_encoded - c.frames_encoded) as f64 / secs,
                    (counters.bytes_encoded - c.bytes_encoded) as f64 * 8.0 / 1000.0 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        last = Some((now, counters));
        let (width, height) = robot.stream.size();
        let stats = Telemetry::Stats(StreamStats {
            viewers: counters.viewers as u32,
            frames_encoded: counters.frames_encoded,
            fps,
            bitrate_kbps: kbps,
            width: width as u32,
            height: height as u32,
            encoder: format!("{}/openh264", robot.stream.source_name()),
        });
        robot.broadcast(&stats).await;
        let peers: Vec<_> = robot
            .peers
            .lock()
            .expect("peers lock")
            .values()
            .cloned()
            .collect();
        for peer in peers {
            peer.shared.send(&robot.status_for(peer.shared.id)).await;
        }
    }
}

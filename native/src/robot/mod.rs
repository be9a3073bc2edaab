//! The robot: the video stream, the control hub, the hardware and the peers, tied
//! together; what a robot program holds.
//!
//! [`Robot::builder`] (or [`Robot::start`] for everything from the configuration)
//! makes one; each `/connect` offer becomes a peer ([`Robot::connect`]). A robot
//! program talks to its peers the way RTCBot's `RTCConnection` does:
//! [`Robot::subscribe`] gets every peer's messages with the peer's id,
//! [`Robot::send`] and [`Robot::broadcast`] queue messages without waiting (see
//! [`crate::rtc::peer`] for what a full outbox does), and [`Robot::peers`] says who is
//! there. [`Robot::shutdown`] closes every peer and stops the motors.
//!
//! With `[serial]` configured, the robot opens the serial link and forwards what the
//! microcontroller sends (and the link's state) to every peer as telemetry
//! `{"type":"serial",...}`; with `[drive]` too, a [`DriveController`] writes motor
//! commands. Changes of driver and safety stops reach every peer as a status message
//! with a reason.
//!
//! Files: [`builder`] (what a robot is made from), [`registry`] (the peers),
//! [`process`] (the process's memory, threads, descriptors and tasks, for `/health`),
//! `reporters` (what every peer is told by itself), `bitrate` (congestion control:
//! the shared encoder's bitrate from the viewers' bandwidth estimates).

mod bitrate;
pub mod builder;
pub mod process;
pub mod registry;
mod relayed;
mod reporters;
pub mod settings;

pub use builder::RobotBuilder;
pub use process::ProcessStats;
pub use registry::{PeerInfo, MAX_CONNECTING, MAX_CONNECTING_PER_CLIENT, MAX_PEERS};

use crate::audio::{AudioStream, HeardAudio, Incoming};
use crate::auth::Role;
use crate::config::Config;
use crate::control::{ControlEvent, ControlHub, DriveController, PeerId};
use crate::rtc::peer::{negotiate, MediaIn, PeerContext, PeerError, SendError};
use crate::serial::SerialConnection;
use crate::video::incoming::{BrowserFrame, BrowserVideo};
use crate::video::{StreamCounters, VideoStream};
use registry::Registry;
use shared_protocol::{SessionDescription, Telemetry};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Every peer's messages, from [`Robot::subscribe`].
///
/// Each subscriber has its own queue of 256 messages; one that falls further behind
/// loses the oldest (counted in [`Messages::lost`], logged) and goes on with the rest.
pub struct Messages {
    events: broadcast::Receiver<ControlEvent>,
    closed: watch::Receiver<bool>,
    lost: u64,
}

impl Messages {
    /// The next message; `None` once the robot has shut down.
    pub async fn recv(&mut self) -> Option<ControlEvent> {
        loop {
            tokio::select! {
                biased;
                _ = self.closed.wait_for(|closed| *closed) => return None,
                event = self.events.recv() => match event {
                    Ok(event) => return Some(event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.lost += n;
                        tracing::warn!("a subscriber fell behind and lost {n} messages");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Messages this subscriber lost by falling behind.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// The running robot; cheap to clone.
#[derive(Clone)]
pub struct Robot {
    inner: Arc<RobotInner>,
}

struct RobotInner {
    config: Config,
    /// `[video]` as in force now: the config's, until an admin changes it live.
    live_video: Mutex<crate::video::config::VideoConfig>,
    /// The video was opened from `[video]` (not handed in by the program), so live
    /// settings can open it again.
    video_from_config: bool,
    stream: VideoStream,
    /// The robot's sound, when it has a source.
    audio: Option<AudioStream>,
    hub: ControlHub,
    serial: Option<SerialConnection>,
    drive: Option<DriveController>,
    registry: Arc<Registry>,
    peer_context: Arc<PeerContext>,
    /// Set at shutdown: ends every [`Messages`].
    closed: watch::Sender<bool>,
    /// The watchdog and reporters, aborted at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The SFU publisher's task: at shutdown it ends its Janus session itself (the
    /// room frees the robot's id at once) before it would be aborted.
    sfu_task: Mutex<Option<JoinHandle<()>>>,
    /// The relay link's status, with `[relay]`.
    relay: crate::relay::RelayState,
    /// The SFU publisher's status, with `[sfu]`.
    sfu: crate::sfu::SfuState,
}

impl Drop for RobotInner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

impl Robot {
    /// A robot made from `config`, with its video, serial link and drive changeable
    /// before [`RobotBuilder::start`].
    pub fn builder(config: Config) -> RobotBuilder {
        RobotBuilder::new(config)
    }

    /// Starts a robot with everything from `config`: the camera it names (the test
    /// pattern when there is none), and `[serial]` and `[drive]` when set.
    ///
    /// Must be called inside a tokio runtime: it spawns the watchdog and reporters.
    pub fn start(config: Config) -> Result<Self, crate::Error> {
        Self::builder(config).start()
    }

    fn assemble(
        config: Config,
        video_from_config: bool,
        stream: VideoStream,
        (audio, incoming): (Option<AudioStream>, Incoming),
        serial: Option<SerialConnection>,
        drive: impl FnOnce(&ControlHub) -> Option<DriveController>,
    ) -> Self {
        let hub = ControlHub::new(config.deadman());
        let drive = drive(&hub);
        let registry = Arc::new(Registry::new(hub.clone()));
        let gone = Arc::downgrade(&registry);
        let peer_context = Arc::new(PeerContext {
            hub: hub.clone(),
            stream: stream.clone(),
            audio: audio.clone(),
            media_in: MediaIn {
                audio: incoming,
                video: BrowserVideo::default(),
            },
            frame_period: config.frame_period(),
            webrtc: config.webrtc.clone(),
            congestion: config.video.congestion_control.then(|| {
                let policy = config.video.rate_policy();
                (config.video.bitrate_kbps, policy.min_kbps, policy.max_kbps)
            }),
            on_gone: Box::new(move |id, reason| {
                if let Some(registry) = gone.upgrade() {
                    registry.remove(id, reason);
                }
            }),
            settings: Arc::new(Mutex::new(
                video_from_config.then(|| settings::announce(&config.video)),
            )),
        });
        let inner = Arc::new(RobotInner {
            live_video: Mutex::new(config.video.clone()),
            video_from_config,
            config,
            stream,
            audio,
            hub: hub.clone(),
            serial,
            drive,
            registry,
            peer_context,
            closed: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            sfu_task: Mutex::new(None),
            relay: crate::relay::RelayState::default(),
            sfu: crate::sfu::SfuState::default(),
        });
        let mut tasks = vec![
            tokio::spawn(hub.watch_silence()),
            tokio::spawn(reporters::stats(Arc::downgrade(&inner))),
            tokio::spawn(reporters::notices(Arc::downgrade(&inner))),
            tokio::spawn(settings::apply_requests(Arc::downgrade(&inner))),
        ];
        if inner.config.video.congestion_control {
            tasks.push(tokio::spawn(bitrate::follow_viewers(Arc::downgrade(
                &inner,
            ))));
        }
        if let Some(relay) = &inner.config.relay {
            let tokens = inner.config.auth().map(crate::auth::tokens::Tokens::new);
            tasks.push(tokio::spawn(crate::relay::run(
                relayed::RelayAnswerer(Arc::downgrade(&inner)),
                relay.clone(),
                tokens,
                inner.relay.clone(),
                std::future::pending(),
            )));
        }
        if let Some(sfu) = &inner.config.sfu {
            let media = crate::sfu::Media {
                stream: inner.stream.clone(),
                audio: inner.audio.clone(),
                webrtc: inner.config.webrtc.clone(),
            };
            *inner.sfu_task.lock().expect("sfu task lock") = Some(tokio::spawn(crate::sfu::run(
                sfu.clone(),
                media,
                inner.sfu.clone(),
                inner.closed.subscribe(),
            )));
        }
        if let Some(serial) = &inner.serial {
            tasks.push(tokio::spawn(reporters::serial(
                Arc::downgrade(&inner),
                serial.clone(),
            )));
        }
        *inner.tasks.lock().expect("tasks lock") = tasks;
        Self { inner }
    }

    /// Answers a browser's (or any offerer's) offer and adds the new peer.
    pub async fn connect(
        &self,
        offer: &SessionDescription,
    ) -> Result<SessionDescription, PeerError> {
        self.connect_from(offer, None).await
    }

    /// [`Robot::connect`] for an offer from `client` (the `/connect` route passes the
    /// caller's address): connecting peers are limited per address (see
    /// [`registry`](crate::robot::registry)).
    pub async fn connect_from(
        &self,
        offer: &SessionDescription,
        client: Option<IpAddr>,
    ) -> Result<SessionDescription, PeerError> {
        self.connect_as(offer, client, Role::Admin).await
    }

    /// [`Robot::connect_from`] for a peer with `role` (the `/connect` route passes the
    /// role of the token the request presented): a viewer's drive states are refused.
    pub async fn connect_as(
        &self,
        offer: &SessionDescription,
        client: Option<IpAddr>,
        role: Role,
    ) -> Result<SessionDescription, PeerError> {
        Ok(self.connect_session(offer, client, role).await?.1)
    }

    /// [`Robot::connect_as`] that also says the new peer's id, for signaling that
    /// ends the session itself later ([`Robot::disconnect`]; WHEP's `DELETE`).
    pub async fn connect_session(
        &self,
        offer: &SessionDescription,
        client: Option<IpAddr>,
        role: Role,
    ) -> Result<(PeerId, SessionDescription), PeerError> {
        let registry = &self.inner.registry;
        let reservation = registry.reserve(client)?;
        let id = registry.next_id();
        let (peer, answer) = negotiate(self.inner.peer_context.clone(), id, role, offer).await?;
        // Checked again: other offers, or shutdown, may have come meanwhile.
        if let Err((peer, err)) = registry.insert(peer, reservation) {
            peer.close().await;
            return Err(err);
        }
        tracing::info!(peer = id, "answered an offer ({} peers)", registry.count());
        Ok((id, answer))
    }

    /// Ends `peer`'s session now (its connection closed, the drive released if it
    /// held it), for `reason` (logged); false when there is no such peer.
    pub fn disconnect(&self, peer: PeerId, reason: &str) -> bool {
        let registry = &self.inner.registry;
        let known = registry.get(peer).is_some();
        registry.remove(peer, reason);
        known
    }

    /// Every message from every peer, with the peer's id and when it arrived (drive
    /// states a peer was refused excluded; pings are answered by the robot and not
    /// passed on), until the robot shuts down. See [`Messages`] for what a subscriber
    /// that falls behind loses.
    pub fn subscribe(&self) -> Messages {
        Messages {
            events: self.inner.hub.events(),
            closed: self.inner.closed.subscribe(),
            lost: 0,
        }
    }

    /// Queues `msg` for one peer, like RTCBot's `put_nowait`; never waits.
    pub fn send(&self, peer: PeerId, msg: &Telemetry) -> Result<(), SendError> {
        match self.inner.registry.get(peer) {
            Some(p) => p.send(msg),
            None => Err(SendError::UnknownPeer(peer)),
        }
    }

    /// Queues `msg` for every peer whose message channel is open; never waits.
    /// Returns how many peers it was queued for (a peer whose outbox is full misses
    /// it).
    pub fn broadcast(&self, msg: &Telemetry) -> usize {
        self.inner.broadcast(msg)
    }

    /// Queues a latest-wins message for one peer: a periodic reading that a newer one
    /// replaces (a sensor value, a position). It goes on the peer's unreliable `drive`
    /// channel when the peer opened one, so a lost packet on a lossy link never delays
    /// the readings after it; else like [`Robot::send`]. Never waits.
    pub fn send_latest(&self, peer: PeerId, msg: &Telemetry) -> Result<(), SendError> {
        match self.inner.registry.get(peer) {
            Some(p) => p.send_latest(msg),
            None => Err(SendError::UnknownPeer(peer)),
        }
    }

    /// [`Robot::send_latest`] to every peer whose channel is open; returns how many
    /// peers it was queued for. The robot's own stream figures go this way.
    pub fn broadcast_latest(&self, msg: &Telemetry) -> usize {
        self.inner.broadcast_latest(msg)
    }

    /// The peers now, by id: connected or not, asking for video, driving, counters.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.registry.info()
    }

    /// Peers currently registered (connecting or connected).
    pub fn peer_count(&self) -> usize {
        self.inner.registry.count()
    }

    /// What its relay link is doing; `None` without `[relay]`.
    pub fn relay_status(&self) -> Option<crate::relay::RelayStatus> {
        self.relay_state().map(|state| state.status())
    }

    /// Its relay link's status, to wait on; `None` without `[relay]`.
    pub fn relay_state(&self) -> Option<&crate::relay::RelayState> {
        self.inner.config.relay.as_ref().map(|_| &self.inner.relay)
    }

    /// What its SFU publisher is doing; `None` without `[sfu]`.
    pub fn sfu_status(&self) -> Option<crate::sfu::SfuStatus> {
        self.sfu_state().map(|state| state.status())
    }

    /// Its SFU publisher's status, to wait on; `None` without `[sfu]`.
    pub fn sfu_state(&self) -> Option<&crate::sfu::SfuState> {
        self.inner.config.sfu.as_ref().map(|_| &self.inner.sfu)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where drivers' messages arrive: the latest drive state, the driver.
    pub fn controls(&self) -> &ControlHub {
        &self.inner.hub
    }

    /// The shared video stream.
    pub fn stream(&self) -> &VideoStream {
        &self.inner.stream
    }

    /// The robot's sound, encoded once for every listener; `None` without a source.
    pub fn audio(&self) -> Option<&AudioStream> {
        self.inner.audio.as_ref()
    }

    /// Where browsers' sound goes: its counters and speaker.
    pub fn incoming_audio(&self) -> &Incoming {
        &self.inner.peer_context.media_in.audio
    }

    /// Every peer's microphone from now on, decoded, block by block (RTCBot's
    /// `conn.audio.subscribe()`); a subscriber that falls behind loses the oldest.
    pub fn subscribe_audio(&self) -> tokio::sync::broadcast::Receiver<Arc<HeardAudio>> {
        self.inner.peer_context.media_in.audio.subscribe()
    }

    /// Where browsers' cameras go: its counters.
    pub fn incoming_video(&self) -> &BrowserVideo {
        &self.inner.peer_context.media_in.video
    }

    /// Every peer's camera from now on, decoded to I420 frames (RTCBot's "video from
    /// the browser"); a subscriber that falls behind loses the oldest.
    pub fn subscribe_video(&self) -> tokio::sync::broadcast::Receiver<Arc<BrowserFrame>> {
        self.inner.peer_context.media_in.video.subscribe()
    }

    /// The serial link, when `[serial]` is configured.
    pub fn serial(&self) -> Option<&SerialConnection> {
        self.inner.serial.as_ref()
    }

    /// The motor loop, when `[drive]` is configured.
    pub fn drive(&self) -> Option<&DriveController> {
        self.inner.drive.as_ref()
    }

    /// The encoder in use, e.g. `openh264` (empty until the first viewer).
    pub fn encoder_name(&self) -> String {
        self.inner.stream.encoder_name()
    }

    /// Video counters (encoder instances, frames, bytes...).
    pub fn counters(&self) -> StreamCounters {
        self.inner.stream.counters()
    }

    /// Stops the motors, closes every peer and stops the video.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.hub.stop("the robot is shutting down");
        inner.closed.send_replace(true);
        inner.registry.close_all().await;
        let sfu = inner.sfu_task.lock().expect("sfu task lock").take();
        if let Some(mut sfu) = sfu {
            if tokio::time::timeout(SFU_LEAVE_TIMEOUT, &mut sfu)
                .await
                .is_err()
            {
                tracing::warn!("sfu: did not leave Janus's room in {SFU_LEAVE_TIMEOUT:?}");
                sfu.abort();
            }
        }
        for task in inner.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
        if let Some(drive) = &inner.drive {
            match drive.shutdown().await {
                Ok(()) => tracing::info!("motor stop command written"),
                Err(err) => tracing::error!("could not write the motor stop command: {err}"),
            }
        }
        if let Some(serial) = &inner.serial {
            serial.close();
        }
        inner.stream.stop().await;
        if let Some(audio) = &inner.audio {
            audio.stop().await;
        }
        tracing::info!("robot shut down");
    }
}

/// How long shutdown waits for the SFU publisher to end its Janus session.
const SFU_LEAVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl RobotInner {
    /// `[video]` as in force now.
    fn live_video(&self) -> crate::video::config::VideoConfig {
        self.live_video.lock().expect("live video lock").clone()
    }

    fn broadcast(&self, msg: &Telemetry) -> usize {
        let text: Arc<str> = msg.to_text().into();
        self.registry
            .list()
            .iter()
            .filter(|peer| peer.send_text(text.clone()).is_ok())
            .count()
    }

    fn broadcast_latest(&self, msg: &Telemetry) -> usize {
        let text: Arc<str> = msg.to_text().into();
        self.registry
            .list()
            .iter()
            .filter(|peer| peer.send_latest_text(text.clone()).is_ok())
            .count()
    }
}

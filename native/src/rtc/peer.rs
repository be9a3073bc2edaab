//! One WebRTC peer of the robot: negotiation, the message channel and the video sender.
//!
//! A peer is made from a browser's offer ([`negotiate`]): the robot answers with
//! non-trickle ICE (all candidates in the answer, as RTCBot does), adopts the
//! offerer's data channels (`default` carries the protocol), and, when the offer asks
//! for video, sends the shared H.264 stream on its own track. Each peer packetizes the
//! same encoded frames; nothing is encoded per peer.
//!
//! A peer knows the rest of the robot only through its [`PeerContext`]: the control
//! hub its messages go to, the streams its video and audio come from, where the
//! browser's own microphone and camera go ([`super::media_in`]), and a callback for
//! when it is gone (failed, closed, its channel closed, or never connected).
//!
//! **Media.** What the offer asks for ([`super::sdp::MediaWants`]) decides the
//! tracks: the shared H.264 stream when it wants video, the shared Opus stream when
//! it wants audio and the robot has a source. **Renegotiation:** a
//! `{"type":"negotiate"}` offer on the data channel turns media on or off mid-session
//! (a browser's microphone or camera, the robot's audio); the robot answers on the
//! same channel and adds the tracks the new offer asks for. In the perfect-negotiation
//! pattern the robot is the impolite side; it never offers itself, so no offers
//! collide; an answer it did not ask for is refused with an error.
//!
//! **Outbox.** Messages to a peer ([`Peer::send`]) go into a bounded queue of
//! [`OUTBOX`] messages that the peer's own task writes to its channel, so a caller
//! never waits on the network and one stalled peer never delays the others. When the
//! queue is full (the peer is not reading fast enough), the new message is dropped,
//! counted in [`PeerCounters::dropped`], and `send` says [`SendError::Full`]. Replies
//! to a peer's own messages (pongs, errors) are written by the task reading that
//! peer's channel.
//!
//! **Latest-wins messages.** Periodic readings, where a newer one replaces a lost one
//! ([`Peer::send_latest`]: stream figures, sensor values), go on the peer's `drive`
//! channel when it opened one: unordered with no retransmission, so on a lossy link a
//! lost packet never holds back the readings behind it (on the reliable `default`
//! channel each loss stalls everything after it for a retransmission timeout). Their
//! queue keeps the newest [`LATEST_QUEUE`]; older ones are dropped first. A peer
//! without a drive channel (rtcbot.js) gets them through the outbox.

use super::connection::{
    build_connection, h264_codecs, local_track, opus_codec, to_rtc, wait_gathered, Side,
};
use super::feedback::{is_keyframe_request, BandwidthEstimate, CongestionSettings};
use super::media_in::{self, MediaSinks, TracksIn};
use super::sdp::{directions, sections, Direction, MediaWants, Section};
use super::session::{self, Action, RefusalThrottle};
use crate::audio::{AudioStream, Incoming};
use crate::auth::Role;
use crate::control::{ControlHub, PeerId};
use crate::rtc::config::WebRtcConfig;
use crate::video::incoming::BrowserVideo;
use crate::video::layers::{LayerChoice, Layers};
use crate::video::stream::{StreamEnd, VideoStream};
use rtc::media::Sample;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::RTCStatsReportEntry;
use shared_protocol::{Control, SessionDescription, Telemetry, DEFAULT_CHANNEL, DRIVE_CHANNEL};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RtpSender};

/// Silence after which a peer's connection counts as `disconnected`. The robot sends
/// an ICE keep-alive every [`ICE_KEEPALIVE`], so a live browser answers several times
/// within it; a tab that vanished (closed, crashed, out of range) is noticed this fast.
pub const ICE_DISCONNECTED: Duration = Duration::from_secs(2);
/// The robot's ICE keep-alive interval towards each peer.
pub const ICE_KEEPALIVE: Duration = Duration::from_millis(500);

/// How long a peer may take from answer to connected before it is dropped (it holds
/// a place among the connecting peers until then).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a `disconnected` peer (nothing received for [`ICE_DISCONNECTED`]) has to
/// come back before it is dropped; if it drives, its drive stops and is released at
/// once (it takes it again when back, unless another peer did). Browsers give ICE the
/// same chance.
pub const DISCONNECTED_GRACE: Duration = Duration::from_secs(5);
/// Messages queued for one peer at most; more are dropped (see the module docs).
pub const OUTBOX: usize = 256;
/// Latest-wins messages queued for one peer's drive channel at most; the oldest is
/// dropped for a new one (see the module docs).
pub const LATEST_QUEUE: usize = 16;

/// Why a peer could not be made.
#[derive(Debug, Error)]
pub enum PeerError {
    /// The offer was refused by the WebRTC stack.
    #[error("the offer was refused: {0}")]
    BadOffer(#[source] webrtc::error::Error),
    /// The WebRTC stack failed on the robot's side.
    #[error("WebRTC error: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// Negotiation ended without what it needs.
    #[error("negotiation failed: {0}")]
    Negotiation(&'static str),
    /// The robot already serves its maximum number of peers.
    #[error("too many peers (the limit is {0})")]
    TooMany(usize),
    /// Too many offers are still connecting, in all or from this client's address.
    #[error(
        "too many offers are still connecting{} (the limit is {limit}): try again once \
         they connect or time out",
        if *.per_client { " from your address" } else { "" }
    )]
    TooManyConnecting {
        /// The limit that was reached.
        limit: usize,
        /// The limit is the one for a single client address.
        per_client: bool,
    },
    /// The robot is shutting down.
    #[error("the robot is shutting down")]
    ShuttingDown,
}

/// Why a message was not queued for a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// No such peer (it left, or never was).
    #[error("no peer {0}")]
    UnknownPeer(PeerId),
    /// The peer's message channel is not open yet.
    #[error("the peer's message channel is not open")]
    NotOpen,
    /// The peer's outbox is full: it is not reading fast enough; the message was
    /// dropped.
    #[error("the peer's outbox is full ({OUTBOX} messages): message dropped")]
    Full,
    /// The peer is closing.
    #[error("the peer is closing")]
    Closed,
}

/// Called when a peer is gone, with its id and why.
pub type OnGone = Box<dyn Fn(PeerId, &str) + Send + Sync>;

/// What a peer needs from the robot.
pub struct PeerContext {
    /// Where its controls go.
    pub hub: ControlHub,
    /// Where its video comes from.
    pub stream: VideoStream,
    /// Where its audio comes from; `None`: the robot sends none.
    pub audio: Option<AudioStream>,
    /// Where the browsers' microphones and cameras go.
    pub media_in: MediaIn,
    /// The stream's frame period (the first sample's duration).
    pub frame_period: Duration,
    /// ICE servers and sockets.
    pub webrtc: WebRtcConfig,
    /// Congestion control's start and bounds, kbit/s (`initial`, `min`, `max`); `None`
    /// sends at the encoder's fixed bitrate.
    pub congestion: Option<(u32, u32, u32)>,
    /// Called when the peer is gone, with why; may be called more than once.
    pub on_gone: OnGone,
    /// The video settings in force and the cameras to switch to, told to each peer
    /// when its channel opens (the robot updates it); `None` when the robot's
    /// program handed it its video (no live settings).
    pub settings: Arc<Mutex<Option<shared_protocol::VideoSettings>>>,
}

/// Where the media browsers send goes.
#[derive(Clone)]
pub struct MediaIn {
    /// Their decoded sound.
    pub audio: Incoming,
    /// Their decoded camera pictures.
    pub video: BrowserVideo,
}

/// What a peer sends and receives, and how often it renegotiated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaState {
    /// Renegotiations it completed (offers on the data channel the robot answered).
    pub renegotiations: u64,
    /// The robot sends it audio.
    pub audio_out: bool,
    /// It sends the robot its microphone.
    pub audio_in: bool,
    /// It sends the robot its camera.
    pub video_in: bool,
}

/// How the video path to one viewer is doing: the robot's estimate of what it
/// carries, and what the viewer's RTCP reports said (read every [`LINK_STATS_PERIOD`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkStats {
    /// What the path carries, kbit/s, by the robot's estimate (congestion control).
    pub bandwidth_kbps: Option<u32>,
    /// Video packets the viewer reported lost.
    pub packets_lost: u64,
    /// Retransmission requests (NACKs) it sent.
    pub nacks: u64,
    /// The round trip, ms, from its receiver reports.
    pub rtt_ms: Option<f64>,
    /// The temporal layers it gets (every frame, or the base layer when its link is
    /// slow).
    pub layers: Layers,
    /// Times that changed.
    pub layer_switches: u64,
}

/// How often a viewer's link figures are read from the WebRTC stack.
pub const LINK_STATS_PERIOD: Duration = Duration::from_secs(1);

/// Message counters of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Messages received on its channels.
    pub received: u64,
    /// Messages written to its message channel (replies included).
    pub sent: u64,
    /// Messages dropped because its outbox was full.
    pub dropped: u64,
}

/// Peer states alive in this process (a closed peer's is freed once its connection
/// and tasks are gone); `/health` reports it, and the soak test checks it returns to
/// zero, which catches a reference cycle that keeps closed connections alive.
static LIVE_PEER_STATES: AtomicU64 = AtomicU64::new(0);

/// How many peers' states are alive, closed ones not yet freed included.
pub fn live_peer_states() -> u64 {
    LIVE_PEER_STATES.load(Ordering::SeqCst)
}

/// A peer's video (or audio) track and the sender that negotiated it.
type VideoSender = (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>);

/// State shared between a peer's handle, its event handler and its tasks.
struct PeerShared {
    id: PeerId,
    /// What its token lets it do.
    role: Role,
    ctx: Arc<PeerContext>,
    channel: Mutex<Option<Arc<dyn DataChannel>>>,
    outbox: mpsc::Sender<Arc<str>>,
    /// Taken by the writer task when the message channel first opens.
    outbox_rx: Mutex<Option<mpsc::Receiver<Arc<str>>>>,
    open: AtomicBool,
    /// The peer's open `drive` channel, where latest-wins messages go.
    drive: Mutex<Option<Arc<dyn DataChannel>>>,
    /// Latest-wins messages waiting for the drive channel's writer.
    latest: Mutex<VecDeque<Arc<str>>>,
    latest_ready: Notify,
    video: Mutex<Option<VideoSender>>,
    /// Whether it receives the robot's video now: its offer (or latest renegotiation)
    /// has a section receiving video. A page watching through an SFU turns it off, and
    /// its video sender leaves the stream until it is on again.
    wants_video: watch::Sender<bool>,
    /// Whether it receives the robot's sound now, alike.
    wants_audio: watch::Sender<bool>,
    /// Its audio track, when the robot sends it audio.
    audio: Mutex<Option<VideoSender>>,
    /// Whether its video and audio senders run (each starts once).
    video_started: AtomicBool,
    audio_started: AtomicBool,
    /// Its connection, for renegotiation (weak: the connection owns this state).
    pc: OnceLock<Weak<dyn PeerConnection>>,
    renegotiations: AtomicU64,
    /// The microphones and cameras it sends now.
    tracks_in: Arc<TracksIn>,
    /// `None` once the peer is closed: a task spawned then is aborted at once.
    tasks: Mutex<Option<Vec<JoinHandle<()>>>>,
    gathered: watch::Sender<bool>,
    connected: AtomicBool,
    /// Counts `disconnected` states; a grace timer only ends the peer if no later one
    /// started and the connection did not come back.
    disconnects: AtomicU64,
    /// Whether the connection is up now (`connected` says whether it ever was).
    up: AtomicBool,
    refusals: Mutex<RefusalThrottle>,
    received: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    /// What its congestion control says the path to it carries.
    estimate: BandwidthEstimate,
    /// Its video link's figures from the RTCP reports (not the estimate).
    link: Mutex<LinkStats>,
}

/// A connected (or connecting) peer, owned by the robot's registry.
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<PeerShared>,
}

impl Peer {
    /// Its id.
    pub fn id(&self) -> PeerId {
        self.shared.id
    }

    /// What the token it connected with lets it do.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// Whether its connection ever came up (it stays counted as connected while an
    /// interruption's grace runs).
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Whether its connection is up now (false while connecting or interrupted).
    pub fn up(&self) -> bool {
        self.shared.up.load(Ordering::SeqCst)
    }

    /// Whether it asked for video.
    pub fn wants_video(&self) -> bool {
        *self.shared.wants_video.borrow()
    }

    /// What it sends and receives besides video, and its renegotiations.
    pub fn media(&self) -> MediaState {
        let s = &self.shared;
        MediaState {
            renegotiations: s.renegotiations.load(Ordering::Relaxed),
            audio_out: s.audio.lock().expect("audio lock").is_some(),
            audio_in: s.tracks_in.audio.load(Ordering::Relaxed) > 0,
            video_in: s.tracks_in.video.load(Ordering::Relaxed) > 0,
        }
    }

    /// What the path to it carries, kbit/s, by its congestion control; `None` without
    /// congestion control or before its first feedback.
    pub fn bandwidth_kbps(&self) -> Option<u32> {
        self.shared.estimate.kbps()
    }

    /// Its video link's figures; `None` when it asked for no video.
    pub fn link_stats(&self) -> Option<LinkStats> {
        self.wants_video().then(|| LinkStats {
            bandwidth_kbps: self.shared.estimate.kbps(),
            ..*self.shared.link.lock().expect("link lock")
        })
    }

    /// Whether its video is being sent (connected, and it asked for video).
    pub fn watching(&self) -> bool {
        self.wants_video() && self.shared.up.load(Ordering::SeqCst)
    }

    /// Its message counters.
    pub fn counters(&self) -> PeerCounters {
        let s = &self.shared;
        PeerCounters {
            received: s.received.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }

    /// Queues one message for this peer; never waits (see the module docs).
    pub fn send(&self, msg: &Telemetry) -> Result<(), SendError> {
        self.shared.send(msg)
    }

    /// Queues text already serialised (a broadcast serialises once for every peer).
    pub fn send_text(&self, text: Arc<str>) -> Result<(), SendError> {
        self.shared.send_text(text)
    }

    /// Queues a latest-wins message (a periodic reading): on the unreliable drive
    /// channel when the peer opened one, else like [`Peer::send`] (see the module
    /// docs). Never waits.
    pub fn send_latest(&self, msg: &Telemetry) -> Result<(), SendError> {
        self.shared.send_latest(msg.to_text().into())
    }

    /// [`Peer::send_latest`] with text already serialised.
    pub fn send_latest_text(&self, text: Arc<str>) -> Result<(), SendError> {
        self.shared.send_latest(text)
    }

    /// Stops its tasks and closes its connection.
    pub async fn close(&self) {
        self.shared.abort_tasks();
        let _ = self.pc.close().await;
        self.shared.release_webrtc();
    }

    /// Stops its tasks now and closes its connection in the background.
    pub fn close_soon(&self) {
        self.shared.abort_tasks();
        let pc = self.pc.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = pc.close().await;
            shared.release_webrtc();
        });
    }
}

impl Drop for PeerShared {
    fn drop(&mut self) {
        LIVE_PEER_STATES.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PeerShared {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        match self.tasks.lock().expect("tasks lock").as_mut() {
            Some(tasks) => {
                // A peer that keeps dropping and coming back starts a timer each time.
                tasks.retain(|t| !t.is_finished());
                tasks.push(handle);
            }
            None => handle.abort(),
        }
    }

    fn send(&self, msg: &Telemetry) -> Result<(), SendError> {
        self.send_text(msg.to_text().into())
    }

    fn send_text(&self, text: Arc<str>) -> Result<(), SendError> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(SendError::NotOpen);
        }
        match self.outbox.try_send(text) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(SendError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    fn send_latest(&self, text: Arc<str>) -> Result<(), SendError> {
        if self.drive.lock().expect("drive lock").is_none() {
            return self.send_text(text);
        }
        {
            let mut queue = self.latest.lock().expect("latest lock");
            if queue.len() >= LATEST_QUEUE {
                queue.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back(text);
        }
        self.latest_ready.notify_one();
        Ok(())
    }

    /// Writes one message on the message channel now.
    async fn write(&self, text: &str) {
        let channel = self.channel.lock().expect("channel lock").clone();
        if let Some(channel) = channel {
            if channel.send_text(text).await.is_ok() {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn gone(&self, reason: &str) {
        (self.ctx.on_gone)(self.id, reason);
    }

    /// Drops what this peer holds of the WebRTC stack (its channel, track and
    /// sender). The connection owns the event handler, which owns this state: without
    /// this, that cycle would keep every closed connection's memory alive.
    fn release_webrtc(&self) {
        self.channel.lock().expect("channel lock").take();
        self.drive.lock().expect("drive lock").take();
        self.video.lock().expect("video lock").take();
        self.audio.lock().expect("audio lock").take();
    }

    /// Stops every task of this peer.
    fn abort_tasks(&self) {
        let tasks = self.tasks.lock().expect("tasks lock").take();
        for task in tasks.into_iter().flatten() {
            task.abort();
        }
    }
}

/// The connection's events, to the peer's state. It holds the state weakly: the
/// connection owns its handler, and the state (through its channels, tracks and
/// senders) the connection, so a strong reference here would be a cycle that a late
/// event (a channel stored after the peer closed) could leave standing. The
/// [`Peer`] owns the state; once it is gone, events have nobody to tell.
struct Handler(std::sync::Weak<PeerShared>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if let (RTCIceGatheringState::Complete, Some(shared)) = (state, self.0.upgrade()) {
            shared.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let shared = &shared;
        tracing::debug!(peer = shared.id, "connection state {state}");
        match state {
            RTCPeerConnectionState::Connected => {
                shared.up.store(true, Ordering::SeqCst);
                if !shared.connected.swap(true, Ordering::SeqCst) {
                    tracing::info!(peer = shared.id, "peer connected");
                    start_video(shared);
                    start_audio(shared);
                } else {
                    tracing::info!(peer = shared.id, "peer connected again");
                }
            }
            RTCPeerConnectionState::Disconnected => {
                shared.up.store(false, Ordering::SeqCst);
                let epoch = shared.disconnects.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::info!(
                    peer = shared.id,
                    "peer disconnected: its drive stops and is released; it has {DISCONNECTED_GRACE:?} to come back"
                );
                shared
                    .ctx
                    .hub
                    .release(shared.id, "the driving peer's connection was interrupted");
                let weak = Arc::downgrade(shared);
                shared.spawn(async move {
                    tokio::time::sleep(DISCONNECTED_GRACE).await;
                    if let Some(shared) = weak.upgrade() {
                        if shared.disconnects.load(Ordering::SeqCst) == epoch
                            && !shared.up.load(Ordering::SeqCst)
                        {
                            shared.gone("its connection was interrupted and did not come back");
                        }
                    }
                });
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                shared.up.store(false, Ordering::SeqCst);
                shared.gone(&format!("connection {state}"));
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let sinks = MediaSinks {
            audio: shared.ctx.media_in.audio.clone(),
            video: shared.ctx.media_in.video.clone(),
            hub: shared.ctx.hub.clone(),
        };
        let tracks = shared.tracks_in.clone();
        let id = shared.id;
        shared.spawn(async move {
            media_in::receive(track, id, &sinks, &tracks).await;
        });
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let task_shared = shared.clone();
        shared.spawn(async move { serve_channel(task_shared, channel).await });
    }
}

/// Makes a peer from an offer and returns it with the answer to send back; `role`
/// (from the token it connected with) says whether its drive states are taken.
pub async fn negotiate(
    ctx: Arc<PeerContext>,
    id: PeerId,
    role: Role,
    offer: &SessionDescription,
) -> Result<(Peer, SessionDescription), PeerError> {
    let offer = to_rtc(offer).map_err(PeerError::BadOffer)?;
    let offered = sections(&offer.sdp);
    let wants = MediaWants::from_sections(&offered);
    let wants_video = wants.receive_video;
    let (gathered, mut gathered_rx) = watch::channel(false);
    let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
    LIVE_PEER_STATES.fetch_add(1, Ordering::SeqCst);
    let shared = Arc::new(PeerShared {
        id,
        role,
        ctx: ctx.clone(),
        channel: Mutex::new(None),
        outbox,
        outbox_rx: Mutex::new(Some(outbox_rx)),
        open: AtomicBool::new(false),
        drive: Mutex::new(None),
        latest: Mutex::new(VecDeque::new()),
        latest_ready: Notify::new(),
        video: Mutex::new(None),
        wants_video: watch::channel(wants_video).0,
        wants_audio: watch::channel(wants.receive_audio).0,
        audio: Mutex::new(None),
        video_started: AtomicBool::new(false),
        audio_started: AtomicBool::new(false),
        pc: OnceLock::new(),
        renegotiations: AtomicU64::new(0),
        tracks_in: Arc::new(TracksIn::default()),
        tasks: Mutex::new(Some(Vec::new())),
        gathered,
        connected: AtomicBool::new(false),
        disconnects: AtomicU64::new(0),
        up: AtomicBool::new(false),
        refusals: Mutex::new(RefusalThrottle::default()),
        received: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        estimate: BandwidthEstimate::default(),
        link: Mutex::new(LinkStats::default()),
    });
    let congestion =
        ctx.congestion
            .filter(|_| wants_video)
            .map(|(initial_kbps, min_kbps, max_kbps)| CongestionSettings {
                initial_kbps,
                min_kbps,
                max_kbps,
                estimate: shared.estimate.clone(),
            });
    let pc = build_connection(
        Side::Answerer,
        &ctx.webrtc.ice_servers,
        &ctx.webrtc.ice_udp,
        None,
        congestion.as_ref(),
        Arc::new(Handler(Arc::downgrade(&shared))),
    )
    .await?;
    let _ = shared.pc.set(Arc::downgrade(&pc));
    let peer = Peer {
        pc: pc.clone(),
        shared: shared.clone(),
    };
    match answer(&peer, offer, &offered, &mut gathered_rx).await {
        Ok(answer) => {
            let timeout_shared = Arc::downgrade(&shared);
            shared.spawn(async move {
                tokio::time::sleep(CONNECT_TIMEOUT).await;
                if let Some(shared) = timeout_shared.upgrade() {
                    if !shared.connected.load(Ordering::SeqCst) {
                        shared.gone("it never connected");
                    }
                }
            });
            Ok((peer, answer))
        }
        Err(err) => {
            peer.close().await;
            Err(err)
        }
    }
}

async fn answer(
    peer: &Peer,
    offer: RTCSessionDescription,
    offered: &[Section],
    gathered: &mut watch::Receiver<bool>,
) -> Result<SessionDescription, PeerError> {
    let pc = &peer.pc;
    pc.set_remote_description(offer)
        .await
        .map_err(PeerError::BadOffer)?;
    add_tracks(&peer.shared, pc, offered).await?;
    let answer = pc.create_answer(None).await.map_err(PeerError::BadOffer)?;
    pc.set_local_description(answer).await?;
    let started = Instant::now();
    wait_gathered(gathered).await;
    tracing::debug!(
        peer = peer.shared.id,
        "answer gathered in {:?}",
        started.elapsed()
    );
    let local = pc.local_description().await.ok_or(PeerError::Negotiation(
        "no local description after answering",
    ))?;
    Ok(SessionDescription::answer(local.sdp))
}

/// Adds the robot's tracks that `wants` asks for and the peer has not got yet: its
/// video, and its audio when the robot has a source.
///
/// Then each transceiver's direction is set to the answer the offer calls for
/// (`offered`: each section's mid and direction), so that the robot receives where
/// the browser sends (its microphone, even on the transceiver it first only received
/// the robot's sound on) and answers a section the browser turned off as inactive.
async fn add_tracks(
    shared: &Arc<PeerShared>,
    pc: &Arc<dyn PeerConnection>,
    offered: &[Section],
) -> Result<(), PeerError> {
    let id = shared.id;
    let wants = MediaWants::from_sections(offered);
    if wants.receive_video && shared.video.lock().expect("video lock").is_none() {
        let codec = h264_codecs().remove(0).rtp_codec;
        let track = local_track(
            RtpCodecKind::Video,
            format!("rtcbot-video-{id}"),
            "robot camera",
            codec,
        )?;
        let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
        *shared.video.lock().expect("video lock") = Some((track, sender));
    }
    // What it receives from now on (a renegotiation may turn either off or on).
    shared
        .wants_video
        .send_if_modified(|w| std::mem::replace(w, wants.receive_video) != *w);
    shared
        .wants_audio
        .send_if_modified(|w| std::mem::replace(w, wants.receive_audio) != *w);
    let has_audio = shared.audio.lock().expect("audio lock").is_some();
    if wants.receive_audio && shared.ctx.audio.is_some() && !has_audio {
        let codec = opus_codec().rtp_codec;
        let track = local_track(
            RtpCodecKind::Audio,
            format!("rtcbot-audio-{id}"),
            "robot microphone",
            codec,
        )?;
        let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
        *shared.audio.lock().expect("audio lock") = Some((track, sender));
    }
    // Each offered section gets the answer's direction: webrtc-rs answers with the
    // transceiver's own, which a section the browser made inactive must not get.
    let ours: Vec<_> = [&shared.video, &shared.audio]
        .iter()
        .filter_map(|slot| {
            slot.lock()
                .expect("track lock")
                .as_ref()
                .map(|(_, s)| s.id())
        })
        .collect();
    let offered = directions(offered);
    for transceiver in pc.get_transceivers().await {
        let Some(mid) = transceiver.mid().await? else {
            continue;
        };
        let Some((_, offered)) = offered.iter().find(|(m, _)| *m == mid) else {
            continue;
        };
        let we_send = match transceiver.sender().await? {
            Some(sender) => ours.contains(&sender.id()),
            None => false,
        };
        let wanted = match offered.answer(we_send) {
            Direction::SendRecv => RTCRtpTransceiverDirection::Sendrecv,
            Direction::SendOnly => RTCRtpTransceiverDirection::Sendonly,
            Direction::RecvOnly => RTCRtpTransceiverDirection::Recvonly,
            Direction::Inactive => RTCRtpTransceiverDirection::Inactive,
        };
        if transceiver.direction().await? != wanted {
            transceiver.set_direction(wanted).await?;
        }
    }
    Ok(())
}

/// Answers a renegotiation offer from the data channel: applies it, adds the tracks
/// it newly asks for, and returns the answer (see the module docs).
async fn renegotiate(
    shared: &Arc<PeerShared>,
    desc: SessionDescription,
) -> Result<SessionDescription, String> {
    if desc.kind != shared_protocol::SdpType::Offer {
        return Err(
            "renegotiation refused: the robot made no offer to answer (send an offer)".into(),
        );
    }
    let pc = shared
        .pc
        .get()
        .and_then(Weak::upgrade)
        .ok_or("renegotiation refused: the connection is closing")?;
    let offer = to_rtc(&desc).map_err(|e| format!("renegotiation refused: the offer: {e}"))?;
    let offered = sections(&offer.sdp);
    pc.set_remote_description(offer)
        .await
        .map_err(|e| format!("renegotiation refused: the offer: {e}"))?;
    add_tracks(shared, &pc, &offered)
        .await
        .map_err(|e| format!("renegotiation failed: {e}"))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| format!("renegotiation failed: no answer to that offer: {e}"))?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| format!("renegotiation failed: no answer to that offer: {e}"))?;
    let local = pc
        .local_description()
        .await
        .ok_or("renegotiation failed: no local description after answering")?;
    shared.renegotiations.fetch_add(1, Ordering::Relaxed);
    tracing::trace!(peer = shared.id, offer = %desc.sdp, answer = %local.sdp, "renegotiated");
    if shared.up.load(Ordering::SeqCst) {
        start_video(shared);
        start_audio(shared);
    }
    Ok(SessionDescription::answer(local.sdp))
}

/// The payload type `sender` negotiated (`none`: why there is none) and `track`'s
/// SSRC: what each sample written to the track needs.
pub(crate) async fn negotiated(
    track: &TrackLocalStaticSample,
    sender: &Arc<dyn RtpSender>,
    none: &'static str,
) -> Result<(u8, u32), PeerError> {
    let params = sender.get_parameters().await?;
    let payload_type = params
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .ok_or(PeerError::Negotiation(none))?;
    let ssrc = *track
        .ssrcs()
        .await
        .first()
        .ok_or(PeerError::Negotiation("the track has no SSRC"))?;
    Ok((payload_type, ssrc))
}

/// Once connected, sends the shared audio stream on this peer's audio track (once).
fn start_audio(shared: &Arc<PeerShared>) {
    let Some((track, sender)) = shared.audio.lock().expect("audio lock").clone() else {
        return;
    };
    let Some(stream) = shared.ctx.audio.clone() else {
        return;
    };
    if shared.audio_started.swap(true, Ordering::SeqCst) {
        return;
    }
    let id = shared.id;
    let wanted = shared.wants_audio.subscribe();
    shared.spawn(async move {
        if let Err(err) = send_audio(stream, track, sender, Some(wanted)).await {
            tracing::warn!(peer = id, "audio stopped: {err}");
        }
    });
}

/// Writes the shared audio stream to `track` (what `sender` negotiated) until the
/// stream ends, while `wanted` (if any) says the peer receives it: paused, it is no
/// listener of the stream. The Rust client sends its microphone the same way.
pub(crate) async fn send_audio(
    stream: AudioStream,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    mut wanted: Option<watch::Receiver<bool>>,
) -> Result<(), PeerError> {
    let (payload_type, ssrc) = negotiated(&track, &sender, "the peer accepted no Opus").await?;
    // Drains the track's RTCP so its queue never fills (receiver reports only).
    let rtcp_track = track.clone();
    let _rtcp = AbortOnDrop(tokio::spawn(async move {
        while rtcp_track.poll().await.is_some() {}
    }));
    while wanted_now(&mut wanted, true).await {
        let mut listener = stream.subscribe();
        loop {
            let packet = tokio::select! {
                packet = listener.next() => match packet {
                    Some(packet) => packet,
                    None => return Ok(()),
                },
                _ = wanted_now(&mut wanted, false) => break,
            };
            let sample = Sample {
                data: packet.data.clone(),
                duration: Duration::from_millis(20),
                ..Sample::new(packet.captured)
            };
            if let Err(err) = track.write_sample(ssrc, payload_type, &sample, &[]).await {
                tracing::debug!("audio write_sample: {err}");
            }
        }
    }
    Ok(())
}

/// Completes once `wanted` says `want` (at once without a `wanted`, when `want` is
/// true; never, when it is false); false once the peer is gone.
async fn wanted_now(wanted: &mut Option<watch::Receiver<bool>>, want: bool) -> bool {
    match wanted {
        Some(rx) => rx.wait_for(|w| *w == want).await.is_ok(),
        None if want => true,
        None => std::future::pending().await,
    }
}

/// Once connected, sends the shared stream on this peer's track (once).
fn start_video(shared: &Arc<PeerShared>) {
    let Some((track, sender)) = shared.video.lock().expect("video lock").clone() else {
        return;
    };
    if shared.video_started.swap(true, Ordering::SeqCst) {
        return;
    }
    let stream = shared.ctx.stream.clone();
    let period = shared.ctx.frame_period;
    let configured_kbps = shared.ctx.congestion.map(|(initial, _, _)| initial);
    let id = shared.id;
    let task_shared = Arc::downgrade(shared);
    let wanted = shared.wants_video.subscribe();
    shared.spawn(async move {
        let link = task_shared.clone();
        let video = send_video(
            stream.clone(),
            (track, sender),
            wanted,
            period,
            configured_kbps,
            link,
        );
        if let Err(err) = video.await {
            tracing::warn!(peer = id, "video stopped: {err}");
        }
        // The viewer is told why its video ended when it was not a shutdown.
        if let (Some(StreamEnd::Failed(why)), Some(shared)) =
            (stream.ended(), task_shared.upgrade())
        {
            let _ = shared.send(&Telemetry::Error { message: why });
        }
    });
}

/// Writes the shared stream to the peer's track while it receives video (`wanted`):
/// paused, it is no viewer of the stream; on again, it starts from a keyframe.
async fn send_video(
    stream: VideoStream,
    (track, sender): VideoSender,
    wanted: watch::Receiver<bool>,
    period: Duration,
    configured_kbps: Option<u32>,
    link: std::sync::Weak<PeerShared>,
) -> Result<(), PeerError> {
    let (payload_type, ssrc) =
        negotiated(&track, &sender, "the browser accepted no H.264 profile").await?;
    let mut wanted = Some(wanted);
    let feedback_track = track.clone();
    let feedback_stream = stream.clone();
    let feedback = tokio::spawn(async move {
        while let Some(event) = feedback_track.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                tracing::debug!("viewer asked for a keyframe");
                feedback_stream.request_keyframe();
            }
        }
    });
    let _feedback = AbortOnDrop(feedback);
    let _link = AbortOnDrop(tokio::spawn(read_link_stats(link.clone(), sender.clone())));
    let mut previous: Option<Instant> = None;
    let mut layers = LayerChoice::default();
    while wanted_now(&mut wanted, true).await {
        let mut viewer = stream.subscribe();
        loop {
            let frame = tokio::select! {
                frame = viewer.next() => match frame {
                    Some(frame) => frame,
                    None => return Ok(()),
                },
                _ = wanted_now(&mut wanted, false) => break,
            };
            // With congestion control, a viewer whose path carries clearly less than the
            // encoder's target gets the base layer only (`video::layers`).
            if let (Some(configured), Some(shared)) = (configured_kbps, link.upgrade()) {
                let target = stream.target_kbps().unwrap_or(configured);
                let before = layers.switches();
                let now = layers.update(Instant::now(), shared.estimate.kbps(), target);
                if layers.switches() != before {
                    tracing::debug!(peer = shared.id, ?now, target, "temporal layers");
                    let mut link = shared.link.lock().expect("link lock");
                    link.layers = now;
                    link.layer_switches = layers.switches();
                }
                if !now.carries(frame.temporal_layer) {
                    continue;
                }
            }
            let duration = previous.map_or(period, |p| frame.captured.saturating_duration_since(p));
            previous = Some(frame.captured);
            let sample = Sample {
                data: frame.data.clone(),
                duration,
                ..Sample::new(frame.captured)
            };
            if let Err(err) = track.write_sample(ssrc, payload_type, &sample, &[]).await {
                tracing::debug!("write_sample: {err}");
            }
        }
    }
    Ok(())
}

/// Copies the sender's RTCP figures (loss, NACKs, round trip) into the peer's
/// [`LinkStats`] every [`LINK_STATS_PERIOD`] while it lives.
async fn read_link_stats(shared: std::sync::Weak<PeerShared>, sender: Arc<dyn RtpSender>) {
    let mut tick = tokio::time::interval(LINK_STATS_PERIOD);
    loop {
        tick.tick().await;
        let Ok(report) = sender.get_stats(Instant::now()).await else {
            continue;
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut link = shared.link.lock().expect("link lock");
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::OutboundRtp(out) => link.nacks = u64::from(out.nack_count),
                RTCStatsReportEntry::RemoteInboundRtp(remote) => {
                    let lost = remote.received_rtp_stream_stats.packets_lost;
                    link.packets_lost = u64::try_from(lost).unwrap_or(0);
                    if remote.round_trip_time_measurements > 0 {
                        link.rtt_ms = Some(remote.round_trip_time * 1000.0);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Aborts a task when dropped, so helper tasks end with the task that owns them.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes the outbox to the message channel, in order, until the peer closes.
async fn write_outbox(shared: Arc<PeerShared>, mut outbox: mpsc::Receiver<Arc<str>>) {
    while let Some(text) = outbox.recv().await {
        shared.write(&text).await;
    }
}

/// Writes latest-wins messages to the drive channel as they come, until the peer
/// closes (its tasks are aborted).
async fn write_latest(shared: Arc<PeerShared>, channel: Arc<dyn DataChannel>) {
    loop {
        shared.latest_ready.notified().await;
        loop {
            let next = shared.latest.lock().expect("latest lock").pop_front();
            let Some(text) = next else { break };
            if channel.send_text(&text).await.is_ok() {
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads one data channel until it closes; the `default` one (or the first one that is
/// not the drive channel) becomes the peer's message channel.
async fn serve_channel(shared: Arc<PeerShared>, channel: Arc<dyn DataChannel>) {
    let label = channel.label().await.unwrap_or_default();
    let id = shared.id;
    let drive_only = label == DRIVE_CHANNEL;
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen if drive_only => {
                tracing::debug!(peer = id, "drive channel open");
                *shared.drive.lock().expect("drive lock") = Some(channel.clone());
                let writer = shared.clone();
                shared.spawn(write_latest(writer, channel.clone()));
            }
            DataChannelEvent::OnOpen => {
                {
                    let mut slot = shared.channel.lock().expect("channel lock");
                    if slot.is_none() || label == DEFAULT_CHANNEL {
                        *slot = Some(channel.clone());
                    }
                }
                tracing::debug!(peer = id, "data channel {label:?} open");
                // The status goes first into the empty outbox, then the outbox opens to
                // everything else, so no notice falls between the two.
                let status = Telemetry::Status(shared.ctx.hub.status_for(id, None));
                let outbox = shared.outbox_rx.lock().expect("outbox lock").take();
                match outbox {
                    Some(outbox) => {
                        let _ = shared.outbox.try_send(status.to_text().into());
                        let settings = shared.ctx.settings.lock().expect("settings lock").clone();
                        if let Some(settings) = settings {
                            let settings = Telemetry::Settings(settings);
                            let _ = shared.outbox.try_send(settings.to_text().into());
                        }
                        // Video that failed before the channel opened is explained now.
                        if let (true, Some(StreamEnd::Failed(why))) =
                            (*shared.wants_video.borrow(), shared.ctx.stream.ended())
                        {
                            let error = Telemetry::Error { message: why };
                            let _ = shared.outbox.try_send(error.to_text().into());
                        }
                        shared.open.store(true, Ordering::SeqCst);
                        let writer = shared.clone();
                        shared.spawn(write_outbox(writer, outbox));
                    }
                    // A second channel: the writer already runs.
                    None => {
                        let _ = shared.send(&status);
                    }
                }
            }
            DataChannelEvent::OnMessage(msg) => {
                shared.received.fetch_add(1, Ordering::Relaxed);
                let reply_on = (!drive_only).then_some(&channel);
                handle_message(&shared, reply_on, &msg.data).await;
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    tracing::debug!(peer = id, "data channel {label:?} closed");
    if drive_only {
        shared.drive.lock().expect("drive lock").take();
    }
    if label == DEFAULT_CHANNEL {
        shared.gone("its message channel closed");
    }
}

/// Acts on one message; replies go on `reply_on`, or through the outbox to the message
/// channel when `None` (a message from the drive channel).
async fn handle_message(
    shared: &Arc<PeerShared>,
    reply_on: Option<&Arc<dyn DataChannel>>,
    data: &[u8],
) {
    let reply = |t: Telemetry| async move {
        match reply_on {
            Some(channel) => {
                if channel.send_text(&t.to_text()).await.is_ok() {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                let _ = shared.send(&t);
            }
        }
    };
    match session::read(data, crate::video::now_us()) {
        Action::Reply(telemetry) => {
            if let Telemetry::Error { message } = &telemetry {
                tracing::debug!(peer = shared.id, "refused a message: {message}");
            }
            reply(telemetry).await;
        }
        Action::Control(Control::Negotiate(desc)) => match renegotiate(shared, desc).await {
            Ok(answer) => {
                tracing::debug!(peer = shared.id, "renegotiated");
                reply(Telemetry::Negotiate(answer)).await;
            }
            Err(message) => {
                tracing::info!(peer = shared.id, "refused a renegotiation: {message}");
                reply(Telemetry::Error { message }).await;
            }
        },
        Action::Control(control) => {
            if let Err(refused) = shared.ctx.hub.publish_as(shared.id, shared.role, control) {
                tracing::debug!(peer = shared.id, "refused a drive state: {refused}");
                // A refused driver sends at 20 Hz: tell it at most once a second.
                let tell = shared
                    .refusals
                    .lock()
                    .expect("refusal lock")
                    .due(Instant::now());
                if tell {
                    reply(Telemetry::Error {
                        message: refused.to_string(),
                    })
                    .await;
                }
            }
        }
    }
}

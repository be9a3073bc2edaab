//! The WebRTC connection to a robot, with automatic reconnection. No UI framework.
//!
//! A [`Connection`] connects the way RTCBot pages do, through [`session`]: it
//! creates an offer with a `recvonly` video and audio transceiver (plus a `sendonly`
//! one for the page's camera or microphone while on) and one ordered data channel
//! labelled `default`, waits for ICE gathering to complete (non-trickle), `POST`s the
//! offer as JSON to the signaling URL and applies the answer from the response.
//!
//! Turning the page's microphone or camera on or off during a session
//! ([`Connection::set_local_track`]) adds its `sendonly` transceiver the first time,
//! then switches its track and its direction (`sendonly` / `inactive`), which the
//! session renegotiates over the data channel
//! ([`Renegotiator`](session::Renegotiator)); a new session starts with the tracks
//! in force.
//!
//! A page watching through the robot's SFU turns the robot's video and sound off
//! ([`Connection::set_robot_media`]): the `recvonly` transceivers become `inactive`,
//! renegotiated the same way, and the robot stops sending them to this page.
//!
//! It then watches the session: the peer connection going `failed` or `closed`, staying
//! `disconnected` for a moment, the data channel closing, the robot no longer answering
//! pings (only once it has answered some: RTCBot robots do not), or the session not
//! becoming live in time all end it. Every failure, including a failed `POST`, is
//! followed by a new attempt after a backoff that starts at 0.5 s and doubles up to
//! 5 s; reaching live resets it. A new session brings a new [`MediaStream`], so video
//! resumes without reloading the page.
//!
//! Everything the owner needs to show arrives as [`Event`]s through one callback.

use crate::session::{self, Handled, PostError, Renegotiation, Renegotiator, SessionError};
use crate::util::{epoch_us, now_ms};
use crate::wire::{self, RobotMessage};
use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::StreamExt;
use gloo::events::EventListener;
use gloo::timers::callback::Interval;
use gloo::timers::future::TimeoutFuture;
use shared_protocol::{DriveState, Ping, SdpType};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    MediaStream, MediaStreamTrack, MessageEvent, RtcDataChannel, RtcDataChannelState,
    RtcPeerConnection, RtcPeerConnectionState, RtcRtpTransceiver, RtcRtpTransceiverDirection,
    RtcRtpTransceiverInit, RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

/// How a [`Connection`] connects and when it gives up on a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the offer is `POST`ed, resolved against the page URL (default `connect`).
    pub connect_url: String,
    /// The robot's token, sent as `Authorization: Bearer` (see [`crate::util::page_token`]).
    pub token: Option<String>,
    /// ICE server URLs (`stun:...`); empty means host candidates only.
    pub ice_servers: Vec<String>,
    /// First reconnection delay.
    pub min_backoff_ms: u32,
    /// Longest reconnection delay.
    pub max_backoff_ms: u32,
    /// Consecutive failed attempts after which the state shows [`ConnState::Failed`]
    /// (reconnection goes on at the longest delay).
    pub fail_after: u32,
    /// Longest wait for ICE gathering before posting what was gathered.
    pub gather_timeout_ms: u32,
    /// Longest wait for the signaling response.
    pub post_timeout_ms: u32,
    /// Longest wait from posting the offer until the session is live.
    pub live_timeout_ms: u32,
    /// How long the peer connection may stay `disconnected` before the session ends.
    pub disconnected_grace_ms: u32,
    /// How long a robot that answered pings may stay silent before the session ends.
    pub silence_timeout_ms: u32,
    /// Ping period (0 disables pings).
    pub ping_interval_ms: u32,
    /// `getStats` period for [`Event::Video`].
    pub stats_interval_ms: u32,
    /// Whether the robot sends its video and sound to this page at first (see
    /// [`Connection::set_robot_media`]).
    pub robot_media: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_url: "connect".into(),
            token: None,
            ice_servers: Vec::new(),
            min_backoff_ms: 500,
            max_backoff_ms: 5000,
            fail_after: 6,
            gather_timeout_ms: 5000,
            post_timeout_ms: 10_000,
            live_timeout_ms: 15_000,
            disconnected_grace_ms: 2000,
            silence_timeout_ms: 3500,
            ping_interval_ms: 1000,
            stats_interval_ms: 1000,
            robot_media: true,
        }
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnState {
    /// First connection attempts since the page loaded.
    Connecting {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Connected: video and data channel are up.
    Live,
    /// A session ended or an attempt failed; trying again.
    Reconnecting {
        /// Attempt number since the last live session, from 1.
        attempt: u32,
        /// Why the previous session or attempt ended.
        reason: String,
    },
    /// Several attempts in a row failed, or the robot refused the offer. Reconnection
    /// continues at the longest delay.
    Failed {
        /// What went wrong last.
        reason: String,
    },
    /// [`Connection::close`] was called.
    Closed,
}

impl ConnState {
    /// The short name used in `data-conn`: `connecting`, `live`, `reconnecting`,
    /// `failed` or `closed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connecting { .. } => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Failed { .. } => "failed",
            Self::Closed => "closed",
        }
    }

    /// Why the state is not live, if known.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Reconnecting { reason, .. } | Self::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// Received-video figures from `RTCPeerConnection.getStats()` (`inbound-rtp`, video).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VideoStats {
    /// Decoded frames per second.
    pub fps: f64,
    /// Received bitrate, kbit/s.
    pub kbps: f64,
    /// Frame width (0 before the first frame).
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames decoded in this session.
    pub frames_decoded: u64,
    /// Packets lost in this session.
    pub packets_lost: i64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
}

/// Something the owner of a [`Connection`] may want to show.
#[derive(Debug, Clone)]
pub enum Event {
    /// The connection state changed.
    State(ConnState),
    /// A session delivered its video stream: attach it to a `<video>`.
    Stream(MediaStream),
    /// A session delivered the robot's audio, as a stream of its own.
    Audio(MediaStream),
    /// A renegotiation over the data channel ended (see [`Renegotiation`]).
    Renegotiated(Renegotiation),
    /// A text message from the robot (pongs answering this connection's pings are
    /// consumed and reported as [`Event::Rtt`]).
    Message(String),
    /// A ping came back.
    Rtt {
        /// Round trip, ms.
        rtt_ms: f64,
        /// Robot clock minus page clock, ms, estimated from the pong (±rtt/2).
        clock_offset_ms: f64,
    },
    /// Fresh received-video figures (about once per `stats_interval_ms` while live).
    Video(VideoStats),
}

/// A live connection handle; cheap to clone. Dropping it does not close the
/// connection: call [`Connection::close`].
#[derive(Clone)]
pub struct Connection {
    shared: Rc<Shared>,
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }
}

/// Which of the page's media a local track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    /// The microphone, on the audio transceiver.
    Audio,
    /// The camera, on the video transceiver.
    Video,
}

struct Shared {
    config: Config,
    on_event: Box<dyn Fn(Event)>,
    session: RefCell<Option<Session>>,
    /// The page's microphone and camera tracks while they are on.
    local_audio: RefCell<Option<MediaStreamTrack>>,
    local_video: RefCell<Option<MediaStreamTrack>>,
    /// Whether the robot's video and sound come to this page (see
    /// [`Connection::set_robot_media`]).
    robot_media: Cell<bool>,
    signals: mpsc::UnboundedSender<(u32, Signal)>,
    /// Whether to ask for a relay room's ICE servers before the next session (true
    /// until one asking found none).
    relay_ice: std::cell::Cell<bool>,
}

/// What the run loop hears about, tagged with the session id (0: any session).
#[derive(Debug)]
enum Signal {
    Live,
    End(String),
    LiveTimeout,
    RetryNow,
    /// Try now if waiting out a backoff; a session goes on (a relay room's robot
    /// arrived).
    Wake,
    Close,
}

/// Why an attempt failed; `refused` when the robot answered with a 4xx.
struct Failure {
    reason: String,
    refused: bool,
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Self {
            reason,
            refused: false,
        }
    }
}

/// The page's wording of a negotiation step that failed.
impl From<SessionError> for Failure {
    fn from(error: SessionError) -> Self {
        Self::from(match error {
            SessionError::Configuration(message) => message,
            SessionError::NoLocalDescription => "the browser produced no offer".to_owned(),
            SessionError::SetRemote(message) => {
                format!("the browser refused the answer: {message}")
            }
            other => other.to_string(),
        })
    }
}

/// The page's wording of a failed `POST` of the offer; a 4xx is a refusal.
impl From<PostError> for Failure {
    fn from(error: PostError) -> Self {
        Self::from(match error {
            PostError::NoWindow => "no window".to_owned(),
            PostError::Request(message) => message,
            PostError::Unreachable(message) => format!("cannot reach the robot ({message})"),
            PostError::BrokeOff(message) => format!("the robot's reply broke off ({message})"),
            PostError::TimedOut => "the robot did not answer in time".to_owned(),
            PostError::Status(http) => {
                let verb = if http.refused() {
                    "refused the connection"
                } else {
                    "failed to answer"
                };
                return Self {
                    reason: format!("robot {verb} (HTTP {}) {}", http.status, http.detail())
                        .trim_end()
                        .to_owned(),
                    refused: http.refused(),
                };
            }
        })
    }
}

impl Connection {
    /// Starts connecting; `on_event` hears everything that happens until
    /// [`Connection::close`].
    pub fn start(config: Config, on_event: impl Fn(Event) + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded();
        let shared = Rc::new(Shared {
            robot_media: Cell::new(config.robot_media),
            config,
            on_event: Box::new(on_event),
            session: RefCell::new(None),
            local_audio: RefCell::new(None),
            local_video: RefCell::new(None),
            relay_ice: std::cell::Cell::new(true),
            signals: tx,
        });
        spawn_local(run(Rc::clone(&shared), rx));
        Self { shared }
    }

    /// Sends a text message on the data channel. Returns false (and drops the message)
    /// when no session is open.
    pub fn send(&self, text: &str) -> bool {
        let session = self.shared.session.borrow();
        match session.as_ref() {
            Some(s) if s.dc.ready_state() == RtcDataChannelState::Open => {
                s.dc.send_with_str(text).is_ok()
            }
            _ => false,
        }
    }

    /// Sends a drive state (see [`wire::drive`]) on the drive channel (unordered, no
    /// retransmission), or on the message channel while the drive channel is not open.
    /// A stop always goes on the reliable message channel: it is sent once and must not
    /// be lost (`seq` orders states across the two channels).
    pub fn send_drive(&self, state: &DriveState) -> bool {
        let text = wire::drive(state);
        if !state.is_stopped() {
            let session = self.shared.session.borrow();
            if let Some(s) = session.as_ref() {
                if s.drive.ready_state() == RtcDataChannelState::Open {
                    return s.drive.send_with_str(&text).is_ok();
                }
            }
        }
        self.send(&text)
    }

    /// Sends `track` to the robot as the page's microphone or camera (`None`: stop
    /// sending). A live session renegotiates over its data channel; the next sessions
    /// start with it. The caller keeps owning (and stops) the track.
    pub fn set_local_track(&self, kind: LocalKind, track: Option<MediaStreamTrack>) {
        let slot = match kind {
            LocalKind::Audio => &self.shared.local_audio,
            LocalKind::Video => &self.shared.local_video,
        };
        slot.replace(track.clone());
        if let Some(session) = self.shared.session.borrow().as_ref() {
            let slot = match kind {
                LocalKind::Audio => &session.mic,
                LocalKind::Video => &session.camera,
            };
            send_track(&session.pc, slot, track.as_ref());
            session.renegotiator.retry();
        }
    }

    /// Turns the robot's video and sound to this page on or off (when the page
    /// watches through an SFU): the session's `recvonly` video and audio
    /// transceivers become `inactive` (or `recvonly` again), renegotiated over the
    /// data channel like [`Connection::set_local_track`]; the next sessions start
    /// with the setting in force. The data channels stay.
    pub fn set_robot_media(&self, on: bool) {
        if self.shared.robot_media.replace(on) == on {
            return;
        }
        if let Some(session) = self.shared.session.borrow().as_ref() {
            for transceiver in [&session.robot_video, &session.robot_audio] {
                transceiver.set_direction(receive_direction(on));
            }
            session.renegotiator.retry();
        }
    }

    /// Whether the robot sends its video and sound to this page (as last set).
    pub fn robot_media(&self) -> bool {
        self.shared.robot_media.get()
    }

    /// How it connects.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Renegotiations of the current session completed so far.
    pub fn renegotiations(&self) -> u32 {
        self.shared
            .session
            .borrow()
            .as_ref()
            .map_or(0, |s| s.renegotiator.completed())
    }

    /// Ends the current session (if any) and reconnects now, skipping the backoff.
    pub fn reconnect_now(&self) {
        let _ = self.shared.signals.unbounded_send((0, Signal::RetryNow));
    }

    /// Skips the rest of a backoff and tries now; a session already under way goes
    /// on. For news that a try would now work (a relay room's robot arrived).
    pub fn wake(&self) {
        let _ = self.shared.signals.unbounded_send((0, Signal::Wake));
    }

    /// Where offers are posted.
    pub fn connect_url(&self) -> &str {
        &self.shared.config.connect_url
    }

    /// The current peer connection, if a session exists.
    pub fn peer_connection(&self) -> Option<RtcPeerConnection> {
        self.shared.session.borrow().as_ref().map(|s| s.pc.clone())
    }

    /// Closes the session and stops reconnecting.
    pub fn close(&self) {
        // The session closes now, not when the loop next runs: when the page is being
        // left (`pagehide`) there may be no next time, and the robot should learn at
        // once (DTLS close, SCTP abort) that this driver is gone.
        close_session(&self.shared);
        let _ = self.shared.signals.unbounded_send((0, Signal::Close));
    }
}

impl Shared {
    fn emit(&self, event: Event) {
        (self.on_event)(event);
    }
}

/// The connect / watch / back off loop.
async fn run(shared: Rc<Shared>, mut rx: mpsc::UnboundedReceiver<(u32, Signal)>) {
    let cfg = shared.config.clone();
    let mut backoff = cfg.min_backoff_ms;
    let mut failures = 0u32;
    let mut attempt = 0u32;
    let mut ever_live = false;
    let mut last_reason = String::new();
    let mut id = 0u32;
    loop {
        attempt += 1;
        id += 1;
        if failures < cfg.fail_after {
            shared.emit(Event::State(if ever_live || failures > 0 {
                ConnState::Reconnecting {
                    attempt,
                    reason: last_reason.clone(),
                }
            } else {
                ConnState::Connecting { attempt }
            }));
        }
        let failure = match Session::start(&shared, id).await {
            Ok(session) => {
                *shared.session.borrow_mut() = Some(session);
                let tx = shared.signals.clone();
                let live_timeout = cfg.live_timeout_ms;
                spawn_local(async move {
                    TimeoutFuture::new(live_timeout).await;
                    let _ = tx.unbounded_send((id, Signal::LiveTimeout));
                });
                let mut live = false;
                let reason = loop {
                    let Some((sid, signal)) = rx.next().await else {
                        return;
                    };
                    if sid != 0 && sid != id {
                        continue;
                    }
                    match signal {
                        Signal::Live if !live => {
                            live = true;
                            ever_live = true;
                            failures = 0;
                            attempt = 0;
                            backoff = cfg.min_backoff_ms;
                            shared.emit(Event::State(ConnState::Live));
                        }
                        Signal::Live => {}
                        Signal::LiveTimeout if !live => {
                            break "timed out waiting for the robot's video".to_owned();
                        }
                        Signal::LiveTimeout => {}
                        Signal::End(reason) => break reason,
                        Signal::RetryNow => break "reconnect requested".to_owned(),
                        Signal::Wake => {}
                        Signal::Close => {
                            close_session(&shared);
                            shared.emit(Event::State(ConnState::Closed));
                            return;
                        }
                    }
                };
                close_session(&shared);
                Failure::from(reason)
            }
            Err(failure) => failure,
        };
        failures += 1;
        if failure.refused {
            failures = failures.max(cfg.fail_after);
        }
        last_reason = failure.reason;
        let delay = backoff;
        backoff = (backoff * 2).min(cfg.max_backoff_ms);
        if failures >= cfg.fail_after {
            shared.emit(Event::State(ConnState::Failed {
                reason: last_reason.clone(),
            }));
        } else {
            shared.emit(Event::State(ConnState::Reconnecting {
                attempt: attempt + 1,
                reason: last_reason.clone(),
            }));
        }
        // Back off, unless told to retry now or to close.
        let sleep = TimeoutFuture::new(delay);
        let wake = async {
            while let Some((_, signal)) = rx.next().await {
                match signal {
                    Signal::RetryNow | Signal::Wake => return true,
                    Signal::Close => return false,
                    Signal::Live | Signal::End(_) | Signal::LiveTimeout => {}
                }
            }
            false
        };
        futures::pin_mut!(wake);
        if let Either::Right((false, _)) = future::select(sleep, wake).await {
            shared.emit(Event::State(ConnState::Closed));
            return;
        }
    }
}

/// Sends `track` on the session's `sendonly` transceiver in `slot` (added the first
/// time), or nothing (`inactive`). A new transceiver or a changed direction makes the
/// browser ask for a renegotiation.
fn send_track(
    pc: &RtcPeerConnection,
    slot: &RefCell<Option<RtcRtpTransceiver>>,
    track: Option<&MediaStreamTrack>,
) {
    let existing = slot.borrow().clone();
    let Some(transceiver) = existing else {
        let Some(track) = track else { return };
        let init = RtcRtpTransceiverInit::new();
        init.set_direction(RtcRtpTransceiverDirection::Sendonly);
        if let Ok(stream) = MediaStream::new_with_tracks(&js_sys::Array::of1(track)) {
            init.set_streams(&js_sys::Array::of1(&stream));
        }
        let transceiver = pc.add_transceiver_with_media_stream_track_and_init(track, &init);
        slot.replace(Some(transceiver));
        return;
    };
    let promise = transceiver.sender().replace_track(track);
    spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await {
            web_sys::console::error_2(&"rtcbot: could not switch the track".into(), &e);
        }
    });
    transceiver.set_direction(if track.is_some() {
        RtcRtpTransceiverDirection::Sendonly
    } else {
        RtcRtpTransceiverDirection::Inactive
    });
}

/// The direction of the robot's media transceivers: receiving, or nothing.
fn receive_direction(on: bool) -> RtcRtpTransceiverDirection {
    if on {
        RtcRtpTransceiverDirection::Recvonly
    } else {
        RtcRtpTransceiverDirection::Inactive
    }
}

fn close_session(shared: &Shared) {
    if let Some(session) = shared.session.borrow_mut().take() {
        session.close();
    }
}

/// One peer connection and everything watching it.
struct Session {
    pc: RtcPeerConnection,
    dc: RtcDataChannel,
    drive: RtcDataChannel,
    /// The robot's video and sound to this page (`recvonly`, or `inactive`).
    robot_video: RtcRtpTransceiver,
    robot_audio: RtcRtpTransceiver,
    /// The page's microphone and camera, once sent in this session.
    mic: RefCell<Option<RtcRtpTransceiver>>,
    camera: RefCell<Option<RtcRtpTransceiver>>,
    renegotiator: Rc<Renegotiator>,
    _listeners: Vec<EventListener>,
    _timers: Vec<Interval>,
}

/// Per-session bookkeeping shared by the listeners.
struct Watch {
    id: u32,
    signals: mpsc::UnboundedSender<(u32, Signal)>,
    shared: std::rc::Weak<Shared>,
    pc_connected: Cell<bool>,
    dc_open: Cell<bool>,
    last_message_ms: Cell<f64>,
    pongs: Cell<u64>,
    next_ping: Cell<u64>,
    prev_stats: Cell<Option<(f64, f64, f64)>>,
}

impl Watch {
    fn signal(&self, signal: Signal) {
        let _ = self.signals.unbounded_send((self.id, signal));
    }

    fn emit(&self, event: Event) {
        if let Some(shared) = self.shared.upgrade() {
            shared.emit(event);
        }
    }

    fn check_live(&self) {
        if self.pc_connected.get() && self.dc_open.get() {
            self.signal(Signal::Live);
        }
    }
}

impl Session {
    async fn start(shared: &Rc<Shared>, id: u32) -> Result<Self, Failure> {
        let cfg = &shared.config;
        // Through a relay room, the room's ICE servers (TURN with credentials minted
        // for this page), unless `?ice=` named some. Asked once more only where the
        // first answer had some, so a robot's own page pays one 404, once.
        let relay_ice = if cfg.ice_servers.is_empty() && shared.relay_ice.get() {
            let servers = session::relay_ice_servers(&cfg.connect_url, 2000).await;
            shared.relay_ice.set(servers.is_some());
            servers
        } else {
            None
        };
        let configuration = match &relay_ice {
            Some(servers) => session::configuration_with(servers),
            None => session::configuration(&cfg.ice_servers),
        };
        let pc = session::peer_connection(&configuration)?;
        let session = Self::watch(shared, id, pc.clone())?;
        let result: Result<(), Failure> = async {
            session.renegotiator.begin();
            let offer = session::offer(&pc, None, cfg.gather_timeout_ms).await?;
            let body = wire::offer(&offer.sdp());
            let answer = session::post_offer(
                &cfg.connect_url,
                &body,
                cfg.token.as_deref(),
                Some(cfg.post_timeout_ms),
            )
            .await?;
            let answer = wire::description(&answer)
                .map_err(|e| format!("bad answer from the robot: {e}"))?;
            if answer.kind != SdpType::Answer {
                return Err(Failure::from(
                    "the robot replied with an offer, not an answer".to_owned(),
                ));
            }
            let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
            init.set_sdp(&answer.sdp);
            session::set_remote(&pc, &init).await?;
            session.renegotiator.established();
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(session),
            Err(failure) => {
                session.close();
                Err(failure)
            }
        }
    }

    /// Adds the transceiver and data channel and attaches every listener.
    fn watch(shared: &Rc<Shared>, id: u32, pc: RtcPeerConnection) -> Result<Self, Failure> {
        let cfg = &shared.config;
        let init = RtcRtpTransceiverInit::new();
        init.set_direction(receive_direction(shared.robot_media.get()));
        let robot_video = pc.add_transceiver_with_str_and_init("video", &init);
        let robot_audio = pc.add_transceiver_with_str_and_init("audio", &init);
        let (mic, camera) = (RefCell::new(None), RefCell::new(None));
        send_track(&pc, &mic, shared.local_audio.borrow().as_ref());
        send_track(&pc, &camera, shared.local_video.borrow().as_ref());
        let dc = session::data_channel(&pc, true);
        let drive = session::drive_channel(&pc);

        let watch = Rc::new(Watch {
            id,
            signals: shared.signals.clone(),
            shared: Rc::downgrade(shared),
            pc_connected: Cell::new(false),
            dc_open: Cell::new(false),
            last_message_ms: Cell::new(now_ms()),
            pongs: Cell::new(0),
            next_ping: Cell::new(1),
            prev_stats: Cell::new(None),
        });
        let renegotiator = Rc::new(Renegotiator::new(&pc, {
            let watch = Rc::clone(&watch);
            move |outcome| watch.emit(Event::Renegotiated(outcome))
        }));
        renegotiator.set_channel(&dc);
        let mut listeners = Vec::new();

        listeners.push(EventListener::new(&pc, "track", {
            let watch = Rc::clone(&watch);
            move |event| {
                let Some(event) = event.dyn_ref::<RtcTrackEvent>() else {
                    return;
                };
                let track = event.track();
                if track.kind() == "audio" {
                    // Its own stream: the robot may send audio and video in one.
                    if let Ok(stream) = MediaStream::new_with_tracks(&js_sys::Array::of1(&track)) {
                        watch.emit(Event::Audio(stream));
                    }
                } else if let Some(stream) = session::stream_of(event) {
                    watch.emit(Event::Stream(stream));
                }
            }
        }));

        listeners.push(EventListener::new(&pc, "connectionstatechange", {
            let watch = Rc::clone(&watch);
            let pc = pc.clone();
            let grace = cfg.disconnected_grace_ms;
            move |_| match pc.connection_state() {
                RtcPeerConnectionState::Connected => {
                    watch.pc_connected.set(true);
                    watch.check_live();
                }
                RtcPeerConnectionState::Failed => {
                    watch.signal(Signal::End("the connection failed".into()));
                }
                RtcPeerConnectionState::Closed => {
                    watch.signal(Signal::End("the connection closed".into()));
                }
                RtcPeerConnectionState::Disconnected => {
                    let watch = Rc::clone(&watch);
                    let pc = pc.clone();
                    spawn_local(async move {
                        TimeoutFuture::new(grace).await;
                        if pc.connection_state() == RtcPeerConnectionState::Disconnected {
                            watch.signal(Signal::End("lost the connection to the robot".into()));
                        }
                    });
                }
                _ => {}
            }
        }));

        listeners.push(EventListener::new(&dc, "open", {
            let watch = Rc::clone(&watch);
            move |_| {
                watch.dc_open.set(true);
                watch.last_message_ms.set(now_ms());
                watch.check_live();
            }
        }));
        listeners.push(EventListener::new(&dc, "close", {
            let watch = Rc::clone(&watch);
            move |_| watch.signal(Signal::End("the robot closed the data channel".into()))
        }));
        // The robot's latest-wins readings (stream figures, periodic status) come on the
        // drive channel, everything else on the message channel: both are read alike.
        for channel in [&dc, &drive] {
            listeners.push(EventListener::new(channel, "message", {
                let watch = Rc::clone(&watch);
                let renegotiator = Rc::clone(&renegotiator);
                move |event| {
                    let Some(text) = event
                        .dyn_ref::<MessageEvent>()
                        .and_then(|e| e.data().as_string())
                    else {
                        return;
                    };
                    let now = now_ms();
                    watch.last_message_ms.set(now);
                    if renegotiator.handle(&text) == Handled::Consumed {
                        return;
                    }
                    if text.contains("\"pong\"") {
                        if let Ok(RobotMessage::Pong(pong)) = RobotMessage::parse(&text) {
                            watch.pongs.set(watch.pongs.get() + 1);
                            let rtt_ms = (now - pong.t).max(0.0);
                            // The robot answered at about the middle of the round trip.
                            let sent_us = epoch_us() - (now - pong.t) * 1000.0;
                            let mid_us = sent_us + rtt_ms * 500.0;
                            let clock_offset_ms = (pong.robot_us as f64 - mid_us) / 1000.0;
                            watch.emit(Event::Rtt {
                                rtt_ms,
                                clock_offset_ms,
                            });
                            return;
                        }
                    }
                    watch.emit(Event::Message(text));
                }
            }));
        }

        let mut timers = Vec::new();
        if cfg.ping_interval_ms > 0 {
            let watch = Rc::clone(&watch);
            let dc = dc.clone();
            let silence = f64::from(cfg.silence_timeout_ms);
            timers.push(Interval::new(cfg.ping_interval_ms, move || {
                if dc.ready_state() != RtcDataChannelState::Open {
                    return;
                }
                if watch.pongs.get() > 0 && now_ms() - watch.last_message_ms.get() > silence {
                    watch.signal(Signal::End("the robot stopped answering".into()));
                    return;
                }
                let id = watch.next_ping.get();
                watch.next_ping.set(id + 1);
                let _ = dc.send_with_str(&wire::ping(&Ping {
                    id: i128::from(id),
                    t: now_ms(),
                }));
            }));
        }
        {
            let watch = Rc::clone(&watch);
            let pc = pc.clone();
            timers.push(Interval::new(cfg.stats_interval_ms.max(100), move || {
                if !watch.pc_connected.get() {
                    return;
                }
                let watch = Rc::clone(&watch);
                let pc = pc.clone();
                spawn_local(async move {
                    if let Some(stats) = video_stats(&pc, &watch.prev_stats).await {
                        watch.emit(Event::Video(stats));
                    }
                });
            }));
        }

        Ok(Self {
            pc,
            dc,
            drive,
            robot_video,
            robot_audio,
            mic,
            camera,
            renegotiator,
            _listeners: listeners,
            _timers: timers,
        })
    }

    fn close(self) {
        // Listeners and timers are removed when `self` drops, before close events fire.
        let Self { pc, dc, drive, .. } = self;
        drive.close();
        dc.close();
        pc.close();
    }
}

/// Reads the `inbound-rtp` video entry of `getStats`; rates are computed against the
/// previous call's `(timestamp, bytes, frames)` kept in `prev`.
pub(crate) async fn video_stats(
    pc: &RtcPeerConnection,
    prev: &Cell<Option<(f64, f64, f64)>>,
) -> Option<VideoStats> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    let report: js_sys::Map = report.unchecked_into();
    let mut found = None;
    report.for_each(&mut |value, _key| {
        if found.is_none()
            && get_str(&value, "type").as_deref() == Some("inbound-rtp")
            && get_str(&value, "kind").as_deref() == Some("video")
        {
            found = Some(value);
        }
    });
    let entry = found?;
    let num = |key: &str| get_f64(&entry, key);
    let timestamp = num("timestamp").unwrap_or_else(now_ms);
    let bytes = num("bytesReceived").unwrap_or(0.0);
    let frames = num("framesDecoded").unwrap_or(0.0);
    let (mut fps, mut kbps) = (num("framesPerSecond").unwrap_or(0.0), 0.0);
    if let Some((t0, b0, f0)) = prev.get() {
        let dt = (timestamp - t0) / 1000.0;
        if dt > 0.0 {
            kbps = (bytes - b0).max(0.0) * 8.0 / 1000.0 / dt;
            if num("framesPerSecond").is_none() {
                fps = (frames - f0).max(0.0) / dt;
            }
        }
    }
    prev.set(Some((timestamp, bytes, frames)));
    Some(VideoStats {
        fps,
        kbps,
        width: num("frameWidth").unwrap_or(0.0) as u32,
        height: num("frameHeight").unwrap_or(0.0) as u32,
        frames_decoded: frames as u64,
        packets_lost: num("packetsLost").unwrap_or(0.0) as i64,
        jitter_ms: num("jitter").unwrap_or(0.0) * 1000.0,
    })
}

fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    js_sys::Reflect::get(obj, &JsValue::from_str(key))
        .ok()?
        .as_string()
}

fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    js_sys::Reflect::get(obj, &JsValue::from_str(key))
        .ok()?
        .as_f64()
}

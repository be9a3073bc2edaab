//! One WebRTC peer of the robot: negotiation, the message channel and the video sender.
//!
//! A peer is made from a browser's offer ([`negotiate`]): the robot answers with
//! non-trickle ICE (all candidates in the answer, as RTCBot does), adopts the
//! offerer's data channels (`default` carries the protocol), and, when the offer asks
//! for video, sends the shared H.264 stream on its own track. Each peer packetizes the
//! same encoded frames; nothing is encoded per peer.

use crate::control::PeerId;
use crate::feedback::is_keyframe_request;
use crate::robot::RobotInner;
use crate::stream::VideoStream;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use shared_protocol::{Control, Pong, SessionDescription, Telemetry, DEFAULT_CHANNEL};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelMessage};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

/// How long ICE gathering may take before the answer is sent anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a peer whose drive states are refused is told so.
const REFUSAL_REPEAT: Duration = Duration::from_secs(1);
/// How long a peer may take from answer to connected before it is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// H.264 profiles offered to browsers: constrained baseline, then baseline.
const H264_FMTP: [(u8, &str); 2] = [
    (
        102,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ),
    (
        104,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    ),
];

/// Why a peer could not be made.
#[derive(Debug, Error)]
pub enum PeerError {
    /// The offer was refused by the WebRTC stack.
    #[error("the offer was refused: {0}")]
    BadOffer(String),
    /// Something failed on the robot's side.
    #[error("WebRTC error: {0}")]
    WebRtc(String),
    /// The robot already serves its maximum number of peers.
    #[error("too many peers (the limit is {0})")]
    TooMany(usize),
    /// The robot is shutting down.
    #[error("the robot is shutting down")]
    ShuttingDown,
}

fn webrtc_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::WebRtc(e.to_string())
}

/// The H.264 codec the robot sends.
pub(crate) fn h264_codecs() -> Vec<RTCRtpCodecParameters> {
    H264_FMTP
        .iter()
        .map(|(pt, fmtp)| RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_H264.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: (*fmtp).to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: *pt,
        })
        .collect()
}

/// A media engine and interceptors that speak the robot's one video codec.
fn media_setup() -> Result<(MediaEngine, Registry), PeerError> {
    let mut media = MediaEngine::default();
    for codec in h264_codecs() {
        media
            .register_codec(codec, RtpCodecKind::Video)
            .map_err(webrtc_err)?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(webrtc_err)?
        .with(
            rtc::interceptor::Slot::from(crate::feedback::SLOT),
            crate::feedback::KeyframeRequests::default(),
        );
    Ok((media, registry))
}

/// Set when this host cannot open the mDNS socket (no multicast route, as in a
/// network namespace with only loopback); later connections skip it.
static MDNS_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Which side of the offer/answer exchange a connection is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The robot, answering offers.
    Answerer,
    /// A client, making offers.
    Offerer,
}

/// Builds a peer connection with the robot's codec, interceptors and ICE settings.
///
/// The robot answers as the DTLS server (`a=setup:passive`): webrtc-rs 0.21 sends a
/// handshake flight that a state change starts (ICE connected → ClientHello) only at
/// the driver's next timer, up to 200 ms later, while replies to received packets go
/// out at once. As the DTLS (and so SCTP) server the robot only ever replies, so a
/// browser's set-up never waits on the robot's timer. Browsers accept either role.
///
/// mDNS (resolving browsers' `.local` candidates) is used when the host allows it;
/// where the multicast socket cannot be opened, the connection is built without it
/// and the peer is reached through peer-reflexive candidates instead.
pub(crate) async fn build_connection(
    side: Side,
    servers: &[crate::config::IceServer],
    udp: &[String],
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers(servers))
        .build();
    loop {
        let mdns = !MDNS_UNAVAILABLE.load(Ordering::Relaxed);
        let (media, registry) = media_setup()?;
        let mut settings = SettingEngineBuilder::new().with_multicast_dns_mode(if mdns {
            MulticastDnsMode::QueryOnly
        } else {
            MulticastDnsMode::Disabled
        });
        if side == Side::Answerer {
            settings = settings.with_answering_dtls_role(RTCDtlsRole::Server);
        }
        let built = PeerConnectionBuilder::new()
            .with_configuration(config.clone())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(handler.clone())
            .with_udp_addrs(udp.to_vec())
            .build()
            .await;
        match built {
            Ok(pc) => return Ok(Arc::new(pc)),
            Err(err) if mdns => {
                tracing::warn!("mDNS is unavailable here ({err}); continuing without it");
                MDNS_UNAVAILABLE.store(true, Ordering::Relaxed);
            }
            Err(err) => return Err(webrtc_err(err)),
        }
    }
}

/// STUN/TURN servers in the WebRTC stack's shape.
pub(crate) fn ice_servers(servers: &[crate::config::IceServer]) -> Vec<RTCIceServer> {
    servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect()
}

/// Converts a protocol description to the WebRTC stack's.
pub(crate) fn to_rtc(desc: &SessionDescription) -> Result<RTCSessionDescription, PeerError> {
    let made = match desc.kind {
        shared_protocol::SdpType::Offer => RTCSessionDescription::offer(desc.sdp.clone()),
        shared_protocol::SdpType::Answer => RTCSessionDescription::answer(desc.sdp.clone()),
    };
    made.map_err(|e| PeerError::BadOffer(e.to_string()))
}

/// Waits until ICE gathering completes (or the timeout passes).
pub(crate) async fn wait_gathered(gathered: &mut watch::Receiver<bool>) {
    let done = tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|done| *done)).await;
    if done.is_err() {
        tracing::warn!("ICE gathering took over {GATHER_TIMEOUT:?}; answering with what we have");
    }
}

/// A peer's video track and the sender that negotiated it.
type VideoSender = (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>);

/// State shared between a peer's handle, its event handler and its tasks.
pub(crate) struct PeerShared {
    pub(crate) id: PeerId,
    robot: Weak<RobotInner>,
    channel: Mutex<Option<Arc<dyn DataChannel>>>,
    video: Mutex<Option<VideoSender>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    gathered: watch::Sender<bool>,
    connected: AtomicBool,
    /// When this peer was last told its drive states are refused.
    last_refusal: Mutex<Option<Instant>>,
}

/// A connected (or connecting) peer, owned by the robot's registry.
pub(crate) struct Peer {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) shared: Arc<PeerShared>,
}

impl PeerShared {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks.lock().expect("tasks lock").push(handle);
    }

    /// Sends one telemetry message on this peer's message channel, if it is open.
    pub(crate) async fn send(&self, msg: &Telemetry) -> bool {
        let channel = self.channel.lock().expect("channel lock").clone();
        match channel {
            Some(channel) => channel.send_text(&msg.to_text()).await.is_ok(),
            None => false,
        }
    }

    /// Stops every task of this peer.
    pub(crate) fn abort_tasks(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

struct Handler(Arc<PeerShared>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.0.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let shared = &self.0;
        tracing::debug!(peer = shared.id, "connection state {state}");
        match state {
            RTCPeerConnectionState::Connected if !shared.connected.swap(true, Ordering::SeqCst) => {
                tracing::info!(peer = shared.id, "peer connected");
                start_video(shared);
            }
            RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Closed => {
                if let Some(robot) = shared.robot.upgrade() {
                    robot.remove_peer(shared.id, &format!("connection {state}"));
                }
            }
            _ => {}
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let shared = self.0.clone();
        let task_shared = shared.clone();
        shared.spawn(async move { serve_channel(task_shared, channel).await });
    }
}

/// Makes a peer from an offer and returns it with the answer to send back.
pub(crate) async fn negotiate(
    robot: &Arc<RobotInner>,
    id: PeerId,
    offer: &SessionDescription,
) -> Result<(Arc<Peer>, SessionDescription), PeerError> {
    let offer = to_rtc(offer)?;
    let wants_video = offer.sdp.lines().any(|l| l.starts_with("m=video"));
    let (gathered, mut gathered_rx) = watch::channel(false);
    let shared = Arc::new(PeerShared {
        id,
        robot: Arc::downgrade(robot),
        channel: Mutex::new(None),
        video: Mutex::new(None),
        tasks: Mutex::new(Vec::new()),
        gathered,
        connected: AtomicBool::new(false),
        last_refusal: Mutex::new(None),
    });
    let pc = build_connection(
        Side::Answerer,
        &robot.config.webrtc.ice_servers,
        &robot.config.webrtc.ice_udp,
        Arc::new(Handler(shared.clone())),
    )
    .await?;
    let peer = Arc::new(Peer {
        pc: pc.clone(),
        shared: shared.clone(),
    });
    let result = answer(&peer, offer, wants_video, &mut gathered_rx).await;
    match result {
        Ok(answer) => {
            let timeout_shared = Arc::downgrade(&shared);
            shared.spawn(async move {
                tokio::time::sleep(CONNECT_TIMEOUT).await;
                if let Some(shared) = timeout_shared.upgrade() {
                    if !shared.connected.load(Ordering::SeqCst) {
                        if let Some(robot) = shared.robot.upgrade() {
                            robot.remove_peer(shared.id, "it never connected");
                        }
                    }
                }
            });
            Ok((peer, answer))
        }
        Err(err) => {
            shared.abort_tasks();
            let _ = pc.close().await;
            Err(err)
        }
    }
}

async fn answer(
    peer: &Peer,
    offer: RTCSessionDescription,
    wants_video: bool,
    gathered: &mut watch::Receiver<bool>,
) -> Result<SessionDescription, PeerError> {
    let pc = &peer.pc;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| PeerError::BadOffer(e.to_string()))?;
    if wants_video {
        let ssrc = rand::random::<u32>();
        let codec = h264_codecs().remove(0).rtp_codec;
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "rtcbot".to_owned(),
                    format!("rtcbot-video-{}", peer.shared.id),
                    "robot camera".to_owned(),
                    RtpCodecKind::Video,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec,
                        ..Default::default()
                    }],
                ),
            )
            .map_err(webrtc_err)?,
        );
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(webrtc_err)?;
        *peer.shared.video.lock().expect("video lock") = Some((track, sender));
    }
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| PeerError::BadOffer(e.to_string()))?;
    pc.set_local_description(answer).await.map_err(webrtc_err)?;
    let started = Instant::now();
    wait_gathered(gathered).await;
    tracing::debug!(
        peer = peer.shared.id,
        "answer gathered in {:?}",
        started.elapsed()
    );
    let local = pc
        .local_description()
        .await
        .ok_or_else(|| PeerError::WebRtc("no local description after answering".into()))?;
    Ok(SessionDescription::answer(local.sdp))
}

/// Once connected, sends the shared stream on this peer's track.
fn start_video(shared: &Arc<PeerShared>) {
    let Some((track, sender)) = shared.video.lock().expect("video lock").clone() else {
        return;
    };
    let Some(robot) = shared.robot.upgrade() else {
        return;
    };
    let stream = robot.stream.clone();
    let period = robot.config.frame_period();
    let id = shared.id;
    shared.spawn(async move {
        if let Err(err) = send_video(stream, track, sender, period).await {
            tracing::warn!(peer = id, "video stopped: {err}");
        }
    });
}

async fn send_video(
    stream: VideoStream,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    period: Duration,
) -> Result<(), PeerError> {
    let params = sender.get_parameters().await.map_err(webrtc_err)?;
    let payload_type = params
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .ok_or_else(|| PeerError::WebRtc("the browser accepted no H.264 profile".into()))?;
    let ssrc = *track
        .ssrcs()
        .await
        .first()
        .ok_or_else(|| PeerError::WebRtc("video track has no SSRC".into()))?;
    let mut viewer = stream.subscribe();
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
    let mut previous: Option<Instant> = None;
    while let Some(frame) = viewer.next().await {
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
    Ok(())
}

/// Aborts a task when dropped, so helper tasks end with the task that owns them.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads one data channel until it closes; the `default` one (or the first one)
/// becomes the peer's telemetry channel.
async fn serve_channel(shared: Arc<PeerShared>, channel: Arc<dyn DataChannel>) {
    let label = channel.label().await.unwrap_or_default();
    let id = shared.id;
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                {
                    let mut slot = shared.channel.lock().expect("channel lock");
                    if slot.is_none() || label == DEFAULT_CHANNEL {
                        *slot = Some(channel.clone());
                    }
                }
                tracing::debug!(peer = id, "data channel {label:?} open");
                if let Some(robot) = shared.robot.upgrade() {
                    let status = robot.status_for(id);
                    shared.send(&status).await;
                }
            }
            DataChannelEvent::OnMessage(msg) => handle_message(&shared, &channel, msg).await,
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    tracing::debug!(peer = id, "data channel {label:?} closed");
    if label == DEFAULT_CHANNEL {
        if let Some(robot) = shared.robot.upgrade() {
            robot.remove_peer(id, "its message channel closed");
        }
    }
}

async fn handle_message(
    shared: &PeerShared,
    channel: &Arc<dyn DataChannel>,
    msg: RTCDataChannelMessage,
) {
    let reply = |t: Telemetry| async move {
        let _ = channel.send_text(&t.to_text()).await;
    };
    let Ok(text) = std::str::from_utf8(&msg.data) else {
        reply(Telemetry::Error {
            message: "binary messages are not supported: send UTF-8 JSON or text".into(),
        })
        .await;
        return;
    };
    match Control::parse(text) {
        Ok(Control::Ping(ping)) => {
            reply(Telemetry::Pong(Pong {
                id: ping.id,
                t: ping.t,
                robot_us: crate::camera::now_us(),
            }))
            .await;
        }
        Ok(control) => {
            let Some(robot) = shared.robot.upgrade() else {
                return;
            };
            if let Err(refused) = robot.hub.publish(shared.id, control) {
                tracing::debug!(peer = shared.id, "refused a drive state: {refused}");
                // A refused driver sends at 20 Hz: tell it at most once a second.
                let tell = {
                    let mut last = shared.last_refusal.lock().expect("refusal lock");
                    let due = last.is_none_or(|t| t.elapsed() >= REFUSAL_REPEAT);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                };
                if tell {
                    reply(Telemetry::Error {
                        message: refused.to_string(),
                    })
                    .await;
                }
            }
        }
        Err(err) => {
            tracing::debug!(peer = shared.id, "refused a message: {err}");
            reply(Telemetry::Error {
                message: err.to_string(),
            })
            .await;
        }
    }
}

//! Peer connections as both sides build them: the robot's one video codec (H.264
//! constrained baseline, then baseline) and one audio codec (Opus), the interceptors (with [`super::feedback`]'s
//! keyframe requests), ICE servers and sockets, mDNS when the host allows it, the
//! gathering wait, the event handler of the clients' connections ([`Events`]), and
//! protocol ↔ WebRTC session descriptions.

use super::config::IceServer;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
use shared_protocol::SessionDescription;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webrtc::error::Error;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

/// Bytes a robot's data channel may hold unsent before its writes wait: what makes a
/// peer's outbox ([`super::peer::OUTBOX`]) fill when the peer stops reading, instead of
/// webrtc-rs queueing without limit. Above the ~1 MiB SCTP receive window, so a peer
/// that reads never meets it.
pub const SEND_BUFFER_LIMIT: usize = 2 << 20;

/// How long ICE gathering may take before the description is sent anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
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

/// The H.264 codec the robot sends.
pub fn h264_codecs() -> Vec<RTCRtpCodecParameters> {
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

/// The robot's one audio codec: Opus, 48 kHz (signalled as stereo, as RFC 7587
/// requires; the robot sends mono), in-band FEC allowed.
pub fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: 111,
    }
}

/// A media engine and interceptors that speak the robot's one video codec, with
/// congestion control for what it sends when `congestion` is given.
fn media_setup(
    congestion: Option<&super::feedback::CongestionSettings>,
) -> Result<(MediaEngine, Registry), Error> {
    let mut media = MediaEngine::default();
    for codec in h264_codecs() {
        media.register_codec(codec, RtpCodecKind::Video)?;
    }
    media.register_codec(opus_codec(), RtpCodecKind::Audio)?;
    let registry = register_default_interceptors(Registry::new(), &mut media)?.with(
        rtc::interceptor::Slot::from(super::feedback::SLOT),
        super::feedback::KeyframeRequests::default(),
    );
    let registry = match congestion {
        Some(settings) => super::feedback::with_congestion_control(registry, &mut media, settings)?,
        None => registry,
    };
    Ok((media, registry))
}

/// Set when this host cannot open the mDNS socket (no multicast route, as in a
/// network namespace with only loopback); later connections skip it.
static MDNS_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Which side of the offer/answer exchange a connection is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
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
/// `ice_tick` (offerer only) shortens that timer: it sets ICE's check and keep-alive
/// intervals, so the client's flights wait at most one tick instead of 200 ms, at
/// the cost of one STUN binding request (and its reply) per tick while connected.
///
/// `congestion` turns on send-side congestion control (see
/// [`super::feedback::with_congestion_control`]).
///
/// mDNS (resolving browsers' `.local` candidates) is used when the host allows it;
/// where the multicast socket cannot be opened, the connection is built without it
/// and the peer is reached through peer-reflexive candidates instead.
pub async fn build_connection(
    side: Side,
    servers: &[IceServer],
    udp: &[String],
    ice_tick: Option<Duration>,
    congestion: Option<&super::feedback::CongestionSettings>,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, Error> {
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers(servers))
        .build();
    loop {
        let mdns = !MDNS_UNAVAILABLE.load(Ordering::Relaxed);
        let (media, registry) = media_setup(congestion)?;
        let mut settings = SettingEngineBuilder::new().with_multicast_dns_mode(if mdns {
            MulticastDnsMode::QueryOnly
        } else {
            MulticastDnsMode::Disabled
        });
        if side == Side::Answerer {
            settings = settings
                .with_answering_dtls_role(RTCDtlsRole::Server)
                .with_ice_timeouts(
                    Some(super::peer::ICE_DISCONNECTED),
                    None,
                    Some(super::peer::ICE_KEEPALIVE),
                );
        }
        if let (Side::Offerer, Some(tick)) = (side, ice_tick) {
            // A pair fails after this many unanswered checks: keep ICE's default of
            // about 1.4 s (7 checks at 200 ms) before giving up on a candidate pair.
            let checks = (1400 / tick.as_millis().max(1)).clamp(7, 1000) as u16;
            settings = settings
                .with_ice_timeouts(None, None, Some(tick))
                .with_ice_connection_attempts(Some(tick), Some(checks));
        }
        let limit = match side {
            Side::Answerer => SEND_BUFFER_LIMIT,
            // The client's own sends are the caller's to pace.
            Side::Offerer => usize::MAX,
        };
        let built = PeerConnectionBuilder::new()
            .with_data_channel_send_buffer_limit(limit)
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
            Err(err) => return Err(err),
        }
    }
}

/// A local track with its own random SSRC, for samples of `codec`.
pub fn local_track(
    kind: RtpCodecKind,
    id: String,
    label: &str,
    codec: rtc::rtp_transceiver::rtp_sender::RTCRtpCodec,
) -> Result<Arc<TrackLocalStaticSample>, Error> {
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            "rtcbot".to_owned(),
            id,
            label.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(rand::random::<u32>()),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ),
    )?))
}

/// STUN/TURN servers in the WebRTC stack's shape.
pub fn ice_servers(servers: &[IceServer]) -> Vec<RTCIceServer> {
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
pub fn to_rtc(desc: &SessionDescription) -> Result<RTCSessionDescription, Error> {
    match desc.kind {
        shared_protocol::SdpType::Offer => RTCSessionDescription::offer(desc.sdp.clone()),
        shared_protocol::SdpType::Answer => RTCSessionDescription::answer(desc.sdp.clone()),
    }
}

/// The event handler of a connection the robot's clients make (the Rust client, the
/// WHEP client, the Janus publisher and viewer): gathering done (for
/// [`wait_gathered`]), the connection's state, and each remote track to `on_track`
/// (which spawns what reads it).
pub struct Events {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    on_track: Box<dyn Fn(Arc<dyn TrackRemote>) + Send + Sync>,
}

/// What [`Events::new`] hands back to watch: gathering done, and the state.
pub type EventWatch = (
    watch::Receiver<bool>,
    watch::Receiver<RTCPeerConnectionState>,
);

impl Events {
    /// A handler passing each remote track to `on_track`, and its watches.
    pub fn new(
        on_track: impl Fn(Arc<dyn TrackRemote>) + Send + Sync + 'static,
    ) -> (Arc<Self>, EventWatch) {
        let (gathered, gathered_rx) = watch::channel(false);
        let (state, state_rx) = watch::channel(RTCPeerConnectionState::New);
        let events = Arc::new(Self {
            gathered,
            state,
            on_track: Box::new(on_track),
        });
        (events, (gathered_rx, state_rx))
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        (self.on_track)(track);
    }
}

/// Waits until ICE gathering completes (or the timeout passes).
pub async fn wait_gathered(gathered: &mut watch::Receiver<bool>) {
    let done = tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|done| *done)).await;
    if done.is_err() {
        tracing::warn!("ICE gathering took over {GATHER_TIMEOUT:?}; answering with what we have");
    }
}

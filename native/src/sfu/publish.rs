//! The robot's publisher in a Janus VideoRoom: one send-only WebRTC connection fed
//! from the shared H.264 encode (and the shared Opus stream), kept alive, published
//! again with backoff whenever it ends.

use super::api::{expect_sdp, http_client, Session, SfuError};
use super::config::SfuConfig;
use super::janus::{self, Reply};
use crate::audio::AudioStream;
use crate::rtc::config::WebRtcConfig;
use crate::rtc::connection::{
    build_connection, h264_codecs, local_track, opus_codec, wait_gathered, Events, Side,
};
use crate::rtc::feedback::is_keyframe_request;
use crate::rtc::peer::{negotiated, AbortOnDrop};
use crate::video::VideoStream;
use rtc::media::Sample;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

/// The first wait before publishing again; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait before publishing again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the session is kept alive (Janus's default `session_timeout` is 60 s).
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long the connection to Janus may take to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A publication that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// What the publisher is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SfuPhase {
    /// Reaching Janus, joining the room, connecting.
    #[default]
    Connecting,
    /// Janus has the robot's stream.
    Publishing,
    /// The last try failed or the publication ended; waiting to try again.
    Retrying,
    /// Another publisher took the robot's id in the room while it published (two
    /// robots with one `publisher_id`): it waits and takes the slot only once it is
    /// free, rather than kick the other one back.
    Conflict,
}

impl SfuPhase {
    /// The word for it in `/health` and the stats telemetry.
    pub fn word(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Publishing => "publishing",
            Self::Retrying => "retrying",
            Self::Conflict => "conflict",
        }
    }
}

/// The publisher's status, for `/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SfuStatus {
    /// Janus's API.
    pub url: String,
    /// The room.
    pub room: u64,
    /// What it is doing.
    pub state: SfuPhase,
    /// Times it published (connected to Janus with the room's answer).
    pub publishes: u64,
    /// Video bytes (H.264) written to Janus, whatever the number of its viewers.
    pub video_bytes: u64,
    /// Why the last try failed or the last publication ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl SfuStatus {
    /// The status as the stats telemetry carries it to every peer: with where pages
    /// watch while the robot publishes, when `config` offers that (`watch_url`).
    pub fn telemetry(&self, config: &SfuConfig) -> shared_protocol::SfuStats {
        let watch = config
            .watch_url
            .as_ref()
            .filter(|_| self.state == SfuPhase::Publishing)
            .map(|url| shared_protocol::SfuWatch {
                url: url.clone(),
                room: config.room,
                feed: config.publisher_id,
                pin: config.pin.clone(),
            });
        shared_protocol::SfuStats {
            state: self.state.word().to_owned(),
            publishes: self.publishes,
            error: self.last_error.clone(),
            watch,
        }
    }
}

/// The publisher's status, shared with whoever reports it or waits for it.
#[derive(Debug, Clone)]
pub struct SfuState(Arc<watch::Sender<SfuStatus>>);

impl Default for SfuState {
    fn default() -> Self {
        Self(Arc::new(watch::channel(SfuStatus::default()).0))
    }
}

impl SfuState {
    /// A snapshot.
    pub fn status(&self) -> SfuStatus {
        self.0.borrow().clone()
    }

    /// Every change from now on (`wait_for` a publication, say).
    pub fn changes(&self) -> watch::Receiver<SfuStatus> {
        self.0.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut SfuStatus)) {
        self.0.send_modify(f);
    }
}

/// What is published: the shared streams, and the WebRTC settings to reach Janus with.
#[derive(Clone)]
pub struct Media {
    /// The one H.264 encode.
    pub stream: VideoStream,
    /// The one Opus stream, when the robot has a source.
    pub audio: Option<AudioStream>,
    /// ICE sockets and servers.
    pub webrtc: WebRtcConfig,
}

/// Publishes `media` to the room of `config` until `closed` turns true (the robot's
/// shutdown), again with backoff after every failure; `state` says how it goes. At
/// the end it closes its connection and ends its Janus session, so that the room
/// frees the robot's id at once (a restarted robot, or another, takes it without
/// waiting for Janus to time the session out).
pub async fn run(
    config: SfuConfig,
    media: Media,
    state: SfuState,
    mut closed: watch::Receiver<bool>,
) {
    let base = config.base_url();
    state.update(|s| {
        s.url = base.clone();
        s.room = config.room;
    });
    let http = http_client();
    let mut backoff = BACKOFF_MIN;
    // Once another publisher pushed the robot out of its id, the robot never kicks a
    // holder of that id again: it would be the other robot, and each would push the
    // other out in turn.
    let mut displaced = false;
    loop {
        state.update(|s| {
            if s.state != SfuPhase::Conflict {
                s.state = SfuPhase::Connecting;
            }
        });
        let started = Instant::now();
        let ended = publish(
            &http,
            &base,
            (&config, !displaced),
            &media,
            &state,
            &mut closed,
        )
        .await;
        if *closed.borrow() {
            tracing::info!("sfu: left room {} at {base}", config.room);
            return;
        }
        if started.elapsed() >= STABLE {
            backoff = BACKOFF_MIN;
        }
        let conflict = matches!(ended, SfuError::Displaced { .. });
        displaced |= conflict;
        tracing::warn!(
            "sfu: room {} at {base}: {ended}; publishing again in {backoff:?}",
            config.room
        );
        state.update(|s| {
            s.state = if conflict {
                SfuPhase::Conflict
            } else {
                SfuPhase::Retrying
            };
            s.last_error = Some(ended.to_string());
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = closed.wait_for(|c| *c) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

type Sending = (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>);

/// One publication: until it fails, ends or `closed` turns true, with why; then its
/// connection is closed and its session ended. `may_kick`: whether a holder of the
/// robot's id may be taken for a stale session of its own and kicked.
async fn publish(
    http: &reqwest::Client,
    base: &str,
    (config, may_kick): (&SfuConfig, bool),
    media: &Media,
    state: &SfuState,
    closed: &mut watch::Receiver<bool>,
) -> SfuError {
    let mut session = match Session::create(http.clone(), base).await {
        Ok(session) => session,
        Err(err) => return err,
    };
    // A send-only connection: no remote tracks to read.
    let (handler, (mut gathered_rx, connection_rx)) = Events::new(|_| {});
    let pc = match build_connection(
        Side::Offerer,
        &media.webrtc.ice_servers,
        &media.webrtc.ice_udp,
        None,
        None,
        handler,
    )
    .await
    {
        Ok(pc) => pc,
        Err(err) => return err.into(),
    };
    let publishing = publish_on(
        &mut session,
        &pc,
        &mut gathered_rx,
        connection_rx,
        (config, may_kick),
        media,
        state,
    );
    let ended = tokio::select! {
        ended = publishing => ended,
        _ = closed.wait_for(|c| *c) => SfuError::Protocol("the robot is shutting down".into()),
    };
    let _ = pc.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), session.destroy()).await;
    ended
}

async fn publish_on(
    session: &mut Session,
    pc: &Arc<dyn PeerConnection>,
    gathered: &mut watch::Receiver<bool>,
    mut connection: watch::Receiver<RTCPeerConnectionState>,
    (config, may_kick): (&SfuConfig, bool),
    media: &Media,
    state: &SfuState,
) -> SfuError {
    let displaced = || SfuError::Displaced {
        room: config.room,
        id: config.publisher_id,
    };
    let setup = async {
        let handle = session.attach().await?;
        let video = add_sender(pc, RtpCodecKind::Video).await?;
        let audio = match (&media.audio, config.audio) {
            (Some(audio), true) => {
                Some((add_sender(pc, RtpCodecKind::Audio).await?, audio.clone()))
            }
            _ => None,
        };
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        wait_gathered(gathered).await;
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| SfuError::WebRtc("no local description after the offer".into()))?
            .sdp;
        let answer = match session
            .request(handle, |t| janus::publish(t, &config.publisher(), &sdp))
            .await
        {
            Err(SfuError::Janus(err)) if err.code == janus::ID_EXISTS && !may_kick => {
                return Err(displaced());
            }
            Err(SfuError::Janus(err)) if err.slot_taken() => {
                tracing::warn!(
                    "sfu: {err}; a session from before a restart? kicking publisher {} with the room's secret",
                    config.publisher_id
                );
                session
                    .request(handle, |t| {
                        janus::kick(
                            t,
                            config.room,
                            config.publisher_id,
                            config.secret.as_deref(),
                        )
                    })
                    .await
                    .map_err(|e| {
                        SfuError::Protocol(format!("could not kick the stale publisher: {e}"))
                    })?;
                session
                    .request(handle, |t| janus::publish(t, &config.publisher(), &sdp))
                    .await?
            }
            other => other?,
        };
        let sdp = expect_sdp(answer, "answer", "the publication")?;
        pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        Ok::<_, SfuError>((video, audio))
    };
    let (video, audio) = match setup.await {
        Ok(senders) => senders,
        Err(err) => return err,
    };
    let up = tokio::time::timeout(
        CONNECT_TIMEOUT,
        connection.wait_for(|s| *s == RTCPeerConnectionState::Connected),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !up {
        return SfuError::WebRtc(format!("not connected after {CONNECT_TIMEOUT:?}"));
    }
    // Janus takes subscribers to the feed once its side of the connection is up
    // (`webrtcup`); "publishing" is said only then, so that whoever waits for it can
    // subscribe at once.
    let ready = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            match session.next_event().await.map(|e| janus::parse(&e)) {
                Err(err) => return Err(err),
                Ok(Err(err)) => return Err(err.into()),
                Ok(Ok(Reply::Hangup(why))) => {
                    return Err(SfuError::Protocol(format!(
                        "Janus hung up the publisher: {why}"
                    )))
                }
                Ok(Ok(Reply::Notice(kind))) if kind == "webrtcup" => return Ok(()),
                Ok(Ok(_)) => {}
            }
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return err,
        Err(_) => {
            return SfuError::Protocol(format!(
                "no webrtcup from Janus {CONNECT_TIMEOUT:?} after connecting"
            ))
        }
    }
    let bytes = Arc::new(AtomicU64::new(state.status().video_bytes));
    let _video = AbortOnDrop(tokio::spawn(send_video(
        media.stream.clone(),
        video,
        bytes.clone(),
    )));
    let _audio =
        audio.map(|(sending, stream)| AbortOnDrop(tokio::spawn(send_audio(sending, stream))));
    tracing::info!(
        "sfu: publishing to room {} at {} as publisher {} ({})",
        config.room,
        config.base_url(),
        config.publisher_id,
        if media.audio.is_some() && config.audio {
            "video and audio"
        } else {
            "video"
        }
    );
    state.update(|s| {
        s.state = SfuPhase::Publishing;
        s.publishes += 1;
        s.last_error = None;
    });
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    let mut counted = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if let Err(err) = session.keepalive().await {
                    return err;
                }
            }
            _ = counted.tick() => {
                let sent = bytes.load(Ordering::Relaxed);
                state.update(|s| s.video_bytes = sent);
            }
            event = session.next_event() => match event.map(|e| janus::parse(&e)) {
                Err(err) => return err,
                Ok(Err(err)) => return err.into(),
                Ok(Ok(Reply::Hangup(why))) => {
                    return SfuError::Protocol(format!("Janus hung up the publisher: {why}"))
                }
                Ok(Ok(Reply::Event { data, .. })) if janus::kicked(&data) => return displaced(),
                Ok(Ok(_)) => {}
            },
            changed = connection.changed() => {
                let now = *connection.borrow();
                if changed.is_err()
                    || matches!(now, RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)
                {
                    return SfuError::WebRtc(format!("the connection is {now}"));
                }
            }
        }
    }
}

/// A send-only track of `kind` on `pc`, with its sender.
async fn add_sender(pc: &Arc<dyn PeerConnection>, kind: RtpCodecKind) -> Result<Sending, SfuError> {
    let (codec, id) = match kind {
        RtpCodecKind::Audio => (opus_codec().rtp_codec, "rtcbot-sfu-audio"),
        _ => (h264_codecs().remove(0).rtp_codec, "rtcbot-sfu-video"),
    };
    let track = local_track(kind, id.to_owned(), "robot", codec)?;
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![],
        send_encodings: vec![],
    };
    let transceiver = pc
        .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
        .await?;
    let sender = transceiver
        .sender()
        .await?
        .ok_or_else(|| SfuError::WebRtc("a send-only transceiver without a sender".into()))?;
    Ok((track, sender))
}

/// Writes the shared encode to Janus; its keyframe requests (a new viewer there) go
/// to the encoder.
async fn send_video(stream: VideoStream, sending: Sending, bytes: Arc<AtomicU64>) {
    let negotiated = negotiated(
        &sending.0,
        &sending.1,
        "the room took no H.264 profile of the robot's",
    );
    let (payload_type, ssrc) = match negotiated.await {
        Ok(negotiated) => negotiated,
        Err(err) => {
            tracing::warn!("sfu: {err}");
            return;
        }
    };
    let track = sending.0;
    let feedback_track = track.clone();
    let feedback_stream = stream.clone();
    let _feedback = AbortOnDrop(tokio::spawn(async move {
        while let Some(event) = feedback_track.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = event {
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                    feedback_stream.request_keyframe();
                }
            }
        }
    }));
    let mut viewer = stream.subscribe();
    let mut previous: Option<Instant> = None;
    while let Some(frame) = viewer.next().await {
        let duration = previous.map_or(Duration::from_millis(33), |p| {
            frame.captured.saturating_duration_since(p)
        });
        previous = Some(frame.captured);
        let sample = Sample {
            data: frame.data.clone(),
            duration,
            ..Sample::new(frame.captured)
        };
        bytes.fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        if let Err(err) = track.write_sample(ssrc, payload_type, &sample, &[]).await {
            tracing::debug!("sfu: write_sample: {err}");
        }
    }
}

/// Writes the shared Opus stream to Janus, as to any peer.
async fn send_audio((track, sender): Sending, stream: AudioStream) {
    if let Err(err) = crate::rtc::peer::send_audio(stream, track, sender, None).await {
        tracing::warn!("sfu: no sound to Janus: {err}");
    }
}

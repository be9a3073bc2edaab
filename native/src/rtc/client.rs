//! The offering side of a connection: drive and watch a robot from Rust.
//!
//! This is what RTCBot's Python `RTCConnection` does on a desktop: make an offer with
//! a `default` data channel (and a receive-only video transceiver when asked), POST
//! it to the robot's `/connect`, apply the answer, then exchange messages and receive
//! H.264 access units. The end-to-end tests and the benchmark use it as a real peer.
//!
//! Media can change mid-session: [`RobotClient::start_audio`] sends the robot a
//! microphone (any [`AudioSource`], Opus-encoded here) and [`RobotClient::stop_audio`]
//! stops it, each renegotiating on the data channel ([`RobotClient::renegotiate`]:
//! the offer goes as `{"type":"negotiate"}`, the robot's answer comes back the same
//! way).
//!
//! Drive states go on their own `drive` channel ([`DRIVE_CHANNEL`]: unordered, no
//! retransmission), so that on a lossy link a lost packet never holds back the newer
//! states behind it; until that channel is open they go on `default`. The robot sends
//! its latest-wins readings (stream figures, periodic status, whatever its code sends
//! with `send_latest`) back on it; [`RobotClient::recv`] gives the messages of both
//! channels.
//!
//! [`RobotClient::pictures`] decodes the video into [`Picture`]s (see [`picture`]).

mod assemble;
mod latest;
pub mod picture;

pub use picture::{Picture, PictureDecoder, PictureError, PictureStream, PICTURE_QUEUE};

use super::config::IceServer;
use super::connection::{
    build_connection, local_track, opus_codec, to_rtc, wait_gathered, Events, Side,
};
use super::peer::{send_audio, AbortOnDrop};
use crate::audio::{AudioSource, AudioStream};
use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use shared_protocol::{Control, SessionDescription, Telemetry, DEFAULT_CHANNEL, DRIVE_CHANNEL};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

/// How long [`RobotClient::connect`] waits for the data channel to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`RobotClient::renegotiate`] waits for the robot's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client could not connect or send.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The HTTP exchange failed or the robot refused the offer.
    #[error("signaling failed: {0}")]
    Signaling(String),
    /// The WebRTC stack failed.
    #[error("WebRTC error: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// The connection is not in a state to do this.
    #[error("{0}")]
    NotReady(&'static str),
    /// The data channel did not open in time.
    #[error("the data channel did not open within {0:?}")]
    Timeout(Duration),
    /// The video could not be decoded into pictures.
    #[error(transparent)]
    Picture(#[from] PictureError),
}

/// Messages from the robot buffered for [`RobotClient::recv`]; when full, the client
/// stops reading its channel until `recv` catches up (SCTP then slows the robot).
const MESSAGE_QUEUE: usize = 1024;

/// What to ask the robot for.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Receive the robot's video.
    pub video: bool,
    /// Receive the robot's audio (Opus packets, [`RobotClient::take_audio`]).
    pub audio: bool,
    /// Local UDP addresses for ICE.
    pub ice_udp: Vec<String>,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// The WebRTC stack's timer while connecting and connected (ICE check and
    /// keep-alive interval). webrtc-rs 0.21 sends the flights a state change starts
    /// (DTLS hello, SCTP INIT, channel open) only at its next tick, so its default of
    /// 200 ms makes set-up take ~600 ms; 10 ms takes it to tens of milliseconds, at
    /// the cost of a STUN binding request and its reply each tick while connected
    /// (about 100 packets a second each way, ~10 KB/s). `None` keeps the default.
    pub ice_tick: Option<Duration>,
    /// The token to connect with, sent as `Authorization: Bearer` (a `?token=` in the
    /// URL works too).
    pub token: Option<String>,
    /// For an `https://` robot with a self-signed certificate: its PEM certificate
    /// (the robot's `tls/cert.pem`), trusted for this connection only.
    pub robot_certificate: Option<Vec<u8>>,
    /// The local address the signaling request leaves from (a machine with several;
    /// the tests use 127.0.0.2 to be another client); `None`: the system's choice.
    pub http_local_address: Option<std::net::IpAddr>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            video: true,
            audio: false,
            ice_udp: vec!["127.0.0.1:0".into()],
            ice_servers: Vec::new(),
            ice_tick: Some(Duration::from_millis(10)),
            token: None,
            robot_certificate: None,
            http_local_address: None,
        }
    }
}

/// One assembled H.264 access unit from the robot.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// Annex B bytes.
    pub data: Bytes,
    /// When the last packet of the frame arrived.
    pub received: Instant,
}

/// One Opus packet (20 ms) of the robot's audio.
#[derive(Debug, Clone)]
pub struct ReceivedAudio {
    /// The Opus payload.
    pub data: Bytes,
    /// Its RTP sequence number.
    pub sequence: u16,
    /// When it arrived.
    pub received: Instant,
    /// When it arrived, microseconds since the Unix epoch.
    pub received_wall_us: u64,
}

/// A live connection to a robot.
pub struct RobotClient {
    pc: Arc<dyn PeerConnection>,
    channel: Arc<dyn DataChannel>,
    drive: DriveChannel,
    messages: mpsc::Receiver<String>,
    video: Option<mpsc::Receiver<ReceivedFrame>>,
    audio: Option<mpsc::Receiver<ReceivedAudio>>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    /// The robot's answers to renegotiation offers.
    answers: tokio::sync::Mutex<mpsc::Receiver<SessionDescription>>,
    /// The microphone being sent, when one is.
    microphone: Option<Microphone>,
}

/// The microphone's transceiver, and what feeds it while it is on.
struct Microphone {
    transceiver: Arc<dyn webrtc::rtp_transceiver::RtpTransceiver>,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    /// `None`: off.
    feed: Option<Feed>,
}

/// The microphone's capture and encode (an [`AudioStream`] of one listener) and the
/// task writing it to the track; dropping it ends both.
struct Feed {
    stream: AudioStream,
    _task: AbortOnDrop,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stream.close();
    }
}

/// The Opus bitrate of a client's microphone, kbit/s.
const MICROPHONE_KBPS: u32 = 32;

/// The unordered, unreliable channel for drive states, and whether it is open.
struct DriveChannel {
    channel: Arc<dyn DataChannel>,
    open: watch::Receiver<bool>,
}

impl DriveChannel {
    /// Opens it on `pc` and watches it open; what the robot sends on it goes to
    /// `messages` (dropped when the queue is full: a newer reading follows).
    async fn create(
        pc: &Arc<dyn PeerConnection>,
        messages: mpsc::Sender<String>,
    ) -> Result<Self, ClientError> {
        let init = RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        let channel = pc.create_data_channel(DRIVE_CHANNEL, Some(init)).await?;
        let (open_tx, open) = watch::channel(false);
        let reader = channel.clone();
        tokio::spawn(async move {
            while let Some(event) = reader.poll().await {
                match event {
                    DataChannelEvent::OnOpen => {
                        open_tx.send_replace(true);
                    }
                    DataChannelEvent::OnMessage(msg) => {
                        let text = String::from_utf8_lossy(&msg.data).into_owned();
                        let _ = messages.try_send(text);
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
            open_tx.send_replace(false);
        });
        Ok(Self { channel, open })
    }
}

/// What negotiation hands the client: its channels and queues.
type Negotiated = (
    Arc<dyn DataChannel>,
    DriveChannel,
    mpsc::Receiver<String>,
    mpsc::Receiver<SessionDescription>,
);

/// Reads each of the robot's tracks: its sound to `audio`, its video to `video`
/// (the video track kept in `track`, for keyframe requests).
fn read_tracks(
    video: mpsc::Sender<ReceivedFrame>,
    audio: mpsc::Sender<ReceivedAudio>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
) -> impl Fn(Arc<dyn TrackRemote>) + Send + Sync + 'static {
    move |remote| {
        let (video, audio, track) = (video.clone(), audio.clone(), track.clone());
        tokio::spawn(async move {
            if remote.kind().await != RtpCodecKind::Audio {
                *track.lock().expect("track lock") = Some(remote.clone());
                return receive_video(remote, Some(video)).await;
            }
            while let Some(event) = remote.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                    continue;
                };
                let received = ReceivedAudio {
                    data: packet.payload,
                    sequence: packet.header.sequence_number,
                    received: Instant::now(),
                    received_wall_us: crate::video::now_us(),
                };
                if audio.try_send(received).is_err() && audio.is_closed() {
                    return;
                }
            }
        });
    }
}

/// Reads the video `track` until it ends; while `frames`' reader lives, hands it
/// each H.264 access unit the moment its last packet is in ([`assemble::Assembler`])
/// and asks the sender for a keyframe when units are lost or the first one is not
/// one. The track is read to its end either way, so its queue in the WebRTC stack
/// never fills. The robot's own client, the WHEP client and the Janus viewer all
/// receive this way.
pub(crate) async fn receive_video(
    track: Arc<dyn TrackRemote>,
    mut frames: Option<mpsc::Sender<ReceivedFrame>>,
) {
    let mut assembler = assemble::Assembler::default();
    let mut keyframes = assemble::KeyframeWatch::default();
    while let Some(event) = track.poll().await {
        let (TrackRemoteEvent::OnRtpPacket(packet), Some(video)) = (event, &frames) else {
            continue;
        };
        let now = Instant::now();
        let header = &packet.header;
        let media_ssrc = header.ssrc;
        let units = assembler.push(
            header.sequence_number,
            header.timestamp,
            header.marker,
            packet.payload,
        );
        for data in units {
            // Joined after the keyframe, or lost a unit: its pictures will not decode
            // until the next keyframe, so ask for one now.
            if keyframes.on_unit(&data, assembler.lost, now) {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let _ = track.write_rtcp(vec![Box::new(pli)]).await;
            }
            let frame = ReceivedFrame {
                data,
                received: now,
            };
            // A full queue drops the frame: the reader is too slow, not the sender.
            if video.try_send(frame).is_err() && video.is_closed() {
                frames = None;
                break;
            }
        }
    }
}

impl RobotClient {
    /// Connects to the robot whose signaling endpoint is `url` (…`/connect`) and waits
    /// until the message channel is open.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let (video_tx, video_rx) = mpsc::channel(256);
        let (audio_tx, audio_rx) = mpsc::channel(256);
        let track = Arc::new(Mutex::new(None));
        let (handler, (mut gathered_rx, _)) =
            Events::new(read_tracks(video_tx, audio_tx, track.clone()));
        // Through a relay room, the room's ICE servers unless the caller named some.
        let room_ice = match options.ice_servers.is_empty() {
            true => room_ice_servers(url, &options).await,
            false => Vec::new(),
        };
        let ice_servers = if room_ice.is_empty() {
            &options.ice_servers
        } else {
            &room_ice
        };
        let pc = build_connection(
            Side::Offerer,
            ice_servers,
            &options.ice_udp,
            options.ice_tick,
            None,
            handler,
        )
        .await?;
        let result = Self::negotiate(&pc, url, &options, &mut gathered_rx).await;
        match result {
            Ok((channel, drive, messages, answers)) => Ok(Self {
                pc,
                channel,
                drive,
                messages,
                video: options.video.then_some(video_rx),
                audio: options.audio.then_some(audio_rx),
                track,
                answers: tokio::sync::Mutex::new(answers),
                microphone: None,
            }),
            Err(err) => {
                let _ = pc.close().await;
                Err(err)
            }
        }
    }

    async fn negotiate(
        pc: &Arc<dyn PeerConnection>,
        url: &str,
        options: &ClientOptions,
        gathered: &mut watch::Receiver<bool>,
    ) -> Result<Negotiated, ClientError> {
        let video = options.video;
        let (messages_tx, messages) = mpsc::channel(MESSAGE_QUEUE);
        let (answers_tx, answers) = mpsc::channel(4);
        let channel = pc.create_data_channel(DEFAULT_CHANNEL, None).await?;
        let drive = DriveChannel::create(pc, messages_tx.clone()).await?;
        if video {
            pc.add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await?;
        }
        if options.audio {
            pc.add_transceiver_from_kind(
                RtpCodecKind::Audio,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await?;
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        wait_gathered(gathered).await;
        let local = pc.local_description().await.ok_or(ClientError::NotReady(
            "no local description after the offer",
        ))?;
        let answer = post_offer_with(url, &SessionDescription::offer(local.sdp), options).await?;
        let answer = to_rtc(&answer).map_err(|e| ClientError::Signaling(e.to_string()))?;
        pc.set_remote_description(answer).await?;

        let (opened_tx, mut opened_rx) = watch::channel(false);
        let reader = channel.clone();
        tokio::spawn(async move {
            while let Some(event) = reader.poll().await {
                match event {
                    DataChannelEvent::OnOpen => {
                        opened_tx.send_replace(true);
                    }
                    DataChannelEvent::OnMessage(msg) => {
                        let text = String::from_utf8_lossy(&msg.data).into_owned();
                        // The robot's answers to renegotiations go to `renegotiate`.
                        if text.contains(r#""negotiate""#) {
                            if let Ok(Telemetry::Negotiate(desc)) = Telemetry::parse(&text) {
                                let _ = answers_tx.try_send(desc);
                                continue;
                            }
                        }
                        if messages_tx.send(text).await.is_err() {
                            break;
                        }
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
        tokio::time::timeout(OPEN_TIMEOUT, opened_rx.wait_for(|open| *open))
            .await
            .map_err(|_| ClientError::Timeout(OPEN_TIMEOUT))?
            .map_err(|_| ClientError::NotReady("the data channel closed before opening"))?;
        Ok((channel, drive, messages, answers))
    }

    /// Offers the connection's current media to the robot on the data channel and
    /// applies its answer: what a browser does when a track is added or removed.
    pub async fn renegotiate(&self) -> Result<(), ClientError> {
        let mut answers = self.answers.lock().await;
        // An answer to an offer that timed out earlier is stale.
        while answers.try_recv().is_ok() {}
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or(ClientError::NotReady(
                "no local description after the offer",
            ))?;
        let message = Control::Negotiate(SessionDescription::offer(local.sdp));
        self.send_text(&message.to_text()).await?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, answers.recv())
            .await
            .map_err(|_| {
                ClientError::Signaling(format!(
                    "the robot did not answer the renegotiation within {ANSWER_TIMEOUT:?} \
                     (its error, if it sent one, comes through recv())"
                ))
            })?
            .ok_or(ClientError::NotReady("the data channel closed"))?;
        let answer = to_rtc(&answer).map_err(|e| ClientError::Signaling(e.to_string()))?;
        self.pc.set_remote_description(answer).await?;
        Ok(())
    }

    /// Sends the robot sound from `source` (Opus-encoded here, 20 ms packets) on an
    /// audio transceiver of its own (send-only: made the first time, turned back on
    /// after), renegotiating; replaces a microphone already sent. Its own transceiver,
    /// as the browser app does: a microphone on the transceiver that receives the
    /// robot's sound gets through neither webrtc-rs 0.21 nor every robot.
    pub async fn start_audio(&mut self, source: Box<dyn AudioSource>) -> Result<(), ClientError> {
        if self.microphone.as_ref().is_some_and(|m| m.feed.is_some()) {
            self.stop_audio().await?;
        }
        let microphone = match self.microphone.take() {
            Some(microphone) => {
                microphone
                    .transceiver
                    .set_direction(RTCRtpTransceiverDirection::Sendonly)
                    .await?;
                microphone
            }
            None => {
                let track = local_track(
                    RtpCodecKind::Audio,
                    format!("client-audio-{}", rand::random::<u32>()),
                    "microphone",
                    opus_codec().rtp_codec,
                )?;
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                };
                let transceiver = self
                    .pc
                    .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
                    .await?;
                let sender = transceiver.sender().await?.ok_or(ClientError::NotReady(
                    "the microphone transceiver has no sender",
                ))?;
                Microphone {
                    transceiver,
                    track,
                    sender,
                    feed: None,
                }
            }
        };
        // A stream of one listener: the robot's own capture and encode.
        let stream = AudioStream::start(source, MICROPHONE_KBPS);
        let (track, sender) = (microphone.track.clone(), microphone.sender.clone());
        let send = stream.clone();
        let feed = tokio::spawn(async move {
            if let Err(err) = send_audio(send, track, sender, None).await {
                tracing::warn!("the microphone is not sent: {err}");
            }
        });
        self.microphone = Some(Microphone {
            feed: Some(Feed {
                stream,
                _task: AbortOnDrop(feed),
            }),
            ..microphone
        });
        self.renegotiate().await
    }

    /// Stops sending the microphone (its transceiver goes inactive), renegotiating;
    /// nothing when none is sent.
    pub async fn stop_audio(&mut self) -> Result<(), ClientError> {
        let Some(microphone) = self.microphone.as_mut() else {
            return Ok(());
        };
        if microphone.feed.take().is_none() {
            return Ok(());
        }
        microphone
            .transceiver
            .set_direction(RTCRtpTransceiverDirection::Inactive)
            .await?;
        self.renegotiate().await
    }

    /// Sends one control message: a moving drive state on the drive channel when it is
    /// open; everything else on `default`, which is reliable: a stop in particular
    /// (sent once, it must not be lost), and drive states before the drive channel is
    /// open. `seq` orders states across the two channels.
    pub async fn send(&self, control: &Control) -> Result<(), ClientError> {
        let text = control.to_text();
        let moving = matches!(control, Control::Drive(s) if !s.is_stopped());
        if moving && *self.drive.open.borrow() {
            return Ok(self.drive.channel.send_text(&text).await?);
        }
        self.send_text(&text).await
    }

    /// Whether the drive channel is open (drive states then bypass `default`).
    pub fn drive_channel_open(&self) -> bool {
        *self.drive.open.borrow()
    }

    /// Waits until the drive channel is open, for at most `timeout`; true if it is.
    pub async fn wait_drive_channel(&self, timeout: Duration) -> bool {
        let mut open = self.drive.open.clone();
        tokio::time::timeout(timeout, open.wait_for(|o| *o))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sends raw text, as rtcbot.js's `put_nowait` does with a string.
    pub async fn send_text(&self, text: &str) -> Result<(), ClientError> {
        Ok(self.channel.send_text(text).await?)
    }

    /// The next message from the robot, parsed; `None` when the channel closed.
    /// Text that is not valid telemetry arrives as [`Telemetry::Text`].
    pub async fn recv(&mut self) -> Option<Telemetry> {
        let text = self.messages.recv().await?;
        Some(Telemetry::parse(&text).unwrap_or(Telemetry::Text(text)))
    }

    /// Takes the stream of received audio packets (once; with
    /// [`ClientOptions::audio`]). Decode them with
    /// [`OpusDecoder`](crate::audio::codec::OpusDecoder).
    pub fn take_audio(&mut self) -> Option<mpsc::Receiver<ReceivedAudio>> {
        self.audio.take()
    }

    /// Takes the stream of received video frames (once).
    pub fn take_video(&mut self) -> Option<mpsc::Receiver<ReceivedFrame>> {
        self.video.take()
    }

    /// Takes the video (once) as decoded pictures: decoded on a thread of its own,
    /// keeping the [`PICTURE_QUEUE`] newest for a slow reader. Fails when the video was
    /// not asked for ([`ClientOptions::video`]) or was already taken.
    pub fn pictures(&mut self) -> Result<PictureStream, ClientError> {
        let frames = self.take_video().ok_or(ClientError::NotReady(
            "no video to decode: not asked for, or already taken",
        ))?;
        Ok(PictureStream::start(frames, PICTURE_QUEUE)?)
    }

    /// Asks the robot for a keyframe with an RTCP Picture Loss Indication, as a
    /// browser does after losing packets. Fails when no video track arrived yet.
    pub async fn request_keyframe(&self) -> Result<(), ClientError> {
        let track = self.track.lock().expect("track lock").clone();
        let track = track.ok_or(ClientError::NotReady("no video track yet"))?;
        let media_ssrc = *track
            .ssrcs()
            .await
            .first()
            .ok_or(ClientError::NotReady("the video track has no SSRC"))?;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        Ok(track.write_rtcp(vec![Box::new(pli)]).await?)
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
        // The connection owns the handler, which shares the track slot: empty it so
        // that no cycle keeps the closed connection's memory alive.
        self.track.lock().expect("track lock").take();
    }
}

/// The HTTP client signaling goes through: `options`' local address and robot
/// certificate (the WHEP client's too).
pub(crate) fn http_client(options: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    let mut client = reqwest::Client::builder().local_address(options.http_local_address);
    if let Some(pem) = &options.robot_certificate {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ClientError::Signaling(format!("the robot certificate: {e}")))?;
        client = client.add_root_certificate(cert);
    }
    client
        .build()
        .map_err(|e| ClientError::Signaling(format!("an HTTP client: {e}")))
}

/// How long a relay room's ICE servers may take to come.
const ROOM_ICE_TIMEOUT: Duration = Duration::from_secs(2);

/// The ICE servers of the relay room `url` posts to (`GET <room>/ice`: STUN, and TURN
/// with credentials the relay mints), as a page in the room gets them; none where
/// `url` is a robot's own `/connect` or nothing sensible answers in time.
pub async fn room_ice_servers(url: &str, options: &ClientOptions) -> Vec<IceServer> {
    if !shared_protocol::room::may_be_room(url) {
        return Vec::new();
    }
    let Ok(client) = http_client(options) else {
        return Vec::new();
    };
    let ice = shared_protocol::room::room_url(url, "ice");
    let fetched = async {
        let response = client
            .get(&ice)
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?;
        response.text().await.ok()
    };
    match tokio::time::timeout(ROOM_ICE_TIMEOUT, fetched).await {
        Ok(Some(body)) => parse_ice_servers(&body),
        _ => Vec::new(),
    }
}

/// `{"iceServers": [{"urls": "stun:..." | [...], "username": ..., "credential": ...}]}`
/// as `RTCPeerConnection` takes it; entries it cannot read are left out.
pub fn parse_ice_servers(body: &str) -> Vec<IceServer> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(servers) = json.get("iceServers").and_then(|s| s.as_array()) else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    servers
        .iter()
        .filter_map(|server| {
            let urls: Vec<String> = match server.get("urls")? {
                serde_json::Value::String(url) => vec![url.clone()],
                serde_json::Value::Array(urls) => urls
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect(),
                _ => return None,
            };
            (!urls.is_empty()).then(|| IceServer {
                urls,
                username: text(server, "username"),
                credential: text(server, "credential"),
            })
        })
        .collect()
}

/// POSTs an offer to a robot's `/connect` and returns its answer.
pub async fn post_offer(
    url: &str,
    offer: &SessionDescription,
) -> Result<SessionDescription, ClientError> {
    post_offer_with(url, offer, &ClientOptions::default()).await
}

/// [`post_offer`] with the token and robot certificate of `options`.
pub async fn post_offer_with(
    url: &str,
    offer: &SessionDescription,
    options: &ClientOptions,
) -> Result<SessionDescription, ClientError> {
    let mut client = reqwest::Client::builder().local_address(options.http_local_address);
    if let Some(pem) = &options.robot_certificate {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ClientError::Signaling(format!("the robot certificate: {e}")))?;
        client = client.add_root_certificate(cert);
    }
    let client = client
        .build()
        .map_err(|e| ClientError::Signaling(format!("an HTTP client: {e}")))?;
    let mut request = client.post(url);
    if let Some(token) = &options.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .header("content-type", "application/json")
        .body(offer.to_json())
        .send()
        .await
        // With its causes: "connection refused" is in reqwest's sources.
        .map_err(|e| ClientError::Signaling(format!("POST {url}: {}", crate::error_chain(&e))))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| ClientError::Signaling(e.to_string()))?;
    if !status.is_success() {
        return Err(ClientError::Signaling(format!("{status}: {body}")));
    }
    SessionDescription::from_json(&body).map_err(|e| ClientError::Signaling(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_ice_servers_are_read_as_pages_take_them() {
        let body = r#"{"iceServers":[
            {"urls":["stun:s:3478"]},
            {"urls":"turn:t:3478","username":"1700000000:room","credential":"c2VjcmV0"},
            {"urls":[]},
            {"nothing":1}
        ]}"#;
        let servers = parse_ice_servers(body);
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert_eq!(servers[0].urls, ["stun:s:3478"]);
        assert_eq!(servers[0].username, "");
        assert_eq!(servers[1].urls, ["turn:t:3478"]);
        assert_eq!(servers[1].username, "1700000000:room");
        assert_eq!(servers[1].credential, "c2VjcmV0");
        for bad in ["", "not json", "[]", r#"{"iceServers":{}}"#] {
            assert!(parse_ice_servers(bad).is_empty(), "{bad}");
        }
    }
}

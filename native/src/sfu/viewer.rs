//! Watching the robot through Janus from Rust: a VideoRoom subscriber to the robot's
//! feed (as a browser watching through the SFU would be), for tests and benchmarks.
//!
//! [`JanusViewer::watch`] joins the room as a subscriber of a feed, answers Janus's
//! offer (receive only) and hands out the H.264 frames as the robot's own client does
//! ([`ReceivedFrame`]). The session is kept alive while it lives.

use super::api::{expect_sdp, http_client, Session, SfuError};
use super::janus;
use super::publish::KEEPALIVE;
use crate::rtc::client::{receive_video, ReceivedFrame};
use crate::rtc::connection::{build_connection, wait_gathered, Events, Side};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

/// Video frames buffered for the reader; a slow reader loses the newest.
const FRAME_QUEUE: usize = 256;

/// A subscriber to one feed of a VideoRoom.
pub struct JanusViewer {
    pc: Arc<dyn PeerConnection>,
    video: Option<mpsc::Receiver<ReceivedFrame>>,
    audio_packets: Arc<AtomicU64>,
    keepalive: tokio::task::JoinHandle<()>,
}

impl Drop for JanusViewer {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

impl JanusViewer {
    /// Subscribes to `feed` in `room` of the Janus whose API is at `url`, with ICE
    /// on `ice_udp`; returns once Janus has the answer (the connection then comes up).
    pub async fn watch(
        url: &str,
        room: u64,
        feed: u64,
        pin: Option<&str>,
        ice_udp: &[String],
    ) -> Result<Self, SfuError> {
        let base = url.trim_end_matches('/');
        let mut session = Session::create(http_client(), base).await?;
        let handle = session.attach().await?;
        let offer = session
            .request(handle, |t| janus::subscribe(t, room, feed, pin))
            .await?;
        let sdp = expect_sdp(offer, "offer", "the subscription")?;
        let (video_tx, video) = mpsc::channel(FRAME_QUEUE);
        let audio_packets = Arc::new(AtomicU64::new(0));
        let count = audio_packets.clone();
        let (handler, (mut gathered_rx, _)) = Events::new(move |track| {
            let (video, count) = (video_tx.clone(), count.clone());
            tokio::spawn(async move {
                if track.kind().await == RtpCodecKind::Video {
                    return receive_video(track, Some(video)).await;
                }
                while let Some(event) = track.poll().await {
                    if let TrackRemoteEvent::OnRtpPacket(_) = event {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        });
        let pc = build_connection(Side::Answerer, &[], ice_udp, None, None, handler).await?;
        let answered = async {
            pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
                .await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer).await?;
            wait_gathered(&mut gathered_rx).await;
            let local = pc
                .local_description()
                .await
                .ok_or_else(|| SfuError::WebRtc("no local description after answering".into()))?;
            session
                .request(handle, |t| janus::start(t, room, &local.sdp))
                .await?;
            Ok::<_, SfuError>(())
        };
        if let Err(err) = answered.await {
            let _ = pc.close().await;
            return Err(err);
        }
        let keepalive = tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEEPALIVE);
            loop {
                tick.tick().await;
                if session.keepalive().await.is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            pc,
            video: Some(video),
            audio_packets,
            keepalive,
        })
    }

    /// Takes the stream of received video frames (once).
    pub fn take_video(&mut self) -> Option<mpsc::Receiver<ReceivedFrame>> {
        self.video.take()
    }

    /// Audio (Opus) RTP packets received so far, when the robot publishes sound.
    pub fn audio_packets(&self) -> u64 {
        self.audio_packets.load(Ordering::Relaxed)
    }

    /// Closes the connection (Janus notices by itself).
    pub async fn close(&self) {
        self.keepalive.abort();
        let _ = self.pc.close().await;
    }
}

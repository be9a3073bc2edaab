//! Media a browser sends the robot: its microphone and its camera tracks, read until
//! they end.
//!
//! Audio packets are decoded with Opus (one decoder per track) and handed to
//! [`Incoming`](crate::audio::Incoming) with whether the peer drives now; a packet
//! that does not decode is counted and skipped, and a gap in sequence numbers is
//! concealed (up to [`MAX_CONCEALED`] blocks). Video packets are depacketised into
//! H.264 access units for the peer's
//! [`CameraDecoder`](crate::video::incoming::CameraDecoder), which asks for a
//! keyframe (an RTCP PLI, at most every 500 ms) when a unit did not decode.
//!
//! A peer may send at most [`MAX_TRACKS_IN`] tracks of each kind at once (each video
//! track costs a decoder thread); the packets of any more are read and dropped.

use crate::audio::codec::OpusDecoder;
use crate::audio::Incoming;
use crate::control::{ControlHub, PeerId};
use crate::video::incoming::BrowserVideo;
use rtc::media::io::sample_builder::SampleBuilder;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Tracks of one kind a peer may send at once.
pub const MAX_TRACKS_IN: u32 = 2;

/// How many tracks of each kind a peer sends now.
#[derive(Debug, Default)]
pub struct TracksIn {
    /// Microphones.
    pub audio: AtomicU32,
    /// Cameras.
    pub video: AtomicU32,
}

/// Lost packets in a row that are concealed; a longer gap is silence.
pub const MAX_CONCEALED: u16 = 5;
/// The least time between two keyframe requests to a browser.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// Where a peer's incoming media goes.
pub struct MediaSinks {
    /// Decoded sound.
    pub audio: Incoming,
    /// Decoded camera pictures.
    pub video: BrowserVideo,
    /// Who drives (only the driver's sound plays by default).
    pub hub: ControlHub,
}

/// Reads one remote track until it ends, counted in `tracks` meanwhile; one over
/// [`MAX_TRACKS_IN`] of its kind is drained without decoding.
pub async fn receive(
    track: Arc<dyn TrackRemote>,
    peer: PeerId,
    sinks: &MediaSinks,
    tracks: &TracksIn,
) {
    let kind = track.kind().await;
    let count = match kind {
        RtpCodecKind::Audio => &tracks.audio,
        RtpCodecKind::Video => &tracks.video,
        _ => return drain(&track).await,
    };
    if count.fetch_add(1, Ordering::SeqCst) >= MAX_TRACKS_IN {
        count.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(
            peer,
            "a {kind} track over {MAX_TRACKS_IN} from one peer: dropped"
        );
        return drain(&track).await;
    }
    match kind {
        RtpCodecKind::Audio => receive_audio(&track, peer, sinks).await,
        _ => receive_video(&track, peer, sinks).await,
    }
    count.fetch_sub(1, Ordering::SeqCst);
}

/// Reads a track's events and drops them, until it ends.
async fn drain(track: &Arc<dyn TrackRemote>) {
    while let Some(event) = track.poll().await {
        if matches!(event, TrackRemoteEvent::OnEnded) {
            break;
        }
    }
}

async fn receive_audio(track: &Arc<dyn TrackRemote>, peer: PeerId, sinks: &MediaSinks) {
    let mut decoder = match OpusDecoder::new() {
        Ok(decoder) => decoder,
        Err(err) => {
            tracing::warn!(peer, "the browser's audio is ignored: {err}");
            return;
        }
    };
    tracing::info!(peer, "receiving the browser's audio");
    let mut last_seq: Option<u16> = None;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        sinks.audio.packet_received();
        let seq = packet.header.sequence_number;
        let driving = sinks.hub.driver() == Some(peer);
        if let Some(last) = last_seq {
            let gap = seq.wrapping_sub(last);
            // Reordered or repeated: too late to play.
            if gap == 0 || gap > u16::MAX / 2 {
                continue;
            }
            for _ in 1..gap.min(MAX_CONCEALED + 1) {
                if let Ok(pcm) = decoder.conceal() {
                    sinks.audio.heard(peer, driving, pcm);
                }
            }
        }
        last_seq = Some(seq);
        match decoder.decode(&packet.payload) {
            Ok(pcm) => sinks.audio.heard(peer, driving, pcm),
            Err(err) => {
                sinks.audio.decode_failed();
                tracing::debug!(peer, "skipped an audio packet: {err}");
            }
        }
    }
    tracing::info!(peer, "the browser's audio ended");
}

async fn receive_video(track: &Arc<dyn TrackRemote>, peer: PeerId, sinks: &MediaSinks) {
    let decoder = match sinks.video.decoder(peer) {
        Ok(decoder) => decoder,
        Err(err) => {
            tracing::warn!(peer, "the browser's camera is ignored: {err}");
            return;
        }
    };
    tracing::info!(peer, "receiving the browser's camera");
    let mut builder = SampleBuilder::new(128, H264Packet::default(), 90_000);
    let mut last_pli: Option<Instant> = None;
    while let Some(event) = track.poll().await {
        let packet = match event {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnEnded => break,
            _ => continue,
        };
        let now = Instant::now();
        builder.push(now, packet);
        while let Some(sample) = builder.pop(now) {
            decoder.push(sample.data, now);
        }
        if decoder.wants_keyframe() && last_pli.is_none_or(|t| now - t >= PLI_INTERVAL) {
            last_pli = Some(now);
            if let Some(&media_ssrc) = track.ssrcs().await.first() {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                let _ = track.write_rtcp(vec![Box::new(pli)]).await;
            }
        }
    }
    tracing::info!(peer, "the browser's camera ended");
}

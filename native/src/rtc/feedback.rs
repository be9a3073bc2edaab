//! Viewers' keyframe requests (RTCP PLI and FIR), surfaced to the robot.
//!
//! webrtc-rs ends inbound RTCP inside its interceptor chain unless an interceptor
//! marks it for the application. [`KeyframeRequests`] marks the compound packets that
//! carry a Picture Loss Indication or Full Intra Request; the peer's video task then
//! sees them as track events and asks the shared encoder for a keyframe. Every other
//! packet passes through untouched.
//!
//! With congestion control on ([`with_congestion_control`]), webrtc-rs's congestion
//! control interceptor feeds the viewer's transport-wide congestion control feedback to
//! the robot's [`QueueDelayEstimator`] and marks the feedback that changed its estimate;
//! [`EstimateTap`] copies that estimate into the peer's [`BandwidthEstimate`], which
//! the robot reads to set the shared encoder's bitrate.

use super::estimator::QueueDelayEstimator;
use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::interceptor::{CongestionControlBuilder, Slot, TwccSenderBuilder};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The rest of an observing interceptor's `Protocol`: what it read (kept in `read`)
/// goes on, what is written (`write`) passes untouched.
macro_rules! pass_the_rest {
    () => {
        fn poll_read(&mut self) -> Option<Self::Rout> {
            self.read.pop_front()
        }

        fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
            self.write.push_back(msg);
            Ok(())
        }

        fn poll_write(&mut self) -> Option<Self::Wout> {
            self.write.pop_front()
        }
    };
}

/// An `Interceptor` that binds no stream state.
macro_rules! observes_no_streams {
    ($t:ty) => {
        impl Interceptor for $t {
            fn bind_local_stream(&mut self, _info: &StreamInfo) {}
            fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
            fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
            fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
        }
    };
}

/// Where the interceptor sits: it only observes, so any free slot works; this one
/// reads inbound RTCP after the default interceptors.
pub(crate) const SLOT: usize = 14_000;

/// True for a PLI or FIR.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks inbound keyframe requests for delivery to the application.
#[derive(Default)]
pub struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    pass_the_rest!();
}

observes_no_streams!(KeyframeRequests);

/// Where the estimate tap sits: application-ward of the congestion control
/// interceptor (which marks the feedback on the way in), beside [`SLOT`].
const ESTIMATE_SLOT: usize = 14_001;

/// One peer's estimate of what the path to it carries, shared between its interceptor
/// chain and the robot; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct BandwidthEstimate(Arc<AtomicU64>);

impl BandwidthEstimate {
    /// The estimate in kbit/s; `None` before the peer's first feedback changed it.
    pub fn kbps(&self) -> Option<u32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            bps => Some(u32::try_from(bps / 1000).unwrap_or(u32::MAX).max(1)),
        }
    }

    fn set_bps(&self, bps: f64) {
        if bps.is_finite() && bps >= 1.0 {
            self.0.store(bps as u64, Ordering::Relaxed);
        }
    }
}

/// Copies the congestion controller's estimate, as it changes, into a
/// [`BandwidthEstimate`].
pub struct EstimateTap {
    estimate: BandwidthEstimate,
    /// The estimator's starting point: the estimate until it first changes.
    initial_bps: f64,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for EstimateTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.estimate.set_bps(*bits_per_second);
        } else if self.estimate.kbps().is_none() && is_congestion_feedback(&msg) {
            // Feedback arrived and the estimate held where it started.
            self.estimate.set_bps(self.initial_bps);
        }
        self.read.push_back(msg);
        Ok(())
    }

    pass_the_rest!();
}

observes_no_streams!(EstimateTap);

/// True for a transport-wide congestion control report.
fn is_congestion_feedback(msg: &TaggedPacket) -> bool {
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    matches!(&msg.message.packet, Packet::Rtcp(packets)
        if packets.iter().any(|p| p.as_any().is::<TransportLayerCc>()))
}

/// How a sending peer's congestion control starts and where it reports.
#[derive(Debug, Clone)]
pub struct CongestionSettings {
    /// Where the estimate starts, kbit/s (the configured bitrate).
    pub initial_kbps: u32,
    /// The estimate's floor, kbit/s.
    pub min_kbps: u32,
    /// The estimate's ceiling, kbit/s.
    pub max_kbps: u32,
    /// Where the estimate goes.
    pub estimate: BandwidthEstimate,
}

/// Adds send-side congestion control for video to `registry`: transport-wide sequence
/// numbers on what leaves (and the `transport-cc` feedback the viewer is asked for),
/// the [`QueueDelayEstimator`] over the viewer's reports, and the [`EstimateTap`].
///
/// No pacer: the robot sends one frame's packets as they are made, and the estimate
/// lowers the encoder's bitrate instead, so packets never wait in a queue of ours.
pub fn with_congestion_control(
    registry: webrtc::peer_connection::Registry,
    media: &mut MediaEngine,
    settings: &CongestionSettings,
) -> Result<webrtc::peer_connection::Registry, webrtc::error::Error> {
    // The TWCC header extension is registered by the default interceptors (their
    // receiver half); the feedback type is what asks the viewer for reports.
    media.register_feedback(
        RTCPFeedback {
            typ: "transport-cc".to_owned(),
            parameter: String::new(),
        },
        RtpCodecKind::Video,
    );
    let bps = |kbps: u32| f64::from(kbps) * 1000.0;
    let estimator = QueueDelayEstimator::new(
        bps(settings.initial_kbps),
        bps(settings.min_kbps),
        bps(settings.max_kbps.max(settings.min_kbps)),
    );
    Ok(registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(
            Slot::from(ESTIMATE_SLOT),
            EstimateTap {
                estimate: settings.estimate.clone(),
                initial_bps: bps(settings
                    .initial_kbps
                    .clamp(settings.min_kbps, settings.max_kbps.max(settings.min_kbps))),
                read: VecDeque::new(),
                write: VecDeque::new(),
            },
        ))
}

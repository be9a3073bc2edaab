//! What the robot tells every peer by itself: stream figures (with the peer's own
//! video link) and status every second,
//! changes of driver and safety stops with the reason, and the serial link's messages,
//! problems and state.

use super::RobotInner;
use crate::serial::{LinkState, SerialConnection, SerialEvent};
use crate::video::StreamCounters;
use serde_json::json;
use shared_protocol::{StreamStats, Telemetry};
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Every second, sends stream figures and status to every peer.
pub(super) async fn stats(robot: Weak<RobotInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<(Instant, StreamCounters)> = None;
    loop {
        tick.tick().await;
        let Some(robot) = robot.upgrade() else { return };
        let now = Instant::now();
        let counters = robot.stream.counters();
        // The bitrate over the last second; the frame rate over the stream's window,
        // long enough that a skipped frame shows (in `max_gap_ms` above all).
        let kbps = match last {
            Some((t, c)) => {
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                (counters.bytes_encoded - c.bytes_encoded) as f64 * 8.0 / 1000.0 / secs
            }
            None => 0.0,
        };
        last = Some((now, counters));
        let steadiness = robot.stream.steadiness();
        let (width, height) = robot.stream.size();
        let stats = StreamStats {
            viewers: counters.viewers as u32,
            frames_encoded: counters.frames_encoded,
            fps: steadiness.fps,
            frames_skipped: counters.frames_skipped,
            max_gap_ms: steadiness.max_gap.as_secs_f64() * 1000.0,
            bitrate_kbps: kbps,
            width: width as u32,
            height: height as u32,
            encoder: match robot.stream.encoder_name() {
                name if name.is_empty() => robot.stream.source_name(),
                name => format!("{}/{name}", robot.stream.source_name()),
            },
            target_kbps: (counters.target_kbps != 0).then_some(counters.target_kbps),
            sfu: robot
                .config
                .sfu
                .as_ref()
                .map(|config| robot.sfu.status().telemetry(config)),
            ..StreamStats::default()
        };
        // The same stream figures for everyone, with each viewer's own link; each
        // peer's own status after. Both are periodic readings (a change of driver goes
        // out reliably as a notice).
        for peer in robot.registry.list() {
            let mut own = stats.clone();
            if let Some(link) = peer.link_stats() {
                own.link_kbps = link.bandwidth_kbps;
                own.packets_lost = Some(link.packets_lost);
                own.nacks = Some(link.nacks);
                own.rtt_ms = link.rtt_ms;
                own.layer = Some(link.layers.highest());
            }
            let _ = peer.send_latest(&Telemetry::Stats(own));
            let status = Telemetry::Status(robot.hub.status_for(peer.id(), None));
            let _ = peer.send_latest(&status);
        }
    }
}

/// Tells every peer about changes of driver and safety stops, with the reason.
pub(super) async fn notices(robot: Weak<RobotInner>) {
    let Some(mut notices) = robot.upgrade().map(|r| r.hub.notices()) else {
        return;
    };
    loop {
        let notice = match notices.recv().await {
            Ok(notice) => notice,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(robot) = robot.upgrade() else { return };
        for peer in robot.registry.list() {
            let status = robot.hub.status_for(peer.id(), Some(notice.reason.clone()));
            let _ = peer.send(&Telemetry::Status(status));
        }
    }
}

/// The telemetry message for one serial event.
fn serial_event(event: Result<SerialEvent, RecvError>) -> Option<serde_json::Value> {
    Some(match event {
        Ok(SerialEvent::Message(m)) => json!({"type": "serial", "message": m.to_json()}),
        Ok(SerialEvent::Garbled(reason)) => json!({"type": "serial", "error": reason}),
        Err(RecvError::Lagged(n)) => json!({
            "type": "serial",
            "error": format!("{n} serial messages were dropped (telemetry too slow)"),
        }),
        Err(RecvError::Closed) => return None,
    })
}

/// The telemetry message for a link state.
fn serial_state(state: &LinkState) -> serde_json::Value {
    match state {
        LinkState::Disconnected { reason } => {
            json!({"type": "serial", "state": "disconnected", "reason": reason})
        }
        other => json!({"type": "serial", "state": other.word()}),
    }
}

/// Forwards the serial link's messages, problems and state to every peer.
pub(super) async fn serial(robot: Weak<RobotInner>, serial: SerialConnection) {
    let mut events = serial.events();
    let mut state = serial.state();
    loop {
        let msg = tokio::select! {
            event = events.recv() => match serial_event(event) {
                Some(msg) => msg,
                None => return,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow_and_update().clone();
                serial_state(&now)
            }
        };
        let Some(robot) = robot.upgrade() else { return };
        robot.broadcast(&Telemetry::Json(msg));
    }
}

//! Driving through a lossy link, shared by `rtcbot-lossy` (which prints the figures as
//! JSON) and `tests/tests/lossy.rs` (which asserts on them).
//!
//! This machine's kernel has no `netem`, so loss comes from nftables: a new network
//! namespace (`unshare --net`) whose loopback drops a share of UDP packets at random on
//! the input hook ([`namespace_command`]); nothing of the host is touched. In it,
//! [`drive`] drives a robot at 20 Hz with the Rust client while the robot sends a
//! latest-wins reading at 20 Hz back ([`rtcbot::Robot::broadcast_latest`]), and measures
//! both ways: drive states (one-way delay, how many arrive, dead-man stops) and readings
//! (one-way delay, the longest gap between two), plus the ping round trip on the
//! reliable `default` channel for comparison. Robot and client share one clock.

use rtcbot::{Robot, RobotClient};
use serde_json::{json, Value};
use shared_protocol::{Control, DriveState, Ping, Telemetry};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interval of drive states and of the robot's readings (20 Hz).
pub const PERIOD: Duration = Duration::from_millis(50);

/// The nftables ruleset that drops `loss_percent`% of UDP packets at random.
pub fn nft_rules(loss_percent: u32) -> String {
    format!(
        "table inet lossy {{
  chain input {{
    type filter hook input priority 0;
    meta l4proto udp numgen random mod 100 < {loss_percent} drop
  }}
}}"
    )
}

/// `exe args…` inside a new network namespace whose loopback is up and drops
/// `loss_percent`% of UDP at random (the rule is checked before `exe` starts). It needs
/// root, util-linux's `unshare` and Debian's `nft`.
pub fn namespace_command(loss_percent: u32, exe: &Path, args: &[&str]) -> Command {
    let script = format!(
        "set -e; ip link set lo up; printf '%s\\n' '{}' | nft -f -; \
         nft list ruleset | grep -q 'numgen random mod 100 < {loss_percent} drop'; \
         exec \"$0\" \"$@\"",
        nft_rules(loss_percent)
    );
    let mut command = Command::new("unshare");
    command
        .args(["--net", "--", "sh", "-c", &script])
        .arg(exe)
        .args(args);
    command
}

/// What one run through the link measured; delays in milliseconds, sorted.
#[derive(Debug, Default)]
pub struct Figures {
    /// How long it drove.
    pub seconds: f64,
    /// Drive states sent.
    pub states_sent: u64,
    /// Drive states the robot took (one a change it saw).
    pub states_seen: u64,
    /// Client send → robot's drive state updated.
    pub drive_delay_ms: Vec<f64>,
    /// The robot's dead-man stops while the driver kept sending, with when and why.
    pub deadman_stops: Vec<String>,
    /// Readings the robot sent.
    pub readings_sent: u64,
    /// Readings that arrived.
    pub readings_received: u64,
    /// Robot send → client received.
    pub reading_delay_ms: Vec<f64>,
    /// The longest time between two readings arriving.
    pub reading_max_gap_ms: f64,
    /// Ping round trips on the reliable `default` channel.
    pub ping_rtt_ms: Vec<f64>,
    /// Pings with no pong by the end.
    pub pongs_lost: usize,
}

impl Figures {
    /// The figures as JSON (percentiles of the delays).
    pub fn to_json(&self) -> Value {
        let p = |v: &[f64], q: f64| crate::round3(crate::percentile(v, q));
        json!({
            "seconds": self.seconds,
            "drive_states_sent": self.states_sent,
            "drive_states_seen": self.states_seen,
            "drive_delay_ms_p50": p(&self.drive_delay_ms, 0.5),
            "drive_delay_ms_p99": p(&self.drive_delay_ms, 0.99),
            "deadman_stops": self.deadman_stops.len(),
            "readings_sent": self.readings_sent,
            "readings_received": self.readings_received,
            "reading_delay_ms_p50": p(&self.reading_delay_ms, 0.5),
            "reading_delay_ms_p99": p(&self.reading_delay_ms, 0.99),
            "reading_max_gap_ms": crate::round3(self.reading_max_gap_ms),
            "ping_rtt_ms_p50": p(&self.ping_rtt_ms, 0.5),
            "ping_rtt_ms_p99": p(&self.ping_rtt_ms, 0.99),
            "pongs_lost": self.pongs_lost,
        })
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drives `robot` through `client` at 20 Hz for `seconds` (a ping every other state)
/// while the robot broadcasts a latest-wins reading at 20 Hz; the client's drive
/// channel must be open.
pub async fn drive(robot: &Robot, client: &mut RobotClient, seconds: f64) -> Figures {
    let clock = Instant::now();
    let readings_sent = Arc::new(AtomicU64::new(0));
    let readings = {
        let robot = robot.clone();
        let count = readings_sent.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            loop {
                tick.tick().await;
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let sent_us = clock.elapsed().as_micros() as u64;
                let reading = json!({"type": "reading", "n": n, "sent_us": sent_us});
                robot.broadcast_latest(&Telemetry::Json(reading));
            }
        })
    };
    let mut notices = robot.controls().notices();
    let mut drive = robot.controls().drive();
    let mut f = Figures::default();
    let mut tick = tokio::time::interval(PERIOD);
    let mut sent_at = HashMap::new();
    let mut pings = HashMap::new();
    let mut last_reading: Option<Instant> = None;
    let end = Duration::from_secs_f64(seconds);
    while clock.elapsed() < end {
        tokio::select! {
            _ = tick.tick() => {
                f.states_sent += 1;
                let seq = f.states_sent;
                let turn = if seq % 40 < 20 { 0.25 } else { -0.25 };
                let state = DriveState::new(0.5, turn, seq).expect("a valid state");
                sent_at.insert(seq, Instant::now());
                let _ = client.send(&Control::Drive(state)).await;
                if seq % 2 == 0 {
                    pings.insert(seq as i128, Instant::now());
                    let _ = client.send(&Control::Ping(Ping { id: seq as i128, t: 0.0 })).await;
                }
            }
            Ok(()) = drive.changed() => {
                let seq = drive.borrow_and_update().seq;
                if let Some(sent) = sent_at.remove(&seq) {
                    f.states_seen += 1;
                    f.drive_delay_ms.push(millis(sent.elapsed()));
                }
            }
            Ok(notice) = notices.recv() => {
                if notice.stopped {
                    f.deadman_stops.push(format!("{:.1} s: {}", clock.elapsed().as_secs_f64(), notice.reason));
                }
            }
            Some(msg) = client.recv() => match msg {
                Telemetry::Pong(pong) => {
                    if let Some(sent) = pings.remove(&pong.id) {
                        f.ping_rtt_ms.push(millis(sent.elapsed()));
                    }
                }
                Telemetry::Json(v) if v["type"] == "reading" => {
                    let now = Instant::now();
                    let sent_us = v["sent_us"].as_u64().unwrap_or(0);
                    f.reading_delay_ms
                        .push((clock.elapsed().as_micros() as f64 - sent_us as f64) / 1000.0);
                    if let Some(last) = last_reading {
                        f.reading_max_gap_ms = f.reading_max_gap_ms.max(millis(now - last));
                    }
                    last_reading = Some(now);
                    f.readings_received += 1;
                }
                _ => {}
            }
        }
    }
    readings.abort();
    f.seconds = seconds;
    f.readings_sent = readings_sent.load(Ordering::SeqCst);
    f.pongs_lost = pings.len();
    for v in [
        &mut f.drive_delay_ms,
        &mut f.reading_delay_ms,
        &mut f.ping_rtt_ms,
    ] {
        v.sort_by(f64::total_cmp);
    }
    f
}

//! Watching video through a link that narrows, shared by `rtcbot-lossy --narrowing`
//! (which prints the figures as JSON) and `tests/tests/congestion.rs` (which asserts
//! on them).
//!
//! The link is the robot's uplink on the loopback of a network namespace (see
//! [`crate::lossy::namespace_command`]): a token-bucket filter on what the robot sends
//! ([`shape_uplink`]) whose rate [`set_rate`] changes between [`Phase`]s; its queue is
//! deep (seconds), as a 4G modem's is, so a sender that keeps sending more than the
//! link carries sees its packets wait longer and longer. [`watch`] decodes every frame as a browser would,
//! reads the frame's [`Stamp`] and so measures glass-to-glass latency (capture on the
//! robot to decoded picture here; one machine, one clock), and samples the robot's
//! encoder target.
//!
//! Two viewers, one slow: [`shape_viewer`] narrows only what the robot sends to one
//! viewer's port, and a [`Watcher`] per viewer measures what each sees
//! ([`Seen`]: pictures per second, latency).

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtcbot::rtc::ReceivedFrame;
use rtcbot::{Robot, RobotClient};
use serde_json::{json, Value};
use shared_protocol::Stamp;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One stretch of the run at one link rate.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// What it is called in the figures.
    pub name: &'static str,
    /// The link's rate, kbit/s.
    pub rate_kbit: u32,
    /// How long it lasts.
    pub seconds: f64,
}

/// The run: 5 Mbit/s, 800 kbit/s for 20 s, then 5 Mbit/s again; `scale`
/// shortens every phase for a quick local run.
pub fn narrowing_phases(scale: f64) -> [Phase; 3] {
    [
        Phase {
            name: "wide",
            rate_kbit: 5000,
            seconds: 6.0 * scale,
        },
        Phase {
            name: "narrow",
            rate_kbit: 800,
            seconds: 20.0 * scale,
        },
        Phase {
            name: "wide_again",
            rate_kbit: 5000,
            seconds: 12.0 * scale,
        },
    ]
}

/// The robot's one ICE port inside the namespace: what [`shape_uplink`] shapes.
pub const ROBOT_PORT: u16 = 40_000;

fn tc(args: &[&str]) -> Result<(), String> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tc (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Shapes the robot's uplink only: UDP from `port` on the loopback goes through a
/// token bucket at `kbit` kbit/s with a 4 MB queue (tens of seconds at these rates:
/// latency builds instead of packets being dropped, as in a 4G modem), while
/// everything else (the viewer's feedback, signaling) passes at once, as on a real
/// link whose two directions are apart. An HTB root with a u32 filter on the source
/// port; needs root inside the namespace and `tc` (Debian's iproute2).
pub fn shape_uplink(port: u16, kbit: u32) -> Result<(), String> {
    let port = port.to_string();
    shape(kbit, &["match", "ip", "sport", &port, "0xffff"])
}

/// An HTB root whose u32 filter sends UDP matching `matches` through a token bucket
/// at `kbit` kbit/s with a 4 MB queue, everything else past it.
fn shape(kbit: u32, matches: &[&str]) -> Result<(), String> {
    tc(&[
        "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20",
    ])?;
    for (class, rate) in [("1:10", "10gbit"), ("1:20", "10gbit")] {
        tc(&[
            "class", "add", "dev", "lo", "parent", "1:", "classid", class, "htb", "rate", rate,
            "quantum", "60000",
        ])?;
    }
    let rate = format!("{kbit}kbit");
    tc(&[
        "qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf", "rate", &rate,
        "burst", "16kb", "limit", "4mb",
    ])?;
    let mut filter = vec![
        "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
        "match", "ip", "protocol", "17", "0xff",
    ];
    filter.extend_from_slice(matches);
    filter.extend_from_slice(&["flowid", "1:10"]);
    tc(&filter)
}

/// Shapes what goes to one viewer's ICE port `viewer_port` only (the same token
/// bucket and deep queue as [`shape_uplink`]), so the robot's path to that viewer
/// carries `kbit` kbit/s while every other viewer's stays wide.
pub fn shape_viewer(viewer_port: u16, kbit: u32) -> Result<(), String> {
    let port = viewer_port.to_string();
    shape(kbit, &["match", "ip", "dport", &port, "0xffff"])
}

/// Changes the shaped uplink's rate to `kbit` kbit/s, keeping what is queued.
pub fn set_rate(kbit: u32) -> Result<(), String> {
    let rate = format!("{kbit}kbit");
    tc(&[
        "qdisc", "change", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf", "rate", &rate,
        "burst", "16kb", "limit", "4mb",
    ])
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseFigures {
    /// Its name.
    pub name: &'static str,
    /// The link's rate, kbit/s.
    pub rate_kbit: u32,
    /// Glass-to-glass latency of every decoded frame, ms, sorted.
    pub latency_ms: Vec<f64>,
    /// Pictures decoded.
    pub frames: u64,
    /// The encoder's target at the phase's end, kbit/s.
    pub end_target_kbps: u32,
    /// Seconds from the phase's start until the target first came within 10% of the
    /// link's rate or below it (narrowing), or back to 90% of what it was before the
    /// narrowing (widening); `None` if it never did.
    pub adapted_after_s: Option<f64>,
}

/// One sample of the run, every half second.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the start.
    pub t_s: f64,
    /// The link's rate, kbit/s.
    pub rate_kbit: u32,
    /// The encoder's target, kbit/s.
    pub target_kbps: u32,
    /// What the encoder made over the half second, kbit/s.
    pub encoded_kbps: u32,
    /// The worst latency of the frames decoded in the half second, ms.
    pub latency_ms: f64,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Per phase.
    pub phases: Vec<PhaseFigures>,
    /// Every half second.
    pub samples: Vec<Sample>,
    /// Keyframe requests sent because a picture did not decode.
    pub keyframe_requests: u32,
}

impl PhaseFigures {
    /// Its latency percentile `q` (0..=1), ms.
    pub fn latency_p(&self, q: f64) -> f64 {
        crate::percentile(&self.latency_ms, q)
    }
}

impl Trace {
    /// The figures as JSON: per phase latency p50/p95/max, frames, target, time to
    /// adapt.
    pub fn to_json(&self) -> Value {
        let r = crate::round3;
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "phase": p.name,
                    "link_kbit": p.rate_kbit,
                    "frames": p.frames,
                    "latency_ms_p50": r(p.latency_p(0.5)),
                    "latency_ms_p95": r(p.latency_p(0.95)),
                    "latency_ms_max": r(p.latency_ms.last().copied().unwrap_or(f64::NAN)),
                    "target_kbps_at_end": p.end_target_kbps,
                    "adapted_after_s": p.adapted_after_s.map(r),
                })
            })
            .collect();
        json!({"phases": phases, "keyframe_requests": self.keyframe_requests})
    }

    /// The half-second samples as a Markdown table (for `tests/artifacts/`).
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| t (s) | link (kbit/s) | encoder target (kbit/s) | encoded (kbit/s) | worst latency (ms) |\n|---:|---:|---:|---:|---:|\n",
        );
        for s in &self.samples {
            out.push_str(&format!(
                "| {:.1} | {} | {} | {} | {:.0} |\n",
                s.t_s, s.rate_kbit, s.target_kbps, s.encoded_kbps, s.latency_ms
            ));
        }
        out
    }
}

/// The glass-to-glass latency of one access unit, if it decodes to a stamped picture.
fn latency_of(decoder: &mut Decoder, data: &[u8]) -> Option<f64> {
    let picture = decoder.decode(data).ok()??;
    let (w, h) = picture.dimensions();
    let (stride, _, _) = picture.strides();
    let y = picture.y();
    let stamp = Stamp::read(w, h, |x, yy| y[yy * stride + x])?;
    let now = rtcbot::video::now_us();
    Some(now.saturating_sub(stamp.capture_us) as f64 / 1000.0)
}

/// One viewer's video, decoded as a browser would: each picture's glass-to-glass
/// latency from its stamp, and a keyframe request (PLI, at most every 300 ms) when a
/// picture does not decode.
pub struct Watcher {
    video: mpsc::Receiver<ReceivedFrame>,
    decoder: Decoder,
    last_pli: Instant,
    /// Keyframe requests sent.
    pub keyframe_requests: u32,
}

/// What one viewer saw over a stretch of time.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Pictures decoded.
    pub frames: u64,
    /// The stretch, seconds.
    pub seconds: f64,
    /// Each picture's latency, ms, sorted.
    pub latency_ms: Vec<f64>,
}

impl Seen {
    /// Pictures per second.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds.max(1e-3)
    }

    /// Its latency percentile `q` (0..=1), ms.
    pub fn latency_p(&self, q: f64) -> f64 {
        crate::percentile(&self.latency_ms, q)
    }

    /// The figures as JSON.
    pub fn to_json(&self) -> Value {
        let r = crate::round3;
        json!({
            "fps": r(self.fps()),
            "frames": self.frames,
            "latency_ms_p50": r(self.latency_p(0.5)),
            "latency_ms_p95": r(self.latency_p(0.95)),
        })
    }
}

impl Watcher {
    /// Takes `client`'s video (it must have asked for it).
    pub fn new(client: &mut RobotClient) -> Result<Self, String> {
        Ok(Self {
            video: client.take_video().ok_or("the client asked for no video")?,
            decoder: Decoder::new().map_err(|e| format!("openh264 decoder: {e}"))?,
            last_pli: Instant::now(),
            keyframe_requests: 0,
        })
    }

    /// The next frame's latency, ms; `None` when it did not decode to a stamped
    /// picture.
    pub async fn next(&mut self, client: &RobotClient) -> Result<Option<f64>, String> {
        let frame = self.video.recv().await.ok_or("the video ended")?;
        let latency = latency_of(&mut self.decoder, &frame.data);
        if latency.is_none() && self.last_pli.elapsed() > Duration::from_millis(300) {
            self.last_pli = Instant::now();
            self.keyframe_requests += 1;
            let _ = client.request_keyframe().await;
        }
        Ok(latency)
    }

    /// Watches for `seconds`.
    pub async fn watch(&mut self, client: &RobotClient, seconds: f64) -> Result<Seen, String> {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut seen = Seen::default();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            tokio::select! {
                latency = self.next(client) => {
                    if let Some(ms) = latency? {
                        seen.frames += 1;
                        seen.latency_ms.push(ms);
                    }
                }
                _ = tokio::time::sleep(left) => {}
            }
        }
        seen.seconds = start.elapsed().as_secs_f64();
        seen.latency_ms.sort_by(f64::total_cmp);
        Ok(seen)
    }
}

/// Watches `client`'s video through `phases`, setting the link's rate at each
/// phase's start with `set_rate`. The client must have asked for video.
pub async fn watch(
    robot: &Robot,
    client: &mut RobotClient,
    phases: &[Phase],
    set_rate: impl Fn(u32) -> Result<(), String>,
) -> Result<Trace, String> {
    let mut watcher = Watcher::new(client)?;
    let mut trace = Trace::default();
    let start = Instant::now();
    let mut sample_at = start + Duration::from_millis(500);
    let mut worst_in_sample = 0.0f64;
    let mut bytes_at_sample = robot.counters().bytes_encoded;
    // The target before the narrowing, which widening must come back to.
    let mut wide_target = 0u32;
    for (i, phase) in phases.iter().enumerate() {
        set_rate(phase.rate_kbit)?;
        let began = Instant::now();
        let end = began + Duration::from_secs_f64(phase.seconds);
        let mut figures = PhaseFigures {
            name: phase.name,
            rate_kbit: phase.rate_kbit,
            ..PhaseFigures::default()
        };
        let narrowing = i > 0 && phase.rate_kbit < phases[i - 1].rate_kbit;
        while Instant::now() < end {
            let wait = end.min(sample_at) - Instant::now().min(end.min(sample_at));
            tokio::select! {
                latency = watcher.next(client) => {
                    if let Some(ms) = latency? {
                        figures.latency_ms.push(ms);
                        figures.frames += 1;
                        worst_in_sample = worst_in_sample.max(ms);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            let now = Instant::now();
            // No target yet: the configured bitrate holds.
            let target = match robot.counters().target_kbps {
                0 => robot.config().video.bitrate_kbps,
                kbps => kbps,
            };
            if figures.adapted_after_s.is_none() {
                let adapted = if narrowing {
                    u64::from(target) * 10 <= u64::from(phase.rate_kbit) * 11
                } else {
                    wide_target != 0 && u64::from(target) * 10 >= u64::from(wide_target) * 9
                };
                if adapted {
                    figures.adapted_after_s = Some((now - began).as_secs_f64());
                }
            }
            if now >= sample_at {
                let bytes = robot.counters().bytes_encoded;
                let encoded_kbps = ((bytes - bytes_at_sample) * 8 * 2 / 1000) as u32;
                bytes_at_sample = bytes;
                trace.samples.push(Sample {
                    encoded_kbps,
                    t_s: (now - start).as_secs_f64(),
                    rate_kbit: phase.rate_kbit,
                    target_kbps: target,
                    latency_ms: worst_in_sample,
                });
                worst_in_sample = 0.0;
                sample_at += Duration::from_millis(500);
            }
        }
        figures.end_target_kbps = match robot.counters().target_kbps {
            0 => robot.config().video.bitrate_kbps,
            kbps => kbps,
        };
        if !narrowing && i + 1 < phases.len() {
            wide_target = figures.end_target_kbps;
        }
        figures.latency_ms.sort_by(f64::total_cmp);
        trace.phases.push(figures);
    }
    trace.keyframe_requests = watcher.keyframe_requests;
    Ok(trace)
}

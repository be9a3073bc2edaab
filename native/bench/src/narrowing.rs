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

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtcbot::{Robot, RobotClient};
use serde_json::{json, Value};
use shared_protocol::Stamp;
use std::process::Command;
use std::time::{Duration, Instant};

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
    let port = port.to_string();
    tc(&[
        "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
        "match", "ip", "protocol", "17", "0xff", "match", "ip", "sport", &port, "0xffff", "flowid",
        "1:10",
    ])
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

/// Watches `client`'s video through `phases`, setting the link's rate at each
/// phase's start with `set_rate`. The client must have asked for video.
pub async fn watch(
    robot: &Robot,
    client: &mut RobotClient,
    phases: &[Phase],
    set_rate: impl Fn(u32) -> Result<(), String>,
) -> Result<Trace, String> {
    let mut video = client.take_video().ok_or("the client asked for no video")?;
    let mut decoder = Decoder::new().map_err(|e| format!("openh264 decoder: {e}"))?;
    let mut trace = Trace::default();
    let start = Instant::now();
    let mut sample_at = start + Duration::from_millis(500);
    let mut worst_in_sample = 0.0f64;
    let mut last_pli = start;
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
                frame = video.recv() => {
                    let frame = frame.ok_or("the video ended")?;
                    match latency_of(&mut decoder, &frame.data) {
                        Some(ms) => {
                            figures.latency_ms.push(ms);
                            figures.frames += 1;
                            worst_in_sample = worst_in_sample.max(ms);
                        }
                        None if last_pli.elapsed() > Duration::from_millis(300) => {
                            last_pli = Instant::now();
                            trace.keyframe_requests += 1;
                            let _ = client.request_keyframe().await;
                        }
                        None => {}
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
    Ok(trace)
}

//! What the benchmark binaries (`rtcbot-bench`, `rtcbot-hw-bench`, `rtcbot-soak`,
//! `rtcbot-attack`) share, and the end-to-end tests too: the robot as a child
//! process, its CPU time and memory read from `/proc`, offers that never connect, and
//! impaired links: [`lossy`] (random loss) and [`narrowing`] (a rate that narrows).

pub mod lossy;
pub mod narrowing;

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The real `rtcbot-robot` binary from the same target folder, on a free loopback
/// port; killed on drop.
pub struct RobotProcess {
    child: Child,
    /// The robot's `/connect` URL.
    pub url: String,
}

impl RobotProcess {
    /// Starts the robot with `extra` flags and waits until it listens: open, on
    /// plain HTTP and quiet (`--no-auth --no-tls --quiet`), since the benchmarks
    /// measure the robot, not its gate.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?
            .parent()
            .context("bench has no folder")?
            .join("rtcbot-robot");
        let mut child = Command::new(&exe)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ice-udp",
                "127.0.0.1:0",
                "--print-addr",
                "--no-auth",
                "--no-tls",
                "--quiet",
            ])
            .args(extra)
            .env("RUST_LOG", "warn,rtc_ice=error,rtc=error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} (build it first)", exe.display()))?;
        let stdout = child.stdout.take().context("robot stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            bail!("robot printed {line:?} instead of its address");
        };
        Ok(Self {
            url: format!("http://{addr}/connect"),
            child,
        })
    }

    /// The robot's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RobotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// A `/proc/<pid>/status` field in MiB (VmHWM = peak RSS, VmRSS = current).
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p` quantile (0..=1) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Rounds to three decimals for the JSON report.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Reads `--seconds N` (the only flag the benchmarks take), or `default`.
pub fn seconds_arg(default: f64) -> anyhow::Result<f64> {
    number_arg("--seconds", default)
}

/// Reads `FLAG N`, the one flag a benchmark binary takes, or `default`.
pub fn number_arg<T: std::str::FromStr>(flag: &str, default: T) -> anyhow::Result<T> {
    let mut value = default;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg != flag {
            bail!("unknown argument {arg:?} (expected {flag} N)");
        }
        value = args
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{flag} takes a number"))?;
    }
    Ok(value)
}

/// A real offer, stripped of its candidates, from a peer that never answers the
/// robot's ICE checks: the robot answers it and then waits for a connection that never
/// comes. The peer connection is returned so the caller decides how long it lives.
pub async fn dead_end_offer() -> anyhow::Result<(
    shared_protocol::SessionDescription,
    std::sync::Arc<dyn webrtc::peer_connection::PeerConnection>,
)> {
    struct Silent;
    impl webrtc::peer_connection::PeerConnectionEventHandler for Silent {}
    let pc = rtcbot::rtc::connection::build_connection(
        rtcbot::rtc::connection::Side::Offerer,
        &[],
        &["127.0.0.1:0".into()],
        None,
        None,
        std::sync::Arc::new(Silent),
    )
    .await?;
    pc.create_data_channel("default", None).await?;
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = pc.local_description().await.context("no offer")?.sdp;
    let sdp: String = sdp
        .lines()
        .filter(|l| !l.starts_with("a=candidate"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    Ok((shared_protocol::SessionDescription::offer(sdp), pc))
}

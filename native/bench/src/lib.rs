//! What the benchmark binaries (`rtcbot-bench`, `rtcbot-hw-bench`, `rtcbot-soak`,
//! `rtcbot-attack`, `rtcbot-sfu-bench`, `rtcbot-janus`) share, and the end-to-end tests
//! too: the robot as a child process (in a network namespace of its own if need be),
//! its CPU time and memory read from `/proc`, offers that never connect, and impaired
//! links: [`lossy`] (random loss) and [`narrowing`] (a rate that narrows); a Janus of
//! our own ([`janus`]) and network namespaces with a veth ([`namespace`]).

pub mod janus;
pub mod lossy;
pub mod namespace;
pub mod narrowing;

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The real `rtcbot-robot` binary from the same target folder, on a free loopback
/// port; killed on drop.
pub struct RobotProcess {
    child: Child,
    /// The robot's stdin, kept open (the namespace's shell reads its go from it).
    _stdin: Option<std::process::ChildStdin>,
    /// The robot's `/connect` URL.
    pub url: String,
}

impl RobotProcess {
    /// Starts the robot with `extra` flags and waits until it listens: open, on
    /// plain HTTP and quiet (`--no-auth --no-tls --quiet`), since the benchmarks
    /// measure the robot, not its gate.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let mut command = Command::new(robot_exe()?);
        command.args(["--listen", "127.0.0.1:0", "--ice-udp", "127.0.0.1:0"]);
        Self::spawn(command, extra, None)
    }

    /// Starts the robot alone in a new network namespace (`unshare --net`) whose only
    /// link is `link`, one end of a veth pair the caller made in its own namespace:
    /// `link` is moved in, gets `address` (CIDR, e.g. `10.89.0.2/24`) and a default
    /// route via `gateway` (the other end's address), and the robot listens and does
    /// ICE on that address only. Everything the robot sends then leaves through
    /// `link`: [`crate::namespace::tx_bytes`]`(robot.pid(), link)` counts it.
    pub fn start_in_namespace(
        link: &str,
        address: &str,
        gateway: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let ip = address.split('/').next().unwrap_or(address);
        // The shell, in the new namespace, says so and waits for the link before it
        // becomes the robot (same process id).
        let script = format!(
            "set -e; echo namespace; read go; ip link set lo up; ip addr add {address} dev {link}; \
             ip link set {link} up; ip route add default via {gateway}; exec \"$0\" \"$@\""
        );
        let exe = robot_exe()?;
        if !exe.exists() {
            bail!("no {} (build rtcbot-robot first)", exe.display());
        }
        let mut command = Command::new("unshare");
        command
            .args(["--net", "--", "sh", "-c", &script])
            .arg(exe)
            .args([
                "--listen",
                &format!("{ip}:0"),
                "--ice-udp",
                &format!("{ip}:0"),
            ]);
        let link = link.to_owned();
        Self::spawn(
            command,
            extra,
            Some(Box::new(move |pid| {
                let moved = Command::new("ip")
                    .args(["link", "set", &link, "netns", &pid.to_string()])
                    .status()
                    .context("running `ip` (iproute2)")?;
                if !moved.success() {
                    bail!("`ip link set {link} netns {pid}` failed ({moved})");
                }
                Ok(())
            })),
        )
    }

    /// Spawns `command` (the robot, with its listen and ICE flags) with the common
    /// flags and `extra`; `before` runs with the process id before the robot is told
    /// to go (a line on its stdin, which stays open) and read for its address.
    fn spawn(
        mut command: Command,
        extra: &[&str],
        before: Option<Box<dyn FnOnce(u32) -> anyhow::Result<()>>>,
    ) -> anyhow::Result<Self> {
        let mut child = command
            .args(["--print-addr", "--no-auth", "--no-tls", "--quiet"])
            .args(extra)
            .env("RUST_LOG", "warn,rtc_ice=error,rtc=error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {:?} (build rtcbot-robot first)",
                    command.get_program()
                )
            })?;
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take().context("robot stdout")?;
        let mut stdout = BufReader::new(stdout);
        if let Some(before) = before {
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            let ready = match line.trim() {
                "namespace" => before(child.id()),
                _ => Err(anyhow::anyhow!("the robot's shell printed {line:?}")),
            };
            if let Err(e) = ready {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
            use std::io::Write;
            let go = stdin.as_mut().context("robot stdin")?;
            go.write_all(b"go\n")?;
            go.flush()?;
        }
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("robot printed {line:?} instead of its address");
        };
        Ok(Self {
            url: format!("http://{addr}/connect"),
            child,
            _stdin: stdin,
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

/// The `rtcbot-robot` binary next to this one.
fn robot_exe() -> anyhow::Result<std::path::PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .context("bench has no folder")?
        .join("rtcbot-robot"))
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

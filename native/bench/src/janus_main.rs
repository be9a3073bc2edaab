//! `rtcbot-janus`: a Janus of its own for a test that is not written in Rust (the
//! browser test): Debian's `janus` on a generated config ([`rtcbot_bench::janus`]),
//! the VideoRoom plugin over plain HTTP, one room.
//!
//! ```text
//! rtcbot-janus --dir DIR --port PORT --room ROOM [--secret S] --interface IFACE
//!              [--http-ip IP] [--rtp-ports FIRST-LAST] [--publishers N]
//!              [--allow-origin ORIGIN]
//! ```
//!
//! - `--dir DIR`: where the config files and `janus.log` go (created if missing).
//! - `--port PORT`: the HTTP API's port.
//! - `--room ROOM`: the VideoRoom room the config creates (H.264 42e01f and Opus,
//!   2 Mbit/s).
//! - `--secret S`: the room's secret (lets a restarted robot kick its stale publisher).
//! - `--interface IFACE`: the one interface Janus gathers ICE candidates on
//!   (`nat.ice_enforce_list`; Janus never gathers loopback ones), e.g. `rtcbot0` of
//!   the browser test's network namespace.
//! - `--http-ip IP`: the address the API listens on (default 127.0.0.1); a robot in
//!   another namespace needs one it can reach.
//! - `--rtp-ports FIRST-LAST`: Janus's UDP ports (default 20000-20200).
//! - `--publishers N`: publishers the room takes at once (default 3).
//! - `--allow-origin ORIGIN`: answer cross-origin requests from this origin only;
//!   by default the API answers any origin (`Access-Control-Allow-Origin: *`, and
//!   `OPTIONS` preflights), so a page served from elsewhere can call it.
//!
//! Once the API answers it prints exactly one line of JSON on stdout,
//! `{"api":"http://127.0.0.1:PORT/janus","room":ROOM}`, then runs until its stdin
//! closes or it gets SIGTERM or SIGINT, and kills Janus on the way out. If Janus
//! exits by itself it exits with an error and the log's tail on stderr. It needs
//! Debian's `janus` (`apt-get install -y janus`).

use anyhow::Context;
use clap::Parser;
use rtcbot_bench::janus::{JanusOptions, JanusServer};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// The flags (see the module's documentation).
#[derive(Debug, Parser)]
#[command(
    name = "rtcbot-janus",
    about = "Run Debian's Janus with one VideoRoom room on a generated config"
)]
struct Args {
    /// Folder for the config files and janus.log.
    #[arg(long)]
    dir: PathBuf,
    /// The HTTP API's port.
    #[arg(long)]
    port: u16,
    /// The VideoRoom room to create.
    #[arg(long)]
    room: u64,
    /// The room's secret.
    #[arg(long)]
    secret: Option<String>,
    /// The interface Janus gathers ICE candidates on (ice_enforce_list).
    #[arg(long)]
    interface: String,
    /// The address the HTTP API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    http_ip: std::net::IpAddr,
    /// Janus's UDP ports, FIRST-LAST.
    #[arg(long, default_value = "20000-20200", value_parser = port_range)]
    rtp_ports: (u16, u16),
    /// Publishers the room takes at once.
    #[arg(long, default_value_t = 3)]
    publishers: u32,
    /// The only origin allowed to call the API from a page (default: any).
    #[arg(long)]
    allow_origin: Option<String>,
}

fn port_range(s: &str) -> Result<(u16, u16), String> {
    let (first, last) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let first: u16 = first.parse().map_err(|e| format!("{first:?}: {e}"))?;
    let last: u16 = last.parse().map_err(|e| format!("{last:?}: {e}"))?;
    if first > last {
        return Err(format!("{first} is above {last}"));
    }
    Ok((first, last))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut options = JanusOptions::new(&args.dir, &args.interface);
    options.http_ip = args.http_ip.to_string();
    options.port = args.port;
    options.room = args.room;
    options.secret = args.secret;
    options.rtp_ports = args.rtp_ports;
    options.publishers = args.publishers;
    options.allow_origin = args.allow_origin;
    let mut janus = JanusServer::configure(options)?;
    janus.start().await?;
    let host = match args.http_ip {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let ready = serde_json::json!({
        "api": format!("http://{host}:{}/janus", args.port),
        "room": args.room,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(api = %janus.api(), room = args.room, "Janus is up");

    // Stdin's end: a plain thread, since a blocking read cannot be cancelled.
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    // Janus gives no signal of its own when it dies: look every half second.
    let mut check = tokio::time::interval(Duration::from_millis(500));
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = &mut closed => {
                tracing::info!("stdin closed: stopping Janus");
                break;
            }
            _ = term.recv() => {
                tracing::info!("SIGTERM: stopping Janus");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping Janus");
                break;
            }
            _ = check.tick() => {
                if janus.exited() {
                    anyhow::bail!("Janus exited by itself; the end of janus.log:\n{}", janus.log_tail(40));
                }
            }
        }
    }
    janus.kill();
    Ok(())
}

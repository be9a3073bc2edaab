//! `rtcbot-relay-bench`: the relay's figures as JSON. It starts the real
//! `rtcbot-relay` and `rtcbot-robot` binaries (built beside it) and measures:
//!
//! - set-up time (offer to open data channel, the Rust client) through a relay room
//!   vs straight to the robot, on loopback;
//! - offers a second one relay passes to one robot that answers at once (a stand-in
//!   robot on a WebSocket, so the robot's WebRTC work is not what is measured), with
//!   16 browsers POSTing at once;
//! - the relay's RSS with 1,000 idle robots connected, each in its own room;
//! - with two relays sharing rooms through Redis (a `redis-server` of its own; the
//!   figures are left out, with the reason, when there is none): set-up time and
//!   offers a second through relay B to a robot connected to relay A.
//!
//! `cargo build --release -p rtcbot-native -p rtcbot-relay -p rtcbot-bench &&
//! ./target/release/rtcbot-relay-bench`

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use rtcbot::rtc::{ClientOptions, RobotClient};
use rtcbot_bench::{percentile, round3, status_mib, RobotProcess};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The relay binary on a free loopback port; killed on drop.
struct RelayProcess {
    child: Child,
    addr: String,
}

impl RelayProcess {
    fn start(config: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?
            .parent()
            .context("bench has no folder")?
            .join("rtcbot-relay");
        let path =
            std::env::temp_dir().join(format!("rtcbot-relay-bench-{}.toml", std::process::id()));
        std::fs::write(&path, config)?;
        let mut child = Command::new(&exe)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} (build it first)", exe.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("relay stdout")?).read_line(&mut line)?;
        // "rtcbot-relay on http://127.0.0.1:PORT: robots connect to ..."
        let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(": ").next())
            .map(str::to_owned)
        else {
            bail!("the relay printed {line:?} instead of its address");
        };
        Ok(Self { child, addr })
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn setups(url: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let client = RobotClient::connect(
            url,
            ClientOptions {
                video: false,
                ..ClientOptions::default()
            },
        )
        .await?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        client.close().await;
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

async fn room_status(addr: &str, room: &str) -> anyhow::Result<bool> {
    let status: serde_json::Value = reqwest::get(format!("http://{addr}/{room}/status"))
        .await?
        .json()
        .await?;
    Ok(status["robot"] == true)
}

/// Offers a second POSTed to the relay at `addr` for a robot that answers at once,
/// connected to room `room` of the relay at `robot_addr`.
async fn offer_rate(robot_addr: &str, addr: &str, room: &str, seconds: f64) -> anyhow::Result<f64> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{robot_addr}/{room}")).await?;
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_text() {
                let answer = r#"{"type":"answer","sdp":"v=0"}"#;
                if socket.send(Message::Text(answer.into())).await.is_err() {
                    return;
                }
            }
        }
    });
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let posters: Vec<_> = (0..16)
        .map(|_| {
            let (http, url) = (http.clone(), format!("http://{addr}/{room}"));
            tokio::spawn(async move {
                let mut answered = 0u64;
                while Instant::now() < deadline {
                    let response = http
                        .post(&url)
                        .body(r#"{"type":"offer","sdp":"v=0"}"#)
                        .send()
                        .await;
                    if response.is_ok_and(|r| r.status().is_success()) {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    let mut total = 0;
    for poster in posters {
        total += poster.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Waits until relay `addr` says room `room` has a robot (here or on another relay).
async fn room_taken(addr: &str, room: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !room_status(addr, room).await? {
        if Instant::now() > deadline {
            bail!("no robot in room {room} on {addr} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The settings every relay of the bench runs with.
const FAST: &str = "offers_per_second = 10000.0\noffer_burst = 10000\noffer_queue = 64\n\
                    offers_per_address_per_minute = 10000000\noffer_address_burst = 10000\n";

/// Two relays sharing rooms through a `redis-server` of their own, a robot on A:
/// set-up time and offers a second through B.
async fn cross_relay() -> anyhow::Result<serde_json::Value> {
    let redis = rtcbot_relay::testing::RedisServer::start(0)?;
    let config = format!("{FAST}redis_url = \"{}\"\n", redis.url());
    let a = RelayProcess::start(&config)?;
    let b = RelayProcess::start(&config)?;
    let _robot = RobotProcess::start(&["--relay", &format!("ws://{}/cross", a.addr)])?;
    room_taken(&b.addr, "cross").await?;
    let setups = setups(&format!("http://{}/cross", b.addr), 20).await?;
    let rate = offer_rate(&a.addr, &b.addr, "fast-cross", 3.0).await?;
    Ok(json!({
        "setup_ms_through_another_relay": figures(&setups),
        "offers_per_second_through_another_relay": rate.round(),
    }))
}

fn figures(s: &[f64]) -> serde_json::Value {
    json!({"p50": round3(percentile(s, 0.5)), "max": round3(*s.last().unwrap_or(&f64::NAN)), "n": s.len()})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let relay = RelayProcess::start(FAST)?;
    let addr = relay.addr.clone();
    let robot = RobotProcess::start(&["--relay", &format!("ws://{addr}/bench")])?;
    room_taken(&addr, "bench").await?;
    let direct = setups(&robot.url, 20).await?;
    let relayed = setups(&format!("http://{addr}/bench"), 20).await?;
    let rate = offer_rate(&addr, &addr, "fast", 3.0).await?;

    let pid = relay.child.id();
    let before = status_mib(pid, "VmRSS:");
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/idle-{i}")).await?;
        idle.push(socket);
    }
    while !room_status(&addr, "idle-999").await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = status_mib(pid, "VmRSS:");
    let report = json!({
        "setup_ms_direct": figures(&direct),
        "setup_ms_through_relay": figures(&relayed),
        "offers_per_second_one_relay": rate.round(),
        "relay_rss_mib_idle": round3(before),
        "relay_rss_mib_with_1000_idle_robots": round3(after),
        "relay_kib_per_idle_robot": round3((after - before) * 1024.0 / 1000.0),
        "cross_relay_redis": cross_relay()
            .await
            .unwrap_or_else(|e| json!({ "skipped": format!("{e:#}") })),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    drop(idle);
    Ok(())
}

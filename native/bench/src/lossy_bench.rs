//! `rtcbot-lossy`: drives a robot through 5% random UDP loss and prints the figures as
//! JSON: drive-state delay (p50/p99) and how many arrive, dead-man stops, the robot's
//! latest-wins readings (delay p50/p99, longest gap) and the ping round trip on the
//! reliable channel (see `rtcbot_bench::lossy`).
//!
//! It runs itself again in a new network namespace with the nftables loss rule, so it
//! needs root, `unshare` and `nft`; the robot runs in this process (the library, test
//! pattern, loopback ICE), as a robot program would.
//!
//! With `--narrowing`, instead: the video through a link that narrows (5 Mbit/s,
//! 800 kbit/s for 20 s, 5 Mbit/s; `rtcbot_bench::narrowing`), with congestion control
//! and without: latency p50/p95 per phase, time to adapt down and back up, and the
//! half-second trace as a Markdown table on stderr.
//!
//! `cargo run --release -p rtcbot-bench --bin rtcbot-lossy [-- --seconds 60 | --narrowing]`

use anyhow::{bail, Context};
use rtcbot::{ClientOptions, Config, Robot, RobotClient};
use rtcbot_bench::lossy::{self, namespace_command};
use rtcbot_bench::narrowing;
use serde_json::json;
use std::time::Duration;

/// Set in the run inside the namespace.
const INNER: &str = "RTCBOT_LOSSY_BENCH_INNER";
const LOSS_PERCENT: u32 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let narrowing = std::env::args().any(|a| a == "--narrowing");
    let seconds = if narrowing {
        0.0
    } else {
        rtcbot_bench::seconds_arg(30.0)?
    };
    if std::env::var_os(INNER).is_none() {
        let exe = std::env::current_exe()?;
        let arg = seconds.to_string();
        let args: &[&str] = if narrowing {
            &["--narrowing"]
        } else {
            &["--seconds", &arg]
        };
        let loss = if narrowing { 0 } else { LOSS_PERCENT };
        let status = namespace_command(loss, &exe, args)
            .env(INNER, "1")
            .status()
            .context("running unshare (util-linux)")?;
        if !status.success() {
            bail!("the run in the lossy namespace failed ({status}); it needs root, `unshare` and `nft`");
        }
        return Ok(());
    }
    if narrowing {
        return narrowing_run().await;
    }
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.webrtc.ice_udp = vec!["127.0.0.1:0".into()];
    config.video.camera = "test-pattern".parse().map_err(anyhow::Error::msg)?;
    let robot = Robot::start(config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/connect", listener.local_addr()?);
    tokio::spawn(rtcbot::serve(
        listener,
        robot.clone(),
        std::future::pending(),
    ));
    let options = ClientOptions {
        video: false,
        ..ClientOptions::default()
    };
    let mut client = RobotClient::connect(&url, options).await?;
    if !client.wait_drive_channel(Duration::from_secs(20)).await {
        bail!("the drive channel did not open through the loss");
    }
    let figures = lossy::drive(&robot, &mut client, seconds).await;
    client.close().await;
    let report = json!({
        "loss_percent": LOSS_PERCENT,
        "rate_hz": 1000 / lossy::PERIOD.as_millis(),
        "lossy_link": figures.to_json(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The narrowing-link run, congestion control on then off, inside the namespace.
async fn narrowing_run() -> anyhow::Result<()> {
    let ip = std::process::Command::new("ip")
        .args(["link", "set", "lo", "mtu", "1500"])
        .status()?;
    if !ip.success() {
        bail!("ip link set lo mtu 1500 failed");
    }
    narrowing::shape_uplink(narrowing::ROBOT_PORT, 5000).map_err(anyhow::Error::msg)?;
    let mut runs = serde_json::Map::new();
    for congestion_control in [true, false] {
        narrowing::set_rate(5000).map_err(anyhow::Error::msg)?;
        let mut config = Config {
            listen: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.webrtc.ice_udp = vec![format!("127.0.0.1:{}", narrowing::ROBOT_PORT)];
        config.video.congestion_control = congestion_control;
        let noisy = rtcbot::video::TestPattern::new(640, 480)?.with_noise(6);
        let robot = Robot::builder(config).video(noisy).start()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/connect", listener.local_addr()?);
        let server = tokio::spawn(rtcbot::serve(
            listener,
            robot.clone(),
            std::future::pending(),
        ));
        let options = ClientOptions {
            video: true,
            ..ClientOptions::default()
        };
        let mut client = RobotClient::connect(&url, options).await?;
        let phases = narrowing::narrowing_phases(1.0);
        let trace = narrowing::watch(&robot, &mut client, &phases, narrowing::set_rate)
            .await
            .map_err(anyhow::Error::msg)?;
        client.close().await;
        robot.shutdown().await;
        server.abort();
        let name = if congestion_control {
            "congestion_control_on"
        } else {
            "congestion_control_off"
        };
        eprintln!("## {name}\n\n{}", trace.table());
        runs.insert(name.into(), trace.to_json());
    }
    let report = json!({"narrowing_link": runs});
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

//! `rtcbot-lossy`: drives a robot through 5% random UDP loss and prints the figures as
//! JSON: drive-state delay (p50/p99) and how many arrive, dead-man stops, the robot's
//! latest-wins readings (delay p50/p99, longest gap) and the ping round trip on the
//! reliable channel (see `rtcbot_bench::lossy`).
//!
//! It runs itself again in a new network namespace with the nftables loss rule, so it
//! needs root, `unshare` and `nft`; the robot runs in this process (the library, test
//! pattern, loopback ICE), as a robot program would.
//!
//! `cargo run --release -p rtcbot-bench --bin rtcbot-lossy [-- --seconds 60]`

use anyhow::{bail, Context};
use rtcbot::{ClientOptions, Config, Robot, RobotClient};
use rtcbot_bench::lossy::{self, namespace_command};
use serde_json::json;
use std::time::Duration;

/// Set in the run inside the namespace.
const INNER: &str = "RTCBOT_LOSSY_BENCH_INNER";
const LOSS_PERCENT: u32 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = rtcbot_bench::seconds_arg(30.0)?;
    if std::env::var_os(INNER).is_none() {
        let exe = std::env::current_exe()?;
        let arg = seconds.to_string();
        let status = namespace_command(LOSS_PERCENT, &exe, &["--seconds", &arg])
            .env(INNER, "1")
            .status()
            .context("running unshare (util-linux)")?;
        if !status.success() {
            bail!("the run in the lossy namespace failed ({status}); it needs root, `unshare` and `nft`");
        }
        return Ok(());
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

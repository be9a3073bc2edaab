//! `rtcbot-soak`: connect / first video frame / close, over and over, against the real
//! `rtcbot-robot` binary, then prints one JSON object: the robot's RSS, threads,
//! tokio tasks and open file descriptors (its `/health` `process` figures) after the
//! first 100 cycles and at the end, and the change in RSS.
//!
//! `cargo build --release -p rtcbot-native -p rtcbot-bench && ./target/release/rtcbot-soak [--cycles 1000]`

use anyhow::{bail, Context};
use rtcbot::{ClientOptions, RobotClient};
use rtcbot_bench::RobotProcess;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Cycles after which the baseline is read.
const BASELINE_AT: usize = 100;

fn cycles_arg() -> anyhow::Result<usize> {
    let cycles = rtcbot_bench::number_arg("--cycles", 1000)?;
    if cycles <= BASELINE_AT {
        bail!("--cycles must be more than {BASELINE_AT}");
    }
    Ok(cycles)
}

/// The robot's `/health`, once no peer is left (up to 10 s).
async fn settled_health(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = http.get(url).send().await?.json().await?;
        if health["peers"] == 0 || Instant::now() > deadline {
            // Let closed peers' tasks and sockets finish going away.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(http.get(url).send().await?.json().await?);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cycles = cycles_arg()?;
    let robot = RobotProcess::start(&[])?;
    let health_url = robot.url.replace("/connect", "/health");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut baseline = Value::Null;
    let mut first_frame_ms = Vec::with_capacity(cycles);
    for cycle in 1..=cycles {
        let t0 = Instant::now();
        let options = ClientOptions {
            video: true,
            ..ClientOptions::default()
        };
        let mut client = RobotClient::connect(&robot.url, options).await?;
        let mut video = client.take_video().context("no video")?;
        tokio::time::timeout(Duration::from_secs(10), video.recv())
            .await
            .context("no video frame within 10 s")?
            .context("video ended")?;
        first_frame_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        client.close().await;
        drop(client);
        // The robot must have let the peer go before the next one (32 peers at most).
        settled_peers(&http, &health_url).await?;
        if cycle == BASELINE_AT {
            baseline = settled_health(&http, &health_url).await?["process"].clone();
        }
    }
    let end = settled_health(&http, &health_url).await?["process"].clone();
    first_frame_ms.sort_by(f64::total_cmp);
    let rss = |v: &Value| v["rss_kib"].as_f64().unwrap_or(f64::NAN);
    let out = json!({
        "cycles": cycles,
        "seconds": rtcbot_bench::round3(started.elapsed().as_secs_f64()),
        "connect_to_first_frame_ms": {
            "p50": rtcbot_bench::round3(rtcbot_bench::percentile(&first_frame_ms, 0.5)),
            "p99": rtcbot_bench::round3(rtcbot_bench::percentile(&first_frame_ms, 0.99)),
        },
        "after_100": baseline,
        "at_end": end,
        "rss_change_percent": rtcbot_bench::round3((rss(&end) / rss(&baseline) - 1.0) * 100.0),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn settled_peers(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let health: Value = http.get(url).send().await?.json().await?;
        if health["peers"] == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("the robot still holds a closed peer after 10 s")
}

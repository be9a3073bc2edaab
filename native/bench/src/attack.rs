//! `rtcbot-attack`: a driver's control round trip while the robot is attacked over
//! HTTP, against the real `rtcbot-robot` binary. Prints one JSON object: the driver's
//! ping round trip (p50/p99/max) before and during the attack, what the attack got
//! back, and the robot's RSS before, during and after.
//!
//! The attack, all at once: 1,000 malformed offers from 127.0.0.2, 100 offers that
//! never connect from 100 addresses (127.0.1.1 to 127.0.1.100), and 50 `/connect`
//! bodies that never finish.
//!
//! `cargo build --release -p rtcbot-native -p rtcbot-bench && ./target/release/rtcbot-attack`

use rtcbot::{ClientOptions, RobotClient};
use rtcbot_bench::{percentile, round3, status_mib, RobotProcess};
use serde_json::json;
use shared_protocol::{Control, Ping, SessionDescription, Telemetry};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Sequential pings for `span`; sorted round trips in milliseconds.
async fn ping_for(
    client: &mut RobotClient,
    span: Duration,
    next_id: &mut i128,
) -> anyhow::Result<Vec<f64>> {
    let mut rtts = Vec::new();
    let started = Instant::now();
    while started.elapsed() < span {
        *next_id += 1;
        let id = *next_id;
        let sent = Instant::now();
        client.send(&Control::Ping(Ping { id, t: 0.0 })).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
                Ok(Some(Telemetry::Pong(p))) if p.id == id => break,
                Ok(Some(_)) => {}
                Ok(None) => anyhow::bail!("the driver's channel closed"),
                Err(_) => anyhow::bail!("no pong within 5 s"),
            }
        }
        rtts.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

fn figures(rtts: &[f64]) -> serde_json::Value {
    json!({
        "p50": round3(percentile(rtts, 0.5)),
        "p99": round3(percentile(rtts, 0.99)),
        "max": round3(*rtts.last().unwrap_or(&f64::NAN)),
        "n": rtts.len(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let robot = RobotProcess::start(&[])?;
    let addr: std::net::SocketAddr = robot
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/connect")
        .parse()?;
    let mut driver = RobotClient::connect(
        &robot.url,
        ClientOptions {
            video: false,
            ..ClientOptions::default()
        },
    )
    .await?;
    let mut id = 0;
    ping_for(&mut driver, Duration::from_millis(500), &mut id).await?; // warm-up
    let quiet = ping_for(&mut driver, Duration::from_secs(2), &mut id).await?;
    let rss_before = status_mib(robot.pid(), "VmRSS:");

    let offers: Vec<SessionDescription> = {
        let mut v = Vec::new();
        for _ in 0..100 {
            let (offer, pc) = rtcbot_bench::dead_end_offer().await?;
            let _ = pc.close().await;
            v.push(offer);
        }
        v
    };
    let url = robot.url.clone();
    let attack = tokio::spawn(async move {
        let mut answers = BTreeMap::<String, BTreeMap<u16, usize>>::new();
        let mut slow = Vec::new();
        for _ in 0..50 {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 0).into())?;
            let mut s = socket.connect(addr).await?;
            s.write_all(b"POST /connect HTTP/1.1\r\nhost: robot\r\ncontent-length: 1000\r\n\r\n{")
                .await?;
            slow.push(s);
        }
        let stranger = reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
            .build()?;
        let mut posts = tokio::task::JoinSet::new();
        for (i, offer) in offers.into_iter().enumerate() {
            let client = reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + i as u8)))
                .build()?;
            let url = url.clone();
            posts.spawn(async move {
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(offer.to_json())
                    .send()
                    .await
            });
        }
        for i in 0..1000u32 {
            let body = match i % 4 {
                0 => "not json".to_owned(),
                1 => r#"{"type":"offer","sdp":"garbage"}"#.to_owned(),
                2 => r#"{"type":"answer","sdp":"v=0"}"#.to_owned(),
                _ => "x".repeat(70 * 1024),
            };
            let status = stranger
                .post(&url)
                .body(body)
                .send()
                .await?
                .status()
                .as_u16();
            *answers
                .entry("malformed".into())
                .or_default()
                .entry(status)
                .or_default() += 1;
        }
        while let Some(r) = posts.join_next().await {
            let status = r??.status().as_u16();
            *answers
                .entry("never_connecting".into())
                .or_default()
                .entry(status)
                .or_default() += 1;
        }
        anyhow::Ok((answers, slow))
    });
    let mut during = Vec::new();
    let mut rss_during: f64 = 0.0;
    while !attack.is_finished() {
        during.extend(ping_for(&mut driver, Duration::from_millis(200), &mut id).await?);
        rss_during = rss_during.max(status_mib(robot.pid(), "VmRSS:"));
    }
    let (answers, slow) = attack.await??;
    during.sort_by(f64::total_cmp);
    drop(slow);
    // The never-connecting peers time out after 15 s; then the robot should be back.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let rss_after = status_mib(robot.pid(), "VmRSS:");
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "driver_ping_ms_quiet": figures(&quiet),
            "driver_ping_ms_during_attack": figures(&during),
            "answers": answers,
            "robot_rss_mib": {"before": round3(rss_before), "peak_during": round3(rss_during), "after": round3(rss_after)},
        }))?
    );
    driver.close().await;
    Ok(())
}

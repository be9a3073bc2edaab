//! `rtcbot-sfu-bench`: what a Janus SFU saves the robot, as one JSON object.
//!
//! `cargo build --release -p rtcbot-native --bin rtcbot-robot && cargo run --release
//! -p rtcbot-bench --bin rtcbot-sfu-bench [-- --seconds 5]` (root; Debian's `janus`,
//! util-linux's `unshare`, iproute2's `ip`).
//!
//! It runs itself again inside a new network namespace (`unshare --net`), where it
//! starts the real `rtcbot-robot` (the 640x480 test pattern with a camera's sensor
//! noise, `test-pattern:noisy`, at 30 fps, the robot's default bitrate and congestion
//! control, no sound) in a namespace of its own, linked to this
//! one by a veth pair: the robot at 10.89.N.2 on `rbNr`, this side 10.89.N.1 on `rbN`.
//! Janus ([`rtcbot_bench::janus`]: API on 10.89.1.1:18089, room 4321) gathers on `rb1`
//! (it gathers no loopback candidates, and it only talks ICE through the interface it
//! gathered on), and the viewers use 10.89.N.1 too. Then, for each case, it connects the
//! viewers, waits until each has a frame, lets a second pass, and measures over a
//! window (`--seconds`, 5 by default):
//!
//! - **through Janus**, 1, 10 and 50 subscribers ([`rtcbot::sfu::JanusViewer`]) of the
//!   robot publishing its one stream to the room (`[sfu]` in a `--config` file);
//! - **direct**, 1 and 10 viewers ([`rtcbot::RobotClient`]) of a robot without `[sfu]`,
//!   with webrtc-rs's default ICE timer (as browsers pace keep-alives).
//!
//! Figures per case:
//!
//! - robot CPU: utime + stime of the robot process (`/proc/<pid>/stat`) over the
//!   window, % of one core; Janus's and this process's (the viewers') CPU alike;
//! - robot upload: the robot runs alone in a network namespace of its own whose only
//!   link is the veth to the namespace of Janus and the viewers, so the bytes sent on
//!   that link
//!   (`/proc/<robot pid>/net/dev`, transmit bytes) are every byte the robot sends:
//!   RTP, RTCP, STUN, DTLS, SCTP and HTTP, with their Ethernet, IP and UDP/TCP headers.
//!   Through Janus, the robot's own count of the H.264 it wrote to Janus (`/health`,
//!   `sfu.video_bytes`) is given too;
//! - frames per second received by each viewer (min, mean, max over the viewers) and
//!   the bytes they received (H.264 access units);
//! - glass-to-glass latency: the test pattern stamps each frame with its capture time
//!   (`shared_protocol::Stamp`, wall clock); one viewer per case (the first) decodes
//!   every frame it gets with openh264 and takes decoded-time minus capture-time (same
//!   machine, same clock), p50 and p99. The other viewers receive and count whole
//!   frames without decoding: two cores cannot decode 50 streams at 30 fps (nor 10
//!   without stealing the CPU being measured), and the same method in every case
//!   keeps the cases comparable.

use anyhow::{bail, Context};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtcbot::rtc::ReceivedFrame;
use rtcbot::sfu::JanusViewer;
use rtcbot::{ClientOptions, RobotClient};
use rtcbot_bench::janus::{JanusOptions, JanusServer};
use rtcbot_bench::namespace;
use rtcbot_bench::{cpu_seconds, percentile, round3, RobotProcess};
use serde_json::{json, Value};
use shared_protocol::Stamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Set in the re-run inside the namespace.
const INNER: &str = "RTCBOT_SFU_BENCH_INNER";
const PORT: u16 = 18089;
const ROOM: u64 = 4321;
const SECRET: &str = "bench-secret";
const FEED: u64 = 7;
/// How long a step (a connection, a first frame, publishing) may take.
const WAIT: Duration = Duration::from_secs(30);

/// One viewer's counts, shared with the task that drains its frames.
#[derive(Default)]
struct Counts {
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// The first viewer's decoded latencies: (when decoded, milliseconds).
type Latencies = Arc<Mutex<Vec<(Instant, f64)>>>;

/// Drains `video`: counts frames and bytes; with `latencies`, decodes each frame on a
/// thread of its own and records capture → decoded.
fn drain(mut video: mpsc::Receiver<ReceivedFrame>, latencies: Option<Latencies>) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let counted = counts.clone();
    let count = move |frame: &ReceivedFrame| {
        counted.frames.fetch_add(1, Ordering::Relaxed);
        counted
            .bytes
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
    };
    match latencies {
        None => {
            tokio::spawn(async move {
                while let Some(frame) = video.recv().await {
                    count(&frame);
                }
            });
        }
        Some(latencies) => {
            std::thread::spawn(move || {
                let Ok(mut decoder) = Decoder::new() else {
                    return;
                };
                while let Some(frame) = video.blocking_recv() {
                    count(&frame);
                    let Ok(Some(picture)) = decoder.decode(&frame.data) else {
                        continue;
                    };
                    let (w, h) = picture.dimensions();
                    let (stride, _, _) = picture.strides();
                    let y = picture.y();
                    let Some(stamp) = Stamp::read(w, h, |x, yy| y[yy * stride + x]) else {
                        continue;
                    };
                    let now_us = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros() as u64);
                    let ms = now_us.saturating_sub(stamp.capture_us) as f64 / 1000.0;
                    latencies.lock().unwrap().push((Instant::now(), ms));
                }
            });
        }
    }
    counts
}

/// What one case measures, before and after the window.
struct Sample {
    at: Instant,
    robot_cpu: f64,
    janus_cpu: f64,
    own_cpu: f64,
    robot_tx: u64,
    frames: Vec<u64>,
    bytes: Vec<u64>,
    sfu_video_bytes: Option<u64>,
}

struct Setup<'a> {
    robot: &'a RobotProcess,
    /// The robot's link, in its namespace.
    link: &'a str,
    /// This side's address on the robot's link: Janus's and the viewers'.
    host: &'a str,
    janus: Option<&'a JanusServer>,
}

async fn sample(setup: &Setup<'_>, counts: &[Arc<Counts>], sfu: bool) -> anyhow::Result<Sample> {
    let sfu_video_bytes = match sfu {
        true => Some(sfu_status(setup.robot).await?.1),
        false => None,
    };
    Ok(Sample {
        at: Instant::now(),
        robot_cpu: cpu_seconds(setup.robot.pid()),
        janus_cpu: setup
            .janus
            .and_then(JanusServer::pid)
            .map_or(0.0, cpu_seconds),
        own_cpu: cpu_seconds(std::process::id()),
        robot_tx: namespace::tx_bytes(setup.robot.pid(), setup.link)
            .context("the robot's link has no counters")?,
        frames: counts
            .iter()
            .map(|c| c.frames.load(Ordering::Relaxed))
            .collect(),
        bytes: counts
            .iter()
            .map(|c| c.bytes.load(Ordering::Relaxed))
            .collect(),
        sfu_video_bytes,
    })
}

/// The robot's `/health` `sfu` state and video bytes.
async fn sfu_status(robot: &RobotProcess) -> anyhow::Result<(String, u64)> {
    let url = robot.url.replace("/connect", "/health");
    let health: Value = reqwest::get(&url).await?.json().await?;
    let sfu = &health["sfu"];
    Ok((
        sfu["state"].as_str().unwrap_or("").to_owned(),
        sfu["video_bytes"].as_u64().unwrap_or(0),
    ))
}

/// Waits until every viewer has a frame, then a second more; then measures over
/// `seconds`.
async fn measure(
    setup: &Setup<'_>,
    counts: &[Arc<Counts>],
    latencies: &Latencies,
    seconds: f64,
    sfu: bool,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    while counts.iter().any(|c| c.frames.load(Ordering::Relaxed) == 0) {
        if started.elapsed() > WAIT {
            let waiting = counts
                .iter()
                .filter(|c| c.frames.load(Ordering::Relaxed) == 0)
                .count();
            bail!("{waiting} viewers got no frame in {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling counters
    }
    let first_frames_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up: pacing, rate control
    let a = sample(setup, counts, sfu).await?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await; // the window
    let b = sample(setup, counts, sfu).await?;
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let per_second = |x: f64| x / secs;
    let fps: Vec<f64> = (0..counts.len())
        .map(|i| per_second((b.frames[i] - a.frames[i]) as f64))
        .collect();
    let kbps: Vec<f64> = (0..counts.len())
        .map(|i| per_second((b.bytes[i] - a.bytes[i]) as f64) * 8.0 / 1000.0)
        .collect();
    let mut ms: Vec<f64> = latencies
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t >= a.at && *t <= b.at)
        .map(|(_, ms)| *ms)
        .collect();
    ms.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mut figures = json!({
        "viewers": counts.len(),
        "robot_cpu_percent_of_one_core": round3(per_second(b.robot_cpu - a.robot_cpu) * 100.0),
        "robot_upload_kbit_per_s": round3(per_second((b.robot_tx - a.robot_tx) as f64) * 8.0 / 1000.0),
        "viewer_fps": {"min": round3(min(&fps)), "mean": round3(mean(&fps)), "max": round3(max(&fps))},
        "viewer_video_kbit_per_s_mean": round3(mean(&kbps)),
        "glass_to_glass_ms": {
            "p50": round3(percentile(&ms, 0.5)),
            "p99": round3(percentile(&ms, 0.99)),
            "frames": ms.len(),
        },
        "viewers_cpu_percent_of_one_core": round3(per_second(b.own_cpu - a.own_cpu) * 100.0),
        "seconds_to_every_viewers_first_frame": round3(first_frames_s),
        "window_s": round3(secs),
    });
    if let (Some(x), Some(y)) = (a.sfu_video_bytes, b.sfu_video_bytes) {
        figures["janus_cpu_percent_of_one_core"] =
            json!(round3(per_second(b.janus_cpu - a.janus_cpu) * 100.0));
        figures["robot_h264_to_janus_kbit_per_s"] =
            json!(round3(per_second((y - x) as f64) * 8.0 / 1000.0));
    }
    Ok(figures)
}

/// A new veth pair for robot number `n`: `rbN` here (10.89.N.1/24), `rbNr` for the
/// robot's namespace (10.89.N.2/24). Returns `rbN`, the robot's link, its address
/// and this side's address.
fn robot_link(n: u32) -> anyhow::Result<(String, String, String, String)> {
    let (here, there) = (format!("rb{n}"), format!("rb{n}r"));
    let script = format!(
        "set -e; ip link add {here} type veth peer name {there}; \
         ip addr add 10.89.{n}.1/24 dev {here}; ip link set {here} up"
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()?;
    if !status.success() {
        bail!("making the robot's veth {here} failed ({status})");
    }
    Ok((
        here,
        there,
        format!("10.89.{n}.2/24"),
        format!("10.89.{n}.1"),
    ))
}

/// Subscribes to the robot's feed. Janus takes the feed a moment after the robot
/// says it publishes (once it has set up the media on its side) and answers "No such
/// feed" until then, with no event to wait for: the subscription is tried again.
async fn subscribe(api: &str, ice: &[String]) -> Result<JanusViewer, rtcbot::sfu::SfuError> {
    loop {
        match JanusViewer::watch(api, ROOM, FEED, None, ice).await {
            Err(e) if e.to_string().contains("No such feed") => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            done => return done,
        }
    }
}

async fn through_janus(setup: &Setup<'_>, viewers: usize, seconds: f64) -> anyhow::Result<Value> {
    let ice = [format!("{}:0", setup.host)];
    let api = setup.janus.context("no Janus")?.api();
    let latencies = Latencies::default();
    let mut subscribers = Vec::new();
    let mut counts = Vec::new();
    // Ten at a time: Janus answers each subscription with an offer to answer.
    for batch in (0..viewers).collect::<Vec<_>>().chunks(10) {
        let joins = batch
            .iter()
            .map(|_| tokio::time::timeout(WAIT, subscribe(&api, &ice)));
        for joined in futures_util::future::join_all(joins).await {
            let mut viewer = joined
                .context("a subscription took too long")?
                .context("subscribing through Janus")?;
            let video = viewer.take_video().context("no video")?;
            let decode = counts.is_empty().then(|| latencies.clone());
            counts.push(drain(video, decode));
            subscribers.push(viewer);
        }
    }
    let figures = measure(setup, &counts, &latencies, seconds, true).await;
    for viewer in &subscribers {
        viewer.close().await;
    }
    figures
}

async fn direct(setup: &Setup<'_>, viewers: usize, seconds: f64) -> anyhow::Result<Value> {
    let latencies = Latencies::default();
    let mut clients = Vec::new();
    let mut counts = Vec::new();
    let options = || ClientOptions {
        video: true,
        ice_udp: vec![format!("{}:0", setup.host)],
        ice_tick: None,
        ..ClientOptions::default()
    };
    // Four at a time: the robot takes at most four connecting offers per address.
    for batch in (0..viewers).collect::<Vec<_>>().chunks(4) {
        let joins = batch
            .iter()
            .map(|_| tokio::time::timeout(WAIT, RobotClient::connect(&setup.robot.url, options())));
        for joined in futures_util::future::join_all(joins).await {
            let mut client = joined
                .context("a connection took too long")?
                .context("connecting to the robot")?;
            let video = client.take_video().context("no video")?;
            let decode = counts.is_empty().then(|| latencies.clone());
            counts.push(drain(video, decode));
            clients.push(client);
        }
    }
    let figures = measure(setup, &counts, &latencies, seconds, false).await;
    for client in &clients {
        client.close().await;
    }
    figures
}

/// The flags of both robots: video only, the test pattern with a camera's sensor
/// noise (the plain pattern compresses to under 100 kbit/s).
const ROBOT_FLAGS: [&str; 4] = ["--audio", "none", "--camera", "test-pattern:noisy"];

async fn inner(seconds: f64) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("rtcbot-sfu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (here, link, address, host) = robot_link(1)?;
    // The robot publishing to Janus; it retries until Janus is up.
    let api = format!("http://{host}:{PORT}/janus");
    let config = dir.join("robot-sfu.toml");
    std::fs::write(
        &config,
        format!(
            "[sfu]\nurl = \"{api}\"\nroom = {ROOM}\nsecret = \"{SECRET}\"\n\
             publisher_id = {FEED}\naudio = false\n"
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let mut flags = vec!["--config", &config];
    flags.extend(ROBOT_FLAGS);
    let robot = RobotProcess::start_in_namespace(&link, &address, &host, &flags)?;
    // Janus once the link is up in both namespaces (its HTTP server binds `host`).
    let mut options = JanusOptions::new(dir.join("janus"), &here);
    options.http_ip = host.clone();
    options.port = PORT;
    options.room = ROOM;
    options.secret = Some(SECRET.into());
    options.rtp_ports = (20000, 20400);
    let mut janus = JanusServer::configure(options)?;
    janus.start().await?;
    anyhow::ensure!(janus.api() == api, "Janus's API is {}", janus.api());
    let started = Instant::now();
    loop {
        match sfu_status(&robot).await {
            Ok((state, _)) if state == "publishing" => break,
            _ if started.elapsed() > WAIT => bail!(
                "the robot did not publish to Janus in {WAIT:?}; janus.log:\n{}",
                janus.log_tail(30)
            ),
            _ => tokio::time::sleep(Duration::from_millis(100)).await, // polling /health
        }
    }
    let setup = Setup {
        robot: &robot,
        link: &link,
        host: &host,
        janus: Some(&janus),
    };
    let mut sfu = Vec::new();
    for n in [1, 10, 50] {
        sfu.push(through_janus(&setup, n, seconds).await?);
    }
    drop(robot);
    janus.kill();

    // A robot without [sfu], its viewers straight to it.
    let (_, link, address, host) = robot_link(2)?;
    let robot = RobotProcess::start_in_namespace(&link, &address, &host, &ROBOT_FLAGS)?;
    let setup = Setup {
        robot: &robot,
        link: &link,
        host: &host,
        janus: None,
    };
    let mut straight = Vec::new();
    for n in [1, 10] {
        straight.push(direct(&setup, n, seconds).await?);
    }
    drop(robot);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "video": "640x480 test pattern with sensor noise (test-pattern:noisy), 30 fps, the robot's default bitrate and congestion control, no sound",
        "window_s": seconds,
        "method": {
            "robot_upload": "transmit bytes of the robot's only link (the robot alone in its network namespace): every byte it sends, headers included",
            "cpu": "utime+stime from /proc over the window, % of one core",
            "glass_to_glass": "capture stamp in the picture -> decoded by openh264, the first viewer of each case only",
            "other_viewers": "receive and count whole frames without decoding (2 cores cannot decode 50 streams)",
            "direct_viewers": "rtcbot::RobotClient with webrtc-rs's default ICE timer",
            "viewer_assembly": "JanusViewer and RobotClient both hand a frame out on its marker bit (rtc::client::receive_video)",
        },
        "through_janus": sfu,
        "direct": straight,
    }))
}

fn main() -> anyhow::Result<()> {
    let seconds = rtcbot_bench::seconds_arg(5.0)?;
    if !namespace::inside(INNER, "1") {
        let exe = std::env::current_exe()?;
        let status = namespace::rerun_command(&exe, None, INNER, "1")
            .args(std::env::args().skip(1))
            .status()
            .context("cannot run unshare (util-linux; it needs root)")?;
        if !status.success() {
            bail!("the run in its own network namespace failed ({status})");
        }
        return Ok(());
    }
    let report = tokio::runtime::Runtime::new()?.block_on(inner(seconds))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

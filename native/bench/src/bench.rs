//! `rtcbot-bench`: measures the robot and prints one JSON object.
//!
//! It starts the real `rtcbot-robot` binary (from the same target folder) on a free
//! port with loopback ICE, drives it with real WebRTC clients from this process, and
//! reads the robot's CPU time and peak memory from `/proc`. Figures: control round
//! trip (p50/p99 over sequential pings), connection setup (offer to open data
//! channel), one-way message rate, encoder speed per resolution, and robot CPU and
//! peak RSS with 1, 2, 4 and 8 viewers, the noisy clip's encoded fps and skipped
//! frames at 500/1000/2000 kbit/s, and offer → first video frame with the stream idle
//! (cold: the first viewer starts capture and the encoder) and running (warm); audio:
//! the test tone's latency from the robot's clock to decoded in the client (p50/p99,
//! from burst onsets) and robot CPU with 1 and 8 listeners, and the cost of decoding
//! a browser's 640x480 camera on the robot; the Rust client's decoded pictures
//! (`RobotClient::pictures`): capture → decoded picture latency p50/p99 at 640x480
//! and 1280x720, the client's CPU, offer → open and offer → first picture.
//!
//! `cargo run --release -p rtcbot-native --bin rtcbot-bench [-- --seconds 5]`
//! (`RTCBOT_BENCH_ONLY=client_pictures` runs only the client's pictures section).

use anyhow::{bail, Context};
use rtcbot::video::encoder::{EncoderSettings, OpenH264Encoder, VideoEncoder};
use rtcbot::video::{Frame, TestPattern, VideoSource};
use rtcbot::{ClientOptions, RobotClient};
use rtcbot_bench::{cpu_seconds, percentile, round3, status_mib, RobotProcess};
use serde_json::{json, Value};
use shared_protocol::{Control, DriveState, Ping, Telemetry};
use std::time::{Duration, Instant};

async fn connect(url: &str, video: bool) -> anyhow::Result<RobotClient> {
    connect_with(url, video, ClientOptions::default().ice_tick).await
}

async fn connect_with(
    url: &str,
    video: bool,
    ice_tick: Option<Duration>,
) -> anyhow::Result<RobotClient> {
    let options = ClientOptions {
        video,
        ice_tick,
        ..ClientOptions::default()
    };
    Ok(RobotClient::connect(url, options).await?)
}

/// UDP datagrams received by this host (both ends of a loopback session count).
fn udp_in_datagrams() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == "InDatagrams")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// UDP packets a second on loopback while one idle client is connected with
/// `ice_tick`: the keep-alive cost of the timer.
async fn idle_packets_per_second(url: &str, ice_tick: Option<Duration>) -> anyhow::Result<f64> {
    let c = connect_with(url, false, ice_tick).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = udp_in_datagrams().context("no /proc/net/snmp")?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = udp_in_datagrams().context("no /proc/net/snmp")?;
    c.close().await;
    Ok(((after - before) as f64 / started.elapsed().as_secs_f64()).round())
}

/// Offer to open channels, `n` times one after the other; sorted milliseconds.
async fn setups(url: &str, n: usize, ice_tick: Option<Duration>) -> anyhow::Result<Vec<f64>> {
    let mut setups = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let c = connect_with(url, false, ice_tick).await?;
        setups.push(started.elapsed().as_secs_f64() * 1000.0);
        c.close().await;
    }
    setups.sort_by(f64::total_cmp);
    Ok(setups)
}

async fn wait_pong(client: &mut RobotClient, id: i128) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.recv()).await {
            Ok(Some(Telemetry::Pong(p))) if p.id == id => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => bail!("channel closed"),
            Err(_) => bail!("no pong {id} within 10 s"),
        }
    }
}

async fn control_figures(url: &str) -> anyhow::Result<Value> {
    let mut client = connect(url, false).await?;
    // Warm up, then 2,000 pings one at a time.
    for id in 0..100 {
        client.send(&Control::Ping(Ping { id, t: 0.0 })).await?;
        wait_pong(&mut client, id).await?;
    }
    let mut rtts = Vec::with_capacity(2000);
    for id in 1000..3000 {
        let sent = Instant::now();
        client.send(&Control::Ping(Ping { id, t: 0.0 })).await?;
        wait_pong(&mut client, id).await?;
        rtts.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    rtts.sort_by(f64::total_cmp);

    // One-way rate: many drive states back to back on the ordered `default` channel
    // (not the unreliable drive channel), then a ping behind them; its pong means the
    // robot has read them all.
    let count = 50_000u64;
    let started = Instant::now();
    for seq in 1..=count {
        let forward = (seq % 100) as f64 / 100.0;
        client
            .send_text(&Control::Drive(DriveState::new(forward, 0.0, seq)?).to_text())
            .await?;
    }
    client
        .send(&Control::Ping(Ping {
            id: 9_999_999,
            t: 0.0,
        }))
        .await?;
    wait_pong(&mut client, 9_999_999).await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    client.close().await;

    let fast = setups(url, 20, ClientOptions::default().ice_tick).await?;
    let slow = setups(url, 10, None).await?;
    let figures = |s: &[f64]| json!({"p50": round3(percentile(s, 0.5)), "max": round3(*s.last().unwrap_or(&f64::NAN)), "n": s.len()});
    Ok(json!({
        "control_rtt_ms": {"p50": round3(percentile(&rtts, 0.5)), "p99": round3(percentile(&rtts, 0.99)), "n": rtts.len()},
        "messages_per_second_one_way": rate.round(),
        "setup_ms": figures(&fast),
        "setup_ms_default_ice_timer": figures(&slow),
        "idle_udp_packets_per_second": {
            "ice_tick_10ms": idle_packets_per_second(url, ClientOptions::default().ice_tick).await?,
            "default_ice_timer": idle_packets_per_second(url, None).await?,
        },
    }))
}

fn encode_figures(width: u32, height: u32, frames: u32) -> anyhow::Result<Value> {
    let mut source = TestPattern::new(width, height)?;
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: 1000 * width * height / (640 * 480),
        fps: 30,
        keyframe_interval: 60,
        // As the robot encodes by default.
        temporal_layers: 2,
    })?;
    let mut frame = Frame::new(width as usize, height as usize);
    let mut bytes = 0usize;
    let started = Instant::now();
    let cpu_start = cpu_seconds(std::process::id());
    for n in 0..frames {
        source.capture(&mut frame)?;
        // Capture times of a 30 fps camera, which the rate control budgets with.
        frame.captured = started + FRAME_PERIOD * n;
        if let Some(out) = encoder.encode(&frame, false)? {
            bytes += out.data.len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(std::process::id()) - cpu_start;
    let fps = f64::from(frames) / secs;
    Ok(json!({
        "encode_fps": fps.round(),
        "cpu_ms_per_frame": round3(cpu * 1000.0 / f64::from(frames)),
        "cpu_percent_of_one_core_at_30fps": round3(cpu / f64::from(frames) * 30.0 * 100.0),
        "kbps_at_30fps": (bytes as f64 * 8.0 / f64::from(frames) * 30.0 / 1000.0).round(),
    }))
}

/// The period of a 30 fps camera.
const FRAME_PERIOD: Duration = Duration::from_micros(33_333);

/// The noisy 640x480 pattern (a camera's sensor noise, ±6 levels) through openh264 at
/// `kbps` with the robot's two temporal layers: pictures out of `frames`, frames
/// skipped, the bitrate it made, and what the base layer alone (a slow viewer's
/// share) carries.
fn noisy_figures(kbps: u32, frames: u32) -> anyhow::Result<Value> {
    let mut source = TestPattern::new(640, 480)?.with_noise(6);
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: kbps,
        fps: 30,
        keyframe_interval: 60,
        temporal_layers: 2,
    })?;
    let mut frame = Frame::new(640, 480);
    let (mut pictures, mut bytes) = (0u32, 0usize);
    let (mut base_pictures, mut base_bytes) = (0u32, 0usize);
    let started = Instant::now();
    for n in 0..frames {
        source.capture(&mut frame)?;
        frame.captured = started + FRAME_PERIOD * n;
        if let Some(out) = encoder.encode(&frame, false)? {
            pictures += 1;
            bytes += out.data.len();
            if out.temporal_layer == 0 {
                base_pictures += 1;
                base_bytes += out.data.len();
            }
        }
    }
    let kbps_of = |bytes: usize| (bytes as f64 * 8.0 / f64::from(frames) * 30.0 / 1000.0).round();
    Ok(json!({
        "target_kbps": kbps,
        "encoded_fps": round3(f64::from(pictures) * 30.0 / f64::from(frames)),
        "frames_skipped": encoder.frames_skipped(),
        "base_layer_fps": round3(f64::from(base_pictures) * 30.0 / f64::from(frames)),
        "base_layer_kbps": kbps_of(base_bytes),
        "kbps": kbps_of(bytes),
    }))
}

async fn viewer_figures(viewers: usize, seconds: f64, extra: &[&str]) -> anyhow::Result<Value> {
    let robot = RobotProcess::start(extra)?;
    let mut clients = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..viewers {
        let mut c = connect(&robot.url, true).await?;
        receivers.push(c.take_video().context("video")?);
        clients.push(c);
    }
    let counts: Vec<_> = receivers
        .into_iter()
        .map(|mut rx| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while rx.recv().await.is_some() {
                    n += 1;
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up: keyframes, pacing
    let cpu0 = cpu_seconds(robot.pid());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let cpu = cpu_seconds(robot.pid()) - cpu0;
    let elapsed = t0.elapsed().as_secs_f64();
    let peak = status_mib(robot.pid(), "VmHWM:");
    let rss = status_mib(robot.pid(), "VmRSS:");
    for c in &clients {
        c.close().await;
    }
    drop(clients);
    let mut frames = Vec::new();
    for h in counts {
        frames.push(h.await.unwrap_or(0));
    }
    Ok(json!({
        "viewers": viewers,
        "robot_cpu_percent_of_one_core": round3(cpu / elapsed * 100.0),
        "robot_peak_rss_mib": round3(peak),
        "robot_rss_mib": round3(rss),
        "frames_received_per_viewer_min": frames.iter().min(),
    }))
}

/// Robot CPU with `listeners` audio-only clients of the test tone, and the tone's
/// latency: each burst starts at a wall-clock multiple of 500 ms, so the time from
/// that to the arrival of the packet whose decoded sound holds the onset is the
/// latency from capture to decoded (same machine, same clock).
///
/// With `audio` false the clients connect and ask for nothing: what `listeners`
/// connected peers cost the robot by themselves (ICE keep-alives, SCTP timers).
async fn audio_figures(listeners: usize, seconds: f64, audio: bool) -> anyhow::Result<Value> {
    use rtcbot::audio::{codec::OpusDecoder, tone};
    let robot = RobotProcess::start(&["--audio", "tone"])?;
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..listeners {
        // webrtc-rs's own 200 ms timer, as browsers pace ICE: the 10 ms tick would
        // add 100 STUN requests a second per listener to what the robot handles.
        let options = ClientOptions {
            video: false,
            audio,
            ice_tick: None,
            ..ClientOptions::default()
        };
        let mut client = RobotClient::connect(&robot.url, options).await?;
        let Some(mut packets) = client.take_audio() else {
            clients.push(client);
            continue;
        };
        clients.push(client);
        tasks.push(tokio::spawn(async move {
            let mut decoder = OpusDecoder::new().expect("an Opus decoder");
            let (mut latencies, mut loud, mut blocks) = (Vec::new(), true, 0u64);
            while let Some(packet) = packets.recv().await {
                let Ok(pcm) = decoder.decode(&packet.data) else {
                    continue;
                };
                let (onset, loud_at_end) = tone::onset(pcm, !loud);
                loud = loud_at_end;
                blocks += 1;
                if onset.is_some() && blocks > 10 {
                    latencies.push(tone::burst_latency_us(packet.received_wall_us) as f64 / 1000.0);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let cpu0 = cpu_seconds(robot.pid());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let cpu = cpu_seconds(robot.pid()) - cpu0;
    let elapsed = t0.elapsed().as_secs_f64();
    for c in &clients {
        c.close().await;
    }
    drop(clients);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "peers": listeners,
        "audio": audio,
        "robot_cpu_percent_of_one_core": round3(cpu / elapsed * 100.0),
        "tone_latency_ms": {
            "p50": round3(percentile(&latencies, 0.5)),
            "p99": round3(percentile(&latencies, 0.99)),
            "bursts": latencies.len(),
        },
    }))
}

/// The robot's cost of decoding a browser's camera: `frames` of the test pattern at
/// 640x480, encoded by openh264 here (Chromium's camera is H.264 constrained
/// baseline too) and decoded by the robot's camera decoder.
async fn camera_decode_figures(frames: u32) -> anyhow::Result<Value> {
    let mut source = TestPattern::new(640, 480)?;
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: 1000,
        fps: 30,
        keyframe_interval: 60,
        temporal_layers: 1,
    })?;
    let mut frame = Frame::new(640, 480);
    let mut units = Vec::new();
    for _ in 0..frames {
        source.capture(&mut frame)?;
        if let Some(out) = encoder.encode(&frame, false)? {
            units.push(out.data);
        }
    }
    let video = rtcbot::video::incoming::BrowserVideo::default();
    let mut decoded = video.subscribe();
    let decoder = video.decoder(1).map_err(anyhow::Error::msg)?;
    for unit in &units {
        decoder.push(unit.clone(), Instant::now());
        tokio::time::timeout(Duration::from_secs(5), decoded.recv())
            .await
            .context("a decoded picture within 5 s")??;
    }
    let c = video.counters();
    let ms = c.decode_ns as f64 / c.frames_decoded.max(1) as f64 / 1e6;
    Ok(json!({
        "frames_decoded": c.frames_decoded,
        "decode_ms_per_frame": round3(ms),
        "cpu_percent_of_one_core_at_30fps": round3(ms * 30.0 / 10.0),
    }))
}

/// Offer → first video frame at the client, `n` times; with `warm`, another viewer
/// keeps the stream running meanwhile, else the stream is idle before each.
async fn first_frames(url: &str, n: usize, warm: bool) -> anyhow::Result<Value> {
    let _keeper = match warm {
        true => {
            let mut keeper = connect(url, true).await?;
            let mut video = keeper.take_video().context("no video")?;
            tokio::time::timeout(Duration::from_secs(10), video.recv())
                .await
                .context("no video for the viewer that keeps the stream warm")?;
            // Its frames are left to queue (bounded) and dropped.
            Some((keeper, video))
        }
        false => None,
    };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut client = connect(url, true).await?;
        let mut video = client.take_video().context("no video")?;
        tokio::time::timeout(Duration::from_secs(10), video.recv())
            .await
            .context("no first frame within 10 s")?
            .context("the video ended")?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        client.close().await;
        // The stream goes idle once the last viewer left (cold), or keeps running.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "p50": round3(percentile(&times, 0.5)),
        "max": round3(*times.last().unwrap_or(&f64::NAN)),
        "n": n,
    }))
}

/// The Rust client's decoded pictures from a robot run with `extra` flags, for
/// `seconds` after a second's warm-up: capture (the test pattern's stamp, same
/// clock) → decoded picture (p50/p99), this process's CPU (the client alone: the
/// robot is another process), offer → open and offer → first decoded picture.
async fn client_picture_figures(seconds: f64, extra: &[&str]) -> anyhow::Result<Value> {
    let robot = RobotProcess::start(extra)?;
    let started = Instant::now();
    let mut client = connect(&robot.url, true).await?;
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut pictures = client.pictures()?;
    let wait = Duration::from_secs(10);
    let first = tokio::time::timeout(wait, pictures.next_picture())
        .await
        .context("no picture within 10 s")?
        .context("the video ended")?;
    let first_picture_ms = started.elapsed().as_secs_f64() * 1000.0;
    let size = format!("{}x{}", first.width(), first.height());
    let warm = Instant::now() + Duration::from_secs(1);
    while Instant::now() < warm {
        tokio::time::timeout(wait, pictures.next())
            .await
            .context("the video stalled during warm-up")?;
    }
    let (mut latencies, mut errors) = (Vec::new(), 0u64);
    let dropped0 = pictures.dropped();
    let cpu0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < seconds {
        match tokio::time::timeout(wait, pictures.next()).await {
            Ok(Some(Ok(picture))) => {
                let latency = picture.latency().context("a picture without its stamp")?;
                latencies.push(latency.as_secs_f64() * 1000.0);
            }
            Ok(Some(Err(_))) => errors += 1,
            Ok(None) => bail!("the video ended"),
            Err(_) => bail!("no picture within 10 s"),
        }
    }
    let cpu = cpu_seconds(std::process::id()) - cpu0;
    let elapsed = t0.elapsed().as_secs_f64();
    client.close().await;
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "size": size,
        "pictures_per_second": round3(latencies.len() as f64 / elapsed),
        "capture_to_picture_ms_p50": round3(percentile(&latencies, 0.5)),
        "capture_to_picture_ms_p99": round3(percentile(&latencies, 0.99)),
        "client_cpu_percent_of_one_core": round3(cpu / elapsed * 100.0),
        "decode_errors": errors,
        "dropped_for_a_slow_reader": pictures.dropped() - dropped0,
        "offer_to_open_ms": round3(setup_ms),
        "offer_to_first_picture_ms": round3(first_picture_ms),
    }))
}

/// The robot's flags for 1280x720 at 2500 kbit/s.
const HD: [&str; 6] = [
    "--width",
    "1280",
    "--height",
    "720",
    "--bitrate-kbps",
    "2500",
];

/// The client's pictures at 640x480 and at 1280x720 (2500 kbit/s).
async fn client_pictures(seconds: f64) -> anyhow::Result<Value> {
    Ok(json!([
        client_picture_figures(seconds, &[]).await?,
        client_picture_figures(seconds, &HD).await?,
    ]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = rtcbot_bench::seconds_arg(5.0)?;
    if std::env::var("RTCBOT_BENCH_ONLY").as_deref() == Ok("client_pictures") {
        let report = json!({ "client_pictures": client_pictures(seconds).await? });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let robot = RobotProcess::start(&[])?;
    let control = control_figures(&robot.url).await?;
    let first_frame = json!({
        "offer_to_first_frame_ms_cold": first_frames(&robot.url, 10, false).await?,
        "offer_to_first_frame_ms_warm": first_frames(&robot.url, 10, true).await?,
    });
    drop(robot);
    let encode = json!({
        "640x480": encode_figures(640, 480, 300)?,
        "1280x720": encode_figures(1280, 720, 150)?,
        "noisy_640x480": [
            noisy_figures(500, 300)?,
            noisy_figures(1000, 300)?,
            noisy_figures(2000, 300)?,
        ],
    });
    let mut viewers = Vec::new();
    for n in [1, 2, 4, 8] {
        viewers.push(viewer_figures(n, seconds, &[]).await?);
    }
    let hd = viewer_figures(1, seconds, &HD).await?;
    let audio_1 = audio_figures(1, seconds, true).await?;
    let audio_8 = audio_figures(8, seconds, true).await?;
    let idle_1 = audio_figures(1, seconds, false).await?;
    let idle_8 = audio_figures(8, seconds, false).await?;
    let audio_cpu = |v: &Value| {
        v["robot_cpu_percent_of_one_core"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let audio_ratio = round3(audio_cpu(&audio_8) / audio_cpu(&audio_1));
    let camera_in = camera_decode_figures(300).await?;
    let client_pictures = client_pictures(seconds).await?;
    let cpu = |i: usize| {
        viewers[i]["robot_cpu_percent_of_one_core"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let report = json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "control": control,
        "encode": encode,
        "first_frame": first_frame,
        "stream_640x480_30fps": viewers,
        "stream_1280x720_30fps_1_viewer": hd,
        "cpu_8_viewers_over_1": round3(cpu(3) / cpu(0)),
        "audio_tone": [audio_1, audio_8],
        "connected_peers_asking_nothing": [idle_1, idle_8],
        "audio_cpu_8_listeners_over_1": audio_ratio,
        "browser_camera_decode_640x480": camera_in,
        "client_pictures": client_pictures,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

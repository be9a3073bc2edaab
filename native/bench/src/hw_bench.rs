//! `rtcbot-hw-bench`: robot hardware figures, printed as one JSON object.
//!
//! - `video`: CPU of the real `rtcbot-robot` binary (from the same target folder)
//!   streaming 640x480@30 to one WebRTC viewer, from a Y4M file through the software
//!   encoder, then from the same pictures as an H.264 Annex B file passed through
//!   (no decode, no encode). The files are made at start from the test pattern, clean
//!   and with sensor-like noise (a real camera's pictures are never flat).
//! - `deadman`: over a real socat pty pair, the time from a driver's last control
//!   message until the stop struct reaches the "Arduino" end, with the default
//!   300 ms dead-man time (hub, drive loop and serial link in this process).
//!
//! `cargo run --release -p rtcbot-native --bin rtcbot-hw-bench [-- --seconds 10]`
//! (build `rtcbot-robot` in the same profile first; needs `socat`).

use anyhow::{bail, Context};
use rtcbot::control::ControlHub;
use rtcbot::control::{DriveConfig, DriveController, DriveMapping};
use rtcbot::serial::{LinkState, SerialConfig, SerialConnection};
use rtcbot::video::encoder::{EncoderSettings, OpenH264Encoder, VideoEncoder};
use rtcbot::video::source::file::write_y4m;
use rtcbot::video::TestPattern;
use rtcbot::{ClientOptions, RobotClient};
use rtcbot_bench::{cpu_seconds, round3, RobotProcess};
use serde_json::{json, Value};
use shared_protocol::{Control, DriveState};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills (by its own pid) a child this process started, on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// Writes `frames` of 640x480@30 test pattern as `<name>.y4m` and `<name>.h264`; with
/// `noise`, every pixel gets sensor-like noise (+-6 luma levels, new each frame), as a
/// real camera's pictures have, which the flat test pattern lacks.
fn make_clips(
    dir: &Path,
    name: &str,
    frames: usize,
    noise: bool,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut pictures = TestPattern::new(640, 480)?.record(frames)?;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for f in &mut pictures {
        if noise {
            let luma = f.width * f.height;
            for px in &mut f.data[..luma] {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let delta = (seed % 13) as i16 - 6;
                *px = (i16::from(*px) + delta).clamp(16, 235) as u8;
            }
        }
    }
    let y4m = dir.join(format!("{name}.y4m"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&y4m)?);
    write_y4m(&mut file, &pictures, 30)?;
    drop(file);
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: 1000,
        fps: 30,
        keyframe_interval: 60,
        temporal_layers: 1,
    })?;
    let mut annexb = Vec::new();
    for f in &pictures {
        if let Some(out) = encoder.encode(f, false)? {
            annexb.extend_from_slice(&out.data);
        }
    }
    let h264 = dir.join(format!("{name}.h264"));
    std::fs::write(&h264, annexb)?;
    Ok((y4m, h264))
}

/// Starts the robot binary on `camera` with one peer for `seconds`, watching the video
/// when `video` (else the peer only holds its data channel open), and returns the
/// robot's CPU use in percent of one core, and frames received.
async fn robot_cpu(camera: &str, seconds: f64, video: bool) -> anyhow::Result<(f64, u64)> {
    // openh264 always: on a machine with a hardware encoder, `auto` would use it.
    let robot = RobotProcess::start(&["--camera", camera, "--encoder", "software"])?;
    let mut client = RobotClient::connect(
        &robot.url,
        ClientOptions {
            video,
            ..ClientOptions::default()
        },
    )
    .await?;
    let mut frames_rx = client.take_video();
    if let Some(rx) = frames_rx.as_mut() {
        // Warm up until frames flow.
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .context("no video frame within 20 s")?;
    }
    let pid = robot.pid();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let mut frames = 0u64;
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    match frames_rx.as_mut() {
        Some(rx) => {
            while let Ok(Some(_)) = tokio::time::timeout_at(end, rx.recv()).await {
                frames += 1;
            }
        }
        None => tokio::time::sleep_until(end).await,
    }
    let cpu = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    client.close().await;
    drop(robot);
    Ok((cpu, frames))
}

/// One socat pty pair; returns it with the robot end and the Arduino end.
fn socat(dir: &Path) -> anyhow::Result<(Owned, PathBuf, PathBuf)> {
    let (robot, arduino) = (dir.join("robot"), dir.join("arduino"));
    let mut child = Command::new("socat")
        .args(["-d", "-d"])
        .arg(format!("pty,raw,echo=0,link={}", robot.display()))
        .arg(format!("pty,raw,echo=0,link={}", arduino.display()))
        .stderr(Stdio::piped())
        .spawn()
        .context("starting socat (apt install socat)")?;
    let stderr = child.stderr.take().context("socat stderr")?;
    let owned = Owned(child);
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("starting data transfer loop") => break,
            Some(Ok(_)) => {}
            _ => bail!("socat exited before creating its ptys"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Ok((owned, robot, arduino))
}

async fn deadman_delay(dir: &Path, rounds: usize) -> anyhow::Result<Value> {
    let (_socat, robot_end, arduino_end) = socat(dir)?;
    let serial = SerialConnection::open(SerialConfig {
        path: robot_end,
        write_format: Some("<hh".into()),
        write_keys: Some(vec!["left".into(), "right".into()]),
        ..SerialConfig::default()
    })?;
    let mut state = serial.state();
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == LinkState::Connected),
    )
    .await
    .context("the serial link did not connect")??;
    let config = DriveConfig::default();
    let deadman = rtcbot::control::ControlConfig::default();
    let hub = ControlHub::new(deadman.deadman());
    tokio::spawn(hub.clone().watch_silence());
    let mapping = DriveMapping::new(config.clone(), serial.config().write_codec()?.as_ref())?;
    let _drive = DriveController::start(&hub, serial.clone(), mapping);

    // The Arduino: a thread that timestamps every 4-byte struct it reads.
    let mut port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&arduino_end)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<((i16, i16), Instant)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        while port.read_exact(&mut buf).is_ok() {
            let m = (
                i16::from_le_bytes([buf[0], buf[1]]),
                i16::from_le_bytes([buf[2], buf[3]]),
            );
            if tx.send((m, Instant::now())).is_err() {
                break;
            }
        }
    });
    let mut delays = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let sent = Instant::now();
        hub.publish(
            1,
            Control::Drive(DriveState::new(1.0, 0.0, round as u64 + 1)?),
        )
        .ok();
        // Wait for motion, then for the stop.
        let mut moving = false;
        let stopped_at = loop {
            let (m, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("no motor struct within 10 s")?
                .context("the pty closed")?;
            if m != (0, 0) {
                moving = true;
            } else if moving {
                break at;
            }
        };
        delays.push(stopped_at.duration_since(sent).as_secs_f64() * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    serial.close();
    Ok(json!({
        "deadman_ms": deadman.deadman_ms,
        "rounds": rounds,
        "stop_after_last_control_ms": {
            "min": round3(delays[0]),
            "p50": round3(delays[delays.len() / 2]),
            "max": round3(delays[delays.len() - 1]),
        },
        "late_by_ms_p50": round3(delays[delays.len() / 2] - deadman.deadman_ms as f64),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = rtcbot_bench::seconds_arg(10.0)?;
    let dir = std::env::temp_dir().join(format!("rtcbot-hw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut video = serde_json::Map::new();
    for (name, noise) in [("clean-pattern", false), ("noisy-pattern", true)] {
        let (y4m, h264) = make_clips(&dir, name, 90, noise)?;
        let (encode_cpu, encode_frames) =
            robot_cpu(&format!("file:{}", y4m.display()), seconds, true).await?;
        let (pass_cpu, pass_frames) =
            robot_cpu(&format!("file:{}", h264.display()), seconds, true).await?;
        video.insert(
            name.into(),
            json!({
                "y4m_software_encode": {
                    "robot_cpu_percent": round3(encode_cpu),
                    "frames_received": encode_frames,
                },
                "annexb_pass_through": {
                    "robot_cpu_percent": round3(pass_cpu),
                    "frames_received": pass_frames,
                },
                "pass_through_cpu_ratio": round3(pass_cpu / encode_cpu.max(1e-9)),
            }),
        );
    }
    // The floor under both: the robot with one connected peer that watches nothing
    // (WebRTC timers, telemetry once a second).
    let (idle_cpu, _) = robot_cpu("test-pattern", seconds, false).await?;
    let deadman = deadman_delay(&dir, 10).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let report = json!({
        "video_640x480_30fps": {
            "seconds_each": seconds,
            "clips": video,
            "robot_cpu_percent_one_peer_no_video": round3(idle_cpu),
        },
        "deadman": deadman,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

//! The Raspberry Pi build (scripts/build-pi.sh) run on this machine under
//! `qemu-aarch64` (Debian's qemu-user) with the arm64 multiarch libraries installed
//! here (libc6, libstdc++6, libopus0, libasound2 `:arm64`) as its sysroot, `/`: the
//! cross toolchain's /usr/aarch64-linux-gnu is another build of glibc than the
//! multiarch libopus pulls in, and the two mixed hang in pthread_create. It is an
//! aarch64 binary of at most 15 MB, `--version` answers, and a robot on port 0 with
//! the test pattern serves the page built into it and streams video that a native
//! client here receives and decodes.
//!
//! Ignored in the workspace's test run (the cross build takes too long for it):
//! scripts/check-pi.sh builds the binary and runs these with `--ignored`, where a
//! missing binary or qemu is a failure. `RTCBOT_PI_BIN` names another binary.
//! Figures (size, start time, idle RSS) are printed; emulation inflates the times.

mod common;
mod pi_support;

use common::decode_stamps;
use pi_support::{RunningRobot, TempDir, ROBOT_FLAGS};
use rtcbot::rtc::{ClientOptions, RobotClient};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Emulated, the robot is slower than natively: start-up and the first frames.
const WAIT: Duration = Duration::from_secs(120);
/// Where qemu finds ld-linux-aarch64.so.1 and the libraries: the multiarch ones.
const SYSROOT: &str = "/";
const MAX_BYTES: u64 = 15 * 1000 * 1000;

/// The stripped aarch64 binary build-pi.sh leaves in target/pi/aarch64.
fn binary() -> PathBuf {
    let bin = std::env::var_os("RTCBOT_PI_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pi/aarch64/rtcbot-robot"),
        PathBuf::from,
    );
    assert!(
        bin.is_file(),
        "no aarch64 robot at {}: run bash scripts/build-pi.sh (or set RTCBOT_PI_BIN)",
        bin.display()
    );
    bin
}

fn qemu() -> Command {
    let mut qemu = Command::new("qemu-aarch64");
    qemu.arg("-L").arg(SYSROOT);
    qemu
}

/// The resident set of process `pid` in kB, from /proc.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

#[test]
#[ignore = "needs the aarch64 build and qemu-user: scripts/check-pi.sh"]
fn the_aarch64_binary_is_small_and_answers_version() {
    let bin = binary();
    let bytes = std::fs::read(&bin).unwrap();
    // ELF, 64-bit, little-endian, e_machine 183 (EM_AARCH64).
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((bytes[4], bytes[5]), (2, 1), "not 64-bit little-endian");
    assert_eq!(
        u16::from_le_bytes([bytes[18], bytes[19]]),
        183,
        "not aarch64"
    );
    let size = bytes.len() as u64;
    println!("figure: aarch64 stripped binary {size} bytes");
    assert!(size <= MAX_BYTES, "{size} bytes: more than {MAX_BYTES}");

    let out = qemu()
        .arg(&bin)
        .arg("--version")
        .output()
        .expect("running qemu-aarch64");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--version failed: {out:?}");
    assert_eq!(
        stdout.trim(),
        format!("rtcbot-robot {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the aarch64 build and qemu-user: scripts/check-pi.sh"]
async fn the_aarch64_robot_streams_the_test_pattern_to_a_native_client() {
    let bin = binary();
    let cwd = TempDir::new("cwd");
    let state = TempDir::new("state");
    let started = Instant::now();
    let mut cmd = qemu();
    cmd.arg(&bin)
        .args(ROBOT_FLAGS)
        .arg("--no-auth")
        .arg("--state-dir")
        .arg(&state.0)
        .current_dir(&cwd.0)
        .env(
            "RUST_LOG",
            std::env::var("ROBOT_LOG").unwrap_or_else(|_| "error".into()),
        );
    let robot = RunningRobot::start(cmd, WAIT);
    let start = started.elapsed();
    let (url, pid) = (&robot.url, robot.child.id());
    println!(
        "figure: start under qemu-aarch64 {} ms (to listening)",
        start.as_millis()
    );

    // The page built into the binary, with nothing beside it.
    let index = reqwest::get(format!("{url}/")).await.unwrap();
    assert_eq!(index.status(), 200);
    let index = index.text().await.unwrap();
    assert!(
        index.contains("_bg.wasm"),
        "/ is not the app built into the binary: {index}"
    );
    println!("figure: idle RSS under qemu-aarch64 {} kB", rss_kb(pid));

    let mut client = tokio::time::timeout(
        WAIT,
        RobotClient::connect(
            &format!("{url}/connect"),
            ClientOptions {
                video: true,
                ..ClientOptions::default()
            },
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("no connection to the emulated robot within {WAIT:?}"))
    .expect("the client connects");
    let mut video = client.take_video().expect("a video track");
    // decode_stamps waits up to common::WAIT (20 s) for 10 decoded frames with the
    // frame number painted into them, in order.
    let stamps = decode_stamps(&mut video, 10).await;
    let frames: Vec<_> = stamps.iter().map(|s| s.frame).collect();
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "frame numbers do not increase: {frames:?}"
    );
    println!(
        "figure: RSS while streaming to one client under qemu-aarch64 {} kB",
        rss_kb(pid)
    );
}

//! The Raspberry Pi builds (scripts/build-pi.sh) run on this machine under Debian's
//! qemu-user. aarch64, under `qemu-aarch64` with the arm64 multiarch libraries
//! installed here (libc6, libstdc++6, libopus0, libasound2 `:arm64`) as its sysroot,
//! `/`: the cross toolchain's /usr/aarch64-linux-gnu is another build of glibc than
//! the multiarch libopus pulls in, and the two mixed hang in pthread_create. armv7
//! (build-pi.sh --armv7), under `qemu-arm` with target/pi/sysroot-armhf as its
//! sysroot: the armhf libc6, libgcc-s1, libstdc++6, libopus0 and libasound2 from
//! Debian that build-pi.sh unpacked there (nothing armhf is installed here). Each is
//! an ELF of its architecture of at most 15 MB, `--version` answers, and a robot on
//! port 0 with the test pattern serves the page built into it and /health, and
//! streams video that a native client here receives and decodes.
//!
//! Ignored in the workspace's test run (the cross build takes too long for it):
//! scripts/check-pi.sh builds the binaries and runs these with `--ignored` (the armv7
//! ones with `check-pi.sh --armv7`), where a missing binary or qemu is a failure.
//! `RTCBOT_PI_BIN` / `RTCBOT_PI_ARMV7_BIN` name other binaries,
//! `RTCBOT_PI_ARMV7_SYSROOT` another armhf sysroot. Figures (size, start time, idle
//! RSS) are printed; emulation inflates the times.

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
const MAX_BYTES: u64 = 15 * 1000 * 1000;

/// One of the Pi builds: where build-pi.sh leaves it stripped, how to run it.
struct Arch {
    name: &'static str,
    /// The environment variable naming another binary.
    bin_env: &'static str,
    /// Under target/pi.
    dir: &'static str,
    qemu: &'static str,
    /// ELF: EI_CLASS (1: 32-bit, 2: 64-bit) and e_machine.
    class: u8,
    machine: u16,
    build: &'static str,
}

const AARCH64: Arch = Arch {
    name: "aarch64",
    bin_env: "RTCBOT_PI_BIN",
    dir: "aarch64",
    qemu: "qemu-aarch64",
    class: 2,
    machine: 183, // EM_AARCH64
    build: "bash scripts/build-pi.sh",
};

const ARMV7: Arch = Arch {
    name: "armv7",
    bin_env: "RTCBOT_PI_ARMV7_BIN",
    dir: "armv7",
    qemu: "qemu-arm",
    class: 1,
    machine: 40, // EM_ARM
    build: "bash scripts/build-pi.sh --armv7 --no-aarch64",
};

impl Arch {
    /// The stripped binary build-pi.sh leaves in target/pi/<dir>.
    fn binary(&self) -> PathBuf {
        let bin = std::env::var_os(self.bin_env).map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/pi")
                    .join(self.dir)
                    .join("rtcbot-robot")
            },
            PathBuf::from,
        );
        assert!(
            bin.is_file(),
            "no {} robot at {}: run {} (or set {})",
            self.name,
            bin.display(),
            self.build,
            self.bin_env
        );
        bin
    }

    /// Where qemu finds the dynamic loader and the libraries: for aarch64 the
    /// multiarch ones, `/`; for armv7 the armhf sysroot build-pi.sh unpacked.
    fn sysroot(&self) -> PathBuf {
        if self.machine == AARCH64.machine {
            return PathBuf::from("/");
        }
        let root = std::env::var_os("RTCBOT_PI_ARMV7_SYSROOT").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pi/sysroot-armhf"),
            PathBuf::from,
        );
        assert!(
            root.join("lib/ld-linux-armhf.so.3").exists(),
            "no armhf sysroot at {}: run {}",
            root.display(),
            self.build
        );
        root
    }

    fn qemu(&self) -> Command {
        let mut qemu = Command::new(self.qemu);
        qemu.arg("-L").arg(self.sysroot());
        qemu
    }
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

/// The ELF header is the architecture's (for armv7 also EABI version 5 and the
/// hard-float ABI, as `file` says "ARM, EABI5"), the size at most MAX_BYTES, and
/// `--version` answers under qemu.
fn is_small_and_answers_version(arch: &Arch) {
    let bin = arch.binary();
    let bytes = std::fs::read(&bin).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(
        (bytes[4], bytes[5]),
        (arch.class, 1),
        "not {}-bit little-endian",
        if arch.class == 2 { 64 } else { 32 }
    );
    assert_eq!(
        u16::from_le_bytes([bytes[18], bytes[19]]),
        arch.machine,
        "not {}",
        arch.name
    );
    if arch.class == 1 {
        // e_flags at 0x24 in a 32-bit header: EF_ARM_EABI_VER5, EF_ARM_ABI_FLOAT_HARD.
        let flags = u32::from_le_bytes(bytes[0x24..0x28].try_into().unwrap());
        assert_eq!(flags & 0xff00_0000, 0x0500_0000, "not EABI5: {flags:#x}");
        assert_ne!(flags & 0x400, 0, "not hard-float: {flags:#x}");
    }
    let size = bytes.len() as u64;
    println!("figure: {} stripped binary {size} bytes", arch.name);
    assert!(size <= MAX_BYTES, "{size} bytes: more than {MAX_BYTES}");

    let out = arch
        .qemu()
        .arg(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", arch.qemu));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--version failed: {out:?}");
    assert_eq!(
        stdout.trim(),
        format!("rtcbot-robot {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A robot on port 0 with the test pattern under qemu: its start time and idle RSS,
/// the page built into it, /health, and 10 frames a native client decodes in order.
async fn streams_the_test_pattern_to_a_native_client(arch: &Arch) {
    let bin = arch.binary();
    let cwd = TempDir::new(&format!("{}-cwd", arch.name));
    let state = TempDir::new(&format!("{}-state", arch.name));
    let started = Instant::now();
    let mut cmd = arch.qemu();
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
        "figure: start under {} {} ms (to listening)",
        arch.qemu,
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
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    println!("figure: idle RSS under {} {} kB", arch.qemu, rss_kb(pid));

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
        "figure: RSS while streaming to one client under {} {} kB",
        arch.qemu,
        rss_kb(pid)
    );
}

#[test]
#[ignore = "needs the aarch64 build and qemu-user: scripts/check-pi.sh"]
fn the_aarch64_binary_is_small_and_answers_version() {
    is_small_and_answers_version(&AARCH64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the aarch64 build and qemu-user: scripts/check-pi.sh"]
async fn the_aarch64_robot_streams_the_test_pattern_to_a_native_client() {
    streams_the_test_pattern_to_a_native_client(&AARCH64).await;
}

#[test]
#[ignore = "needs the armv7 build (build-pi.sh --armv7) and qemu-user: scripts/check-pi.sh --armv7"]
fn the_armv7_binary_is_small_and_answers_version() {
    is_small_and_answers_version(&ARMV7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the armv7 build (build-pi.sh --armv7) and qemu-user: scripts/check-pi.sh --armv7"]
async fn the_armv7_robot_streams_the_test_pattern_to_a_native_client() {
    streams_the_test_pattern_to_a_native_client(&ARMV7).await;
}

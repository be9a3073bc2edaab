//! The `rtcbot-robot` binary as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn robot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtcbot-robot"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("running rtcbot-robot")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcbot-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn has_video_nodes() -> bool {
    std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("video"))
        })
        .unwrap_or(false)
}

#[test]
fn cameras_lists_devices_and_the_encoder_and_exits_0() {
    let out = robot(&["cameras"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}; stdout {stdout}; stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // What the binary prints is the library's listing, on any machine.
    let expected = format!(
        "{}{}",
        rtcbot::video::source::v4l2::describe_cameras(&rtcbot::video::source::v4l2::list_cameras()),
        rtcbot::video::encoder::m2m::describe_encoder()
    );
    assert_eq!(stdout, expected);
    if !has_video_nodes() {
        // A machine without any /dev/video* node, like CI's.
        assert!(
            stdout.starts_with(
                "no camera found (no V4L2 capture device under /dev/video*); \
                 the robot will stream the test pattern\n"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("raw video is encoded with openh264"),
            "{stdout}"
        );
    }
}

#[test]
fn a_bad_control_deadman_is_refused_with_the_setting_named() {
    let dir = scratch("deadman");
    for (value, expected) in [
        (
            "5",
            "invalid setting control.deadman_ms: 5 must be in 20..=600000",
        ),
        (
            "600001",
            "invalid setting control.deadman_ms: 600001 must be in 20..=600000",
        ),
    ] {
        let file = dir.join(format!("robot-{value}.toml"));
        std::fs::write(&file, format!("[control]\ndeadman_ms = {value}\n")).unwrap();
        let out = robot(&["--config", file.to_str().unwrap(), "--port", "0"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let file = dir.join("unknown.toml");
    std::fs::write(&file, "[control]\ndeadman = 100\n").unwrap();
    let out = robot(&["--config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown field `deadman`"), "{stderr}");
}

#[test]
fn the_control_section_parses_with_its_default() {
    use rtcbot::config::{Config, ControlConfig};
    assert_eq!(Config::default().control, ControlConfig { deadman_ms: 300 });
    let c = Config::from_toml("[control]\ndeadman_ms = 600000\n").unwrap();
    assert_eq!(c.control.deadman_ms, 600_000);
    let c = Config::from_toml("[control]\ndeadman_ms = 20\n").unwrap();
    assert_eq!(c.control.deadman_ms, 20);
}

#[test]
fn a_relay_key_without_a_relay_and_a_relay_url_without_a_room_are_refused() {
    for (args, expected) in [
        (
            &["--relay-key", "k", "--port", "0"][..],
            "invalid setting relay.key: --relay-key needs --relay URL",
        ),
        (
            &["--relay", "ws://relay.example.org", "--port", "0"][..],
            "invalid setting relay.url: relay.url \"ws://relay.example.org\" names no room",
        ),
        (
            &["--relay", "relay.example.org/room", "--port", "0"][..],
            "must start with ws://, wss://, http:// or https://",
        ),
    ] {
        let out = robot(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

//! `rtcbot-client view` in a virtual X display (Xvfb, Debian's `xvfb`): a screenshot
//! (ffmpeg's x11grab) shows the test pattern's colour bars, and W held in the window
//! (xdotool, Debian's `xdotool`) drives the robot forward until it is let go.

mod client_common;
mod common;
use client_common::*;
use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The screen as RGB, 640x480, through ffmpeg's x11grab.
fn screenshot(display: &str) -> Option<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "x11grab",
            "-video_size",
            "640x480",
            "-i",
            display,
        ])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs (Debian's ffmpeg)");
    (out.status.success() && out.stdout.len() == 640 * 480 * 3).then_some(out.stdout)
}

/// Whether the screen shows the pattern's seven bars at row 130.
fn shows_the_bars(rgb: &[u8]) -> bool {
    rgb.len() == 640 * 480 * 3 && wrong_bars(rgb, 130).is_empty()
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool runs (Debian's xdotool)");
    assert!(
        out.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_shows_the_pattern_and_drives_with_the_keys() {
    let robot = TestRobot::start().await;
    let number = 90 + std::process::id() % 100;
    let display = format!(":{number}");
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (Debian's xvfb)"),
    );
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    eventually("Xvfb's socket", || socket.exists()).await;
    let _view = Killed(
        Command::new(client_exe())
            .args(["view", &robot.url("/"), "--seconds", "60"])
            .env("DISPLAY", &display)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("rtcbot-client runs"),
    );
    within("the window to show the colour bars", async {
        loop {
            let shot = tokio::task::spawn_blocking({
                let display = display.clone();
                move || screenshot(&display)
            })
            .await
            .unwrap();
            if shot.as_deref().is_some_and(shows_the_bars) {
                return;
            }
        }
    })
    .await;

    // W held in the window: forward at 20 Hz; let go: a stop.
    let window = xdotool(&display, &["search", "--sync", "--name", "rtcbot-client"]);
    let window = window.lines().next().expect("the window").to_owned();
    xdotool(&display, &["windowfocus", "--sync", &window]);
    let mut drive = robot.robot.controls().drive();
    xdotool(&display, &["keydown", "w"]);
    within(
        "the robot to drive forward",
        drive.wait_for(|s| s.forward >= 0.99),
    )
    .await
    .expect("the robot runs");
    let silence_stops = robot.robot.controls().silence_stops();
    xdotool(&display, &["keyup", "w"]);
    within(
        "the robot to stop when W is let go",
        drive.wait_for(|s| s.is_stopped()),
    )
    .await
    .expect("the robot runs");
    assert_eq!(
        robot.robot.controls().silence_stops(),
        silence_stops,
        "the stop came from the window, not the robot's dead-man"
    );
}

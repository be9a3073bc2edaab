//! The `rtcbot-client` binary against a real robot: `snapshot` writes a PNG of the
//! test pattern, `record` an MP4 that ffprobe reads as H.264 with every frame, and a
//! refusing robot is a clear error.
//!
//! The binary comes from the same target folder (`cargo test --workspace` builds it;
//! alone: `cargo build -p rtcbot-native --bin rtcbot-client`).

mod client_common;
mod common;
use client_common::*;
use common::*;
use std::path::PathBuf;
use std::process::Output;

/// Runs `rtcbot-client ARGS` to its end (bounded by [`WAIT`] and its own timeouts).
async fn run_client(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(client_exe());
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    within("rtcbot-client to finish", command.output())
        .await
        .expect("rtcbot-client runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_writes_a_png_of_the_colour_bars() {
    let robot = TestRobot::start().await;
    let dir = tempdir("snapshot");
    let file = dir.join("frame.png");
    let out = run_client(&["snapshot", &robot.url("/"), file.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "snapshot failed: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("640x480"),
        "{}",
        text(&out.stdout)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&file).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).expect("its pixels");
    assert_eq!((info.width, info.height), (640, 480));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // Each bar's middle, between the stamp (top 64 rows) and the moving box (rows 200+).
    let wrong = wrong_bars(&rgb, 130);
    assert!(
        wrong.is_empty(),
        "bars (index, x, colour) unlike the pattern's {BARS:?}: {wrong:?}"
    );
    // The grey ramp along the bottom third: dark on the left, light on the right.
    let (left, right) = (rgb[(440 * 640 + 10) * 3], rgb[(440 * 640 + 630) * 3]);
    assert!(left < 40 && right > 200, "the ramp goes {left} → {right}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_writes_an_mp4_that_ffprobe_reads_as_h264() {
    let robot = TestRobot::start().await;
    let dir = tempdir("record");
    let file = dir.join("clip.mp4");
    let path = file.to_str().unwrap();
    let out = run_client(&["record", &robot.url(""), path, "--seconds", "3"]).await;
    assert!(out.status.success(), "record failed: {}", text(&out.stderr));
    // "recorded N frames (640x480, …)"
    let said = text(&out.stdout);
    let frames: u64 = said
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("record said {said:?}"));
    assert!(
        (60..=100).contains(&frames),
        "3 s at 30 fps recorded {frames} frames"
    );

    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_frames,nb_read_frames",
        ])
        .args(["-of", "json", path])
        .output()
        .expect("ffprobe runs (Debian's ffmpeg package)");
    assert!(probe.status.success(), "ffprobe: {}", text(&probe.stderr));
    let json: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &json["streams"][0];
    assert_eq!(stream["codec_name"], "h264", "{json}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(640), Some(480))
    );
    let count = |key: &str| stream[key].as_str().and_then(|n| n.parse::<u64>().ok());
    assert_eq!(count("nb_frames"), Some(frames), "the index: {json}");
    assert_eq!(
        count("nb_read_frames"),
        Some(frames),
        "decoded by ffprobe: {json}"
    );
    assert!(
        probe.stderr.is_empty(),
        "ffprobe found errors: {}",
        text(&probe.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_that_refuses_is_a_clear_error() {
    let robot = TestRobot::start_with(|c| {
        c.auth = Some(
            rtcbot::auth::AuthConfig::default()
                .with_token(rtcbot::auth::Role::Driver, "a-driver-token-0123456789"),
        );
    })
    .await;
    let dir = tempdir("refused");
    let file = dir.join("never.png");
    let out = run_client(&["snapshot", &robot.url("/"), file.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("401"), "the refusal is not named: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!file.exists());
    // With the token, the same robot gives a picture.
    let url = format!("{}?token=a-driver-token-0123456789", robot.url("/"));
    let out = run_client(&["snapshot", &url, file.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "with the token: {}",
        text(&out.stderr)
    );
}

/// A fresh folder under the target's temp folder for one test.
fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcbot-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

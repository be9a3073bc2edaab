//! The video pipeline end to end with file sources: a Y4M file is encoded once for
//! every viewer, an H.264 Annex B file is passed through without any encoder; a real
//! WebRTC client decodes both.

mod common;
use common::*;
use rtcbot::video::encoder::{EncoderSettings, OpenH264Encoder, VideoEncoder};
use rtcbot::video::source::file::write_y4m;
use rtcbot::video::{Frame, TestPattern};
use shared_protocol::Telemetry;

/// `n` frames of 320x240 test pattern (each carries its frame-number stamp).
fn pictures(n: usize) -> Vec<Frame> {
    TestPattern::new(320, 240).unwrap().record(n).unwrap()
}

/// Frame numbers follow each other, starting again at 0 when the file loops.
fn assert_plays_in_order(stamps: &[shared_protocol::Stamp]) {
    for pair in stamps.windows(2) {
        assert!(
            pair[1].frame == pair[0].frame + 1 || pair[1].frame == 0,
            "{stamps:?}"
        );
    }
}

/// The first stats telemetry once frames flow.
async fn stream_stats(client: &mut rtcbot::RobotClient) -> shared_protocol::StreamStats {
    recv_until(client, "stream stats", |m| match m {
        Telemetry::Stats(s) if s.frames_encoded > 0 => Some(s),
        _ => None,
    })
    .await
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcbot-files-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_y4m_file_is_encoded_and_decoded_by_the_client() {
    let path = scratch("y4m").join("clip.y4m");
    let mut file = std::fs::File::create(&path).unwrap();
    write_y4m(&mut file, &pictures(20), 30).unwrap();
    drop(file);
    let camera = format!("file:{}", path.display());
    let robot = TestRobot::start_with(|c| c.video.camera = camera.parse().unwrap()).await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();
    let stamps = decode_stamps(&mut video, 10).await;
    // The file's own stamps come back, in order (the file loops after frame 19).
    assert_plays_in_order(&stamps);
    assert_eq!(robot.robot.counters().encoders_started, 1);
    let stats = stream_stats(&mut client).await;
    assert!(
        stats.encoder.ends_with("clip.y4m/openh264"),
        "{}",
        stats.encoder
    );
    assert_eq!((stats.width, stats.height), (320, 240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annexb_file_passes_through_without_an_encoder() {
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_kbps: 500,
        fps: 30,
        keyframe_interval: 10,
        temporal_layers: 1,
    })
    .unwrap();
    let mut annexb = Vec::new();
    for f in pictures(30) {
        annexb.extend_from_slice(&encoder.encode(&f, false).unwrap().unwrap().data);
    }
    let path = scratch("h264").join("clip.h264");
    std::fs::write(&path, annexb).unwrap();
    let camera = format!("file:{}", path.display());
    let robot = TestRobot::start_with(|c| c.video.camera = camera.parse().unwrap()).await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();
    let stamps = decode_stamps(&mut video, 15).await;
    // The first picture a viewer decodes is a keyframe of the file: 0, 10 or 20.
    assert_eq!(stamps[0].frame % 10, 0, "{stamps:?}");
    assert_plays_in_order(&stamps);
    let counters = robot.robot.counters();
    assert_eq!(counters.encoders_started, 0, "nothing is encoded");
    assert!(counters.frames_encoded >= 15);
    let stats = stream_stats(&mut client).await;
    assert!(
        stats.encoder.ends_with("clip.h264/pass-through"),
        "{}",
        stats.encoder
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_bad_file_is_a_clear_start_error() {
    for (camera, expected) in [
        ("file:/nonexistent/clip.h264", "/nonexistent/clip.h264"),
        ("file:/nonexistent/clip.y4m", "/nonexistent/clip.y4m"),
    ] {
        let mut config = rtcbot::Config::default();
        config.video.camera = camera.parse().unwrap();
        let err = rtcbot::Robot::start(config)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
    let path = scratch("bad").join("noise.h264");
    std::fs::write(&path, [0u8, 0, 1, 0x41, 1, 2, 3]).unwrap();
    let mut config = rtcbot::Config::default();
    config.video.camera = format!("file:{}", path.display()).parse().unwrap();
    let err = rtcbot::Robot::start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("no H.264 keyframe"), "{err}");
}

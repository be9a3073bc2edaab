//! A real WebRTC client receives the robot's H.264 stream, decodes it and reads the
//! frame stamps back: frames arrive in order and are recent.

mod common;
use common::*;
use rtcbot::video::now_us;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_decodes_at_least_30_frames_with_increasing_numbers() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().expect("video requested");
    let stamps = decode_stamps(&mut video, 30).await;
    assert!(
        stamps.windows(2).all(|w| w[1].frame > w[0].frame),
        "frame numbers must increase: {:?}",
        stamps.iter().map(|s| s.frame).collect::<Vec<_>>()
    );
    let age_ms = (now_us() - stamps.last().unwrap().capture_us) as f64 / 1000.0;
    assert!(
        age_ms < 5_000.0,
        "the last frame is {age_ms} ms old: stamps must be live capture times"
    );
    let (w, h) = robot.robot.stream().size();
    assert_eq!((w, h), (640, 480));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_comes_from_config() {
    let robot = TestRobot::start_with(|c| {
        c.video.width = 320;
        c.video.height = 240;
    })
    .await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let dims = within("a decoded picture", async {
        loop {
            let frame = video.recv().await.expect("video");
            if let Ok(Some(p)) = decoder.decode(&frame.data) {
                use openh264::formats::YUVSource;
                break p.dimensions();
            }
        }
    })
    .await;
    assert_eq!(dims, (320, 240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_loss_indication_brings_a_keyframe() {
    // No periodic keyframes: only the first one, and the one the PLI asks for.
    let robot = TestRobot::start_with(|c| c.video.keyframe_interval_s = 3600.0).await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();
    decode_stamps(&mut video, 10).await;
    let before = robot.robot.counters().keyframes;
    assert_eq!(before, 1, "only the new viewer's keyframe so far");
    // RTCP travels over UDP and may be lost, so, like a browser, repeat the PLI
    // until the keyframe comes.
    let mut resend = tokio::time::interval(std::time::Duration::from_millis(500));
    within("a keyframe after the PLI", async {
        loop {
            tokio::select! {
                _ = resend.tick() => client.request_keyframe().await.expect("PLI sent"),
                frame = video.recv() => {
                    let frame = frame.expect("video");
                    if rtcbot::video::h264::is_keyframe(&frame.data) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(robot.robot.counters().keyframes > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_openh264_when_the_hardware_encoder_cannot_open() {
    // /dev/null is no V4L2 memory-to-memory encoder.
    let robot = TestRobot::start_with(|c| {
        c.video.encoder = rtcbot::config::EncoderChoice::Auto;
        c.video.encoder_device = Some("/dev/null".into());
    })
    .await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();
    let stamps = decode_stamps(&mut video, 10).await;
    assert!(
        stamps.windows(2).all(|w| w[1].frame > w[0].frame),
        "{stamps:?}"
    );
    assert_eq!(robot.robot.encoder_name(), "openh264");
    let stats = recv_until(&mut client, "stats naming the encoder", |m| match m {
        shared_protocol::Telemetry::Stats(s) if !s.encoder.is_empty() && s.frames_encoded > 0 => {
            Some(s)
        }
        _ => None,
    })
    .await;
    assert_eq!(stats.encoder, "test-pattern/openh264");
    client.close().await;

    // Asked for by name, the hardware encoder must work: no silent fallback.
    let mut config = rtcbot::Config::default();
    config.video.camera = "test-pattern".parse().unwrap();
    config.video.encoder = rtcbot::config::EncoderChoice::Hardware;
    config.video.encoder_device = Some("/dev/null".into());
    let err = rtcbot::Robot::start(config).err().expect("refused");
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(text.contains("/dev/null"), "{text}");
}

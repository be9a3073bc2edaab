//! The robot's sound: the test tone, Opus-encoded once, received and decoded by real
//! WebRTC clients, which find the tone again (Goertzel) and time its bursts.

mod common;

use common::{eventually, within, TestRobot};
use rtcbot::audio::codec::OpusDecoder;
use rtcbot::audio::{tone, AudioSourceSpec, SAMPLE_RATE};
use rtcbot::rtc::{ClientOptions, RobotClient};
use std::time::Duration;

async fn listener(robot: &TestRobot, video: bool) -> RobotClient {
    let options = ClientOptions {
        video,
        audio: true,
        ..ClientOptions::default()
    };
    within(
        "a listener to connect",
        RobotClient::connect(&robot.url("/connect"), options),
    )
    .await
    .expect("the listener connects")
}

/// Decodes a listener's packets for `blocks` blocks and returns the samples and the
/// latency of every burst onset heard, ms.
async fn hear(client: &mut RobotClient, blocks: usize) -> (Vec<i16>, Vec<f64>) {
    let mut packets = client.take_audio().expect("audio was asked for");
    let mut decoder = OpusDecoder::new().unwrap();
    let mut samples = Vec::new();
    let mut latencies = Vec::new();
    let mut loud = true; // the first onset may be cut: skip a burst already under way
    for _ in 0..blocks {
        let packet = within("an audio packet", packets.recv())
            .await
            .expect("the audio track goes on");
        let pcm = decoder
            .decode(&packet.data)
            .expect("the robot's Opus decodes");
        let (onset, loud_at_end) = tone::onset(pcm, !loud);
        if onset.is_some() {
            let ms = tone::burst_latency_us(packet.received_wall_us) as f64 / 1000.0;
            latencies.push(ms);
        }
        loud = loud_at_end;
        samples.extend_from_slice(pcm);
    }
    (samples, latencies)
}

#[tokio::test]
async fn eight_listeners_hear_the_tone_from_one_encoder() {
    let robot = TestRobot::start_with(|c| c.audio.source = AudioSourceSpec::Tone).await;
    let audio = robot.robot.audio().expect("the robot has a tone").clone();
    // A viewer that asked for no audio costs none.
    let _viewer = robot.client(true).await;
    assert_eq!(audio.counters().listeners, 0);
    assert_eq!(audio.counters().encoders_started, 0);

    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(listener(&robot, false).await);
    }
    eventually("eight listeners", || audio.counters().listeners == 8).await;
    let start = audio.counters().frames_encoded;
    let started = std::time::Instant::now();
    let mut all_latencies = Vec::new();
    for client in &mut clients {
        // Two seconds of sound: four bursts.
        let (samples, latencies) = hear(client, 100).await;
        let (hz, power) = tone::dominant_hz(&samples, &[440.0, 660.0, 1000.0, 1500.0], SAMPLE_RATE)
            .expect("candidates");
        assert_eq!(
            hz,
            tone::TONE_HZ,
            "the listener hears the tone (power {power})"
        );
        assert!(latencies.len() >= 2, "bursts heard: {latencies:?}");
        all_latencies.extend(latencies);
    }
    let c = audio.counters();
    assert_eq!(
        c.encoders_started, 1,
        "one encoder for eight listeners: {c:?}"
    );
    // One encode per 20 ms however many listen (eight encodes would be 8x).
    let elapsed_blocks = started.elapsed().as_secs_f64() / 0.020;
    let encoded = (c.frames_encoded - start) as f64;
    assert!(
        encoded <= elapsed_blocks + 10.0,
        "{encoded} blocks encoded in {elapsed_blocks:.0} block times"
    );
    all_latencies.sort_by(f64::total_cmp);
    let p = |q: f64| all_latencies[((all_latencies.len() - 1) as f64 * q) as usize];
    println!(
        "tone burst latency over 8 listeners: p50 {:.1} ms, p99 {:.1} ms ({} bursts)",
        p(0.5),
        p(0.99),
        all_latencies.len()
    );
    // Listeners leave: the encoder idles.
    for client in &clients {
        client.close().await;
    }
    eventually("no listeners", || audio.counters().listeners == 0).await;
    let idle = audio.counters().frames_encoded;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        audio.counters().frames_encoded <= idle + 1,
        "idle without listeners"
    );
}

#[tokio::test]
async fn a_robot_without_sound_answers_audio_offers_without_sending() {
    let robot = TestRobot::start().await;
    assert!(robot.robot.audio().is_none());
    let mut client = listener(&robot, true).await;
    let mut video = client.take_video().unwrap();
    // Video flows; no audio track comes.
    within("a video frame", video.recv()).await.unwrap();
    let mut audio = client.take_audio().unwrap();
    assert!(audio.try_recv().is_err());
    let peers = robot.robot.peers();
    assert!(!peers[0].media.audio_out);
}

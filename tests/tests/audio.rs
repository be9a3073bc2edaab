//! The robot's sound: the test tone, Opus-encoded once, received and decoded by real
//! WebRTC clients, which find the tone again (Goertzel) and time its bursts.

mod common;

use common::{eventually, within, Sine, TestRobot};
use rtcbot::audio::codec::OpusDecoder;
use rtcbot::audio::{tone, AudioSourceSpec, SAMPLE_RATE};
use rtcbot::rtc::{ClientOptions, RobotClient};
use std::time::Duration;

async fn listener(robot: &TestRobot, video: bool) -> RobotClient {
    robot
        .client_with(ClientOptions {
            video,
            audio: true,
            ..ClientOptions::default()
        })
        .await
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

/// Collects `blocks` decoded blocks of `peer`'s sound.
async fn heard_from(
    heard: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<rtcbot::audio::HeardAudio>>,
    peer: u64,
    blocks: usize,
) -> Vec<i16> {
    let mut samples = Vec::new();
    within("the robot to hear the client's microphone", async {
        while samples.len() < blocks * rtcbot::audio::FRAME_SAMPLES {
            match heard.recv().await {
                Ok(block) if block.peer == peer => samples.extend_from_slice(&block.samples),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(err) => panic!("the robot's audio subscription ended: {err}"),
            }
        }
    })
    .await;
    samples
}

#[tokio::test]
async fn a_microphone_toggled_three_times_renegotiates_and_video_never_stops() {
    let dir = std::env::temp_dir().join(format!("rtcbot-mic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("heard.wav");
    let speaker = rtcbot::audio::AudioSinkSpec::File(wav.clone());
    let robot = TestRobot::start_with(|c| {
        c.audio.source = AudioSourceSpec::Tone;
        c.audio.speaker = speaker;
        c.audio.play_from = rtcbot::audio::PlayFrom::Everyone;
    })
    .await;
    // The client listens too: its microphone goes on the transceiver it first only
    // received the robot's sound on, as a browser's addTrack does.
    let mut client = listener(&robot, true).await;
    let mut video = client.take_video().unwrap();
    let mut robot_sound = client.take_audio().unwrap();
    let peer = robot.robot.peers()[0].id;
    let mut heard = robot.robot.subscribe_audio();
    for round in 1..=3u64 {
        client.start_audio(Sine::new(660.0)).await.expect("mic on");
        let samples = heard_from(&mut heard, peer, 25).await;
        let tail = &samples[samples.len() / 2..];
        let (hz, _) = tone::dominant_hz(tail, &[440.0, 660.0, 1000.0], SAMPLE_RATE).unwrap();
        assert_eq!(
            hz, 660.0,
            "round {round}: the robot hears the client's 660 Hz"
        );
        client.stop_audio().await.expect("mic off");
        // Video goes on across each renegotiation.
        for _ in 0..5 {
            within("video after a renegotiation", video.recv())
                .await
                .expect("the video track goes on");
        }
        let media = robot.robot.peers()[0].media;
        assert_eq!(media.renegotiations, 2 * round, "{media:?}");
        // And so does the robot's sound.
        while robot_sound.try_recv().is_ok() {}
        within(
            "the robot's sound after a renegotiation",
            robot_sound.recv(),
        )
        .await
        .expect("the robot's audio goes on");
    }
    // The speaker (a WAV file) played it: 660 Hz in what it wrote.
    let played = robot.robot.incoming_audio().counters();
    assert!(played.played_blocks >= 25, "{played:?}");
    assert_eq!(played.decode_errors, 0, "{played:?}");
    let samples: Vec<i16> = hound::WavReader::open(&wav)
        .expect("the speaker's WAV reads")
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let loud: Vec<i16> = samples
        .iter()
        .copied()
        .filter(|s| i32::from(*s).abs() > 1000)
        .collect();
    let (hz, _) = tone::dominant_hz(&loud, &[440.0, 660.0, 1000.0], SAMPLE_RATE).unwrap();
    assert_eq!(hz, 660.0);
    assert!(
        robot.robot.peers()[0].connected,
        "the session never dropped"
    );
}

#[tokio::test]
async fn an_answer_the_robot_did_not_ask_for_is_refused() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(false).await;
    let bogus = shared_protocol::Control::Negotiate(shared_protocol::SessionDescription::answer(
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    ));
    client.send_text(&bogus.to_text()).await.unwrap();
    let message = common::recv_until(&mut client, "the refusal", |t| match t {
        shared_protocol::Telemetry::Error { message } => Some(message),
        _ => None,
    })
    .await;
    assert!(message.contains("no offer"), "{message}");
    // A malformed offer gets an error too, and the session goes on.
    let garbage =
        r#"{"type":"negotiate","description":{"type":"offer","sdp":"v=0\r\nm=audio x\r\n"}}"#;
    client.send_text(garbage).await.unwrap();
    let message = common::recv_until(&mut client, "the second refusal", |t| match t {
        shared_protocol::Telemetry::Error { message } => Some(message),
        _ => None,
    })
    .await;
    assert!(!message.is_empty());
    client
        .send(&shared_protocol::Control::Ping(shared_protocol::Ping {
            id: 1,
            t: 0.0,
        }))
        .await
        .unwrap();
    common::recv_until(&mut client, "a pong after the refusals", |t| {
        matches!(t, shared_protocol::Telemetry::Pong(_)).then_some(())
    })
    .await;
}

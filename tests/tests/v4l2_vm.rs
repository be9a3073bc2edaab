//! Real V4L2 drivers, on a machine without camera or codec: the kernel's `vivid`
//! (a virtual camera) and `vicodec` (a stateful memory-to-memory encoder, the
//! reference driver of the API the Raspberry Pi's H.264 encoder speaks) run inside a
//! small VM that `scripts/v4l2-vm.sh` boots with Debian's kernel.
//!
//! The test on the host boots the VM with this very test binary inside and runs the
//! `#[ignore]`d tests below there (`RTCBOT_IN_VM=1`); they open the devices through
//! the robot's own code: the camera module captures from vivid, and the hardware
//! encoder backend encodes through vicodec's OUTPUT and CAPTURE queues (vicodec makes
//! FWHT, not H.264: the codec is the backend's one parameter). The same VM loads
//! `snd-aloop`, the kernel's ALSA loopback sound card, for the robot's real ALSA
//! capture and playback.

mod common;
use common::*;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtcbot::video::encoder::m2m::{self, M2mEncoder};
use rtcbot::video::source::v4l2::{list_cameras, open_camera, OpenedCamera};
use rtcbot::video::{EncodedFrame, EncoderSettings, VideoEncoder};
use rtcbot::video::{Frame, TestPattern, VideoSource};
use std::path::Path;
use std::process::Command;

const FWHT: [u8; 4] = *b"FWHT";

// The VM boots Debian's amd64 kernel: elsewhere the test is counted as ignored (on a
// Pi, the real devices are there instead).
#[test]
#[cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    ignore = "the V4L2 test VM needs an x86_64 Linux host"
)]
fn camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("bash")
        .arg(root.join("scripts/v4l2-vm.sh"))
        .args(["--env", "RTCBOT_IN_VM=1", "--env", "RUST_BACKTRACE=1"])
        // alsa-lib's configuration, for device names such as plughw:Loopback,1,0.
        .args(["--file", "/usr/share/alsa:/usr/share/alsa", "--"])
        .arg(&exe)
        .args(["--ignored", "--test-threads=1", "--nocapture", "in_vm_"])
        .output()
        .expect("running scripts/v4l2-vm.sh (bash)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the tests inside the VM failed ({}):\n{text}",
        out.status
    );
    // Both ran and passed: not filtered out, not skipped.
    assert!(
        text.contains("test result: ok. 4 passed"),
        "expected 4 tests to pass inside the VM:\n{text}"
    );
}

fn in_vm() {
    assert_eq!(
        std::env::var("RTCBOT_IN_VM").as_deref(),
        Ok("1"),
        "this test drives V4L2 devices: it runs inside the VM of \
         camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers"
    );
}

/// Every picture `encoder` makes from `frames`, in order.
fn encode_all(encoder: &mut dyn VideoEncoder, frames: &[Frame]) -> Vec<EncodedFrame> {
    let mut out = Vec::new();
    for frame in frames {
        if let Some(picture) = encoder.encode(frame, false).expect("encoding") {
            out.push(picture);
        }
        while let Some(late) = encoder.next_ready() {
            out.push(late);
        }
    }
    out
}

/// Width, height and whether it is an I-frame, from a vicodec FWHT header: big-endian
/// words after two magic words and the version; flags is word 5, and
/// `V4L2_FWHT_FL_I_FRAME` is bit 10 (vicodec marks I-frames there, not in the buffer
/// flags).
fn fwht_header(picture: &[u8]) -> (u32, u32, bool) {
    assert_eq!(
        &picture[..8],
        &[0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff]
    );
    let word = |i: usize| u32::from_be_bytes(picture[i * 4..i * 4 + 4].try_into().unwrap());
    (word(3), word(4), word(5) & (1 << 10) != 0)
}

#[test]
#[ignore = "runs inside the V4L2 VM (camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers)"]
fn in_vm_hardware_encoder_backend_encodes_through_vicodec() {
    in_vm();
    // Discovery: vicodec's encoder node is found for its codec, and refused for H.264
    // with the reason.
    let path = m2m::find_encoder(FWHT).expect("vicodec's encoder node");
    let desc = m2m::describe(&path).unwrap();
    println!("encoder {}: {desc:?}", path.display());
    assert_eq!(desc.driver, "vicodec");
    let err = m2m::find_encoder(m2m::H264).unwrap_err().to_string();
    assert!(err.contains("does not produce H264"), "{err}");

    let settings = EncoderSettings {
        bitrate_kbps: 1000,
        fps: 30,
        keyframe_interval: 8,
        temporal_layers: 1,
    };
    let mut encoder = M2mEncoder::open(&path, FWHT, 640, 480, settings).expect("opening vicodec");
    let frames = TestPattern::new(640, 480).unwrap().record(40).unwrap();
    let pictures = encode_all(&mut encoder, &frames);
    let intra: Vec<bool> = pictures.iter().map(|p| fwht_header(&p.data).2).collect();
    println!(
        "vicodec: {} frames in, {} pictures out, I-frames at {:?}, {} skipped, sizes {:?}",
        frames.len(),
        pictures.len(),
        (0..intra.len()).filter(|&i| intra[i]).collect::<Vec<_>>(),
        encoder.skipped(),
        pictures
            .iter()
            .map(|p| p.data.len())
            .take(12)
            .collect::<Vec<_>>()
    );
    // Every frame came back, in order, with its own number and capture time.
    assert_eq!(pictures.len(), frames.len());
    for (picture, frame) in pictures.iter().zip(&frames) {
        assert_eq!(picture.number, frame.number);
        assert_eq!(picture.capture_us, frame.capture_us);
        let (w, h, _) = fwht_header(&picture.data);
        assert_eq!((w, h), (640, 480));
    }
    // The GOP control took (vicodec's own default is 10): an I-frame every 8 pictures,
    // and P pictures of a mostly still pattern are smaller than the I-frame.
    let expected: Vec<bool> = (0..intra.len()).map(|i| i % 8 == 0).collect();
    assert_eq!(intra, expected);
    let p_sizes: Vec<usize> = (1..intra.len())
        .filter(|&i| !intra[i])
        .map(|i| pictures[i].data.len())
        .collect();
    assert!(!p_sizes.is_empty(), "{intra:?}");
    assert!(
        p_sizes.iter().all(|&s| s < pictures[0].data.len()),
        "{p_sizes:?}"
    );
    // Pictures differ with the content: the pattern moves.
    assert_ne!(pictures[1].data, pictures[2].data);

    // A frame of the wrong size is a clear error, not a crash, and the encoder goes on.
    let err = encoder
        .encode(&Frame::new(320, 240), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("frame is 320x240"), "{err}");
    let more = encode_all(&mut encoder, &frames[..5]);
    assert_eq!(more.len(), 5);
    drop(encoder);
    // A size the hardware cannot do is refused with both sizes named (vicodec's
    // smallest is 640x360), and closing freed the device: it opens again.
    let err = M2mEncoder::open(&path, FWHT, 320, 240, settings)
        .err()
        .expect("320x240 is below vicodec's minimum")
        .to_string();
    assert!(
        err.contains("asked for YU12 320x240, the driver chose YU12 640x"),
        "{err}"
    );
    M2mEncoder::open(&path, FWHT, 640, 480, settings).expect("reopening vicodec");
}

#[test]
#[ignore = "runs inside the V4L2 VM (camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers)"]
fn in_vm_camera_captures_from_vivid_and_feeds_the_hardware_encoder() {
    in_vm();
    let cameras = list_cameras();
    println!(
        "cameras: {:?}",
        cameras
            .iter()
            .map(|c| (&c.path, &c.name, c.options.len()))
            .collect::<Vec<_>>()
    );
    let vivid = cameras
        .iter()
        .find(|c| c.name.contains("vivid"))
        .expect("vivid's capture node among the cameras");
    let OpenedCamera::Raw(mut camera) = open_camera(&vivid.path, (640, 480), 30).unwrap() else {
        panic!("vivid gives raw frames, not H.264");
    };
    assert_eq!(camera.size(), (640, 480));
    let mut frames = Vec::new();
    for _ in 0..10 {
        let mut frame = Frame::new(640, 480);
        camera.capture(&mut frame).expect("capturing from vivid");
        frames.push(frame);
    }
    // vivid draws colour bars: the luma is far from flat and the chroma is coloured.
    let y = frames[0].y();
    let (lo, hi) = (y.iter().min().unwrap(), y.iter().max().unwrap());
    assert!(hi - lo > 100, "luma range {lo}..{hi}");
    assert!(frames[0].u().iter().any(|&u| !(118..=138).contains(&u)));

    // Camera → hardware encoder, as the robot wires them.
    let path = m2m::find_encoder(FWHT).unwrap();
    let settings = EncoderSettings {
        bitrate_kbps: 1000,
        fps: 30,
        keyframe_interval: 30,
        temporal_layers: 1,
    };
    let mut encoder = M2mEncoder::open(&path, FWHT, 640, 480, settings).unwrap();
    let pictures = encode_all(&mut encoder, &frames);
    assert_eq!(pictures.len(), frames.len());
    // Congestion control's bitrate while streaming: vicodec has no bitrate control, so
    // it says so and the stream goes on (the Pi's codec takes it).
    let took = encoder.set_bitrate(500);
    let more: Vec<Frame> = (0..10)
        .map(|_| {
            let mut frame = Frame::new(640, 480);
            camera.capture(&mut frame).expect("capturing from vivid");
            frame
        })
        .collect();
    let after = encode_all(&mut encoder, &more);
    assert_eq!(after.len(), more.len(), "pictures after a new bitrate");
    println!(
        "vivid → vicodec: {} pictures, first {} bytes; a new bitrate taken: {took}",
        pictures.len(),
        pictures[0].data.len()
    );
}

#[test]
#[ignore = "runs inside the V4L2 VM (camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers)"]
fn in_vm_robot_streams_the_vivid_camera_to_a_webrtc_client() {
    in_vm();
    // The VM boots with loopback down; WebRTC here stays on it.
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("busybox ip");
    assert!(up.success(), "ip link set lo up: {up}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        // `encoder = "hardware"` where the only M2M encoder makes FWHT: the robot
        // refuses to start and says why.
        let mut config = rtcbot::Config::default();
        config.video.camera = "test-pattern".parse().unwrap();
        config.video.encoder = rtcbot::config::EncoderChoice::Hardware;
        let err = rtcbot::Robot::start(config)
            .err()
            .expect("no H.264 encoder here");
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(
            text.contains("video.encoder = \"hardware\"") && text.contains("does not produce H264"),
            "{text}"
        );

        // The whole robot, as a user runs it with a webcam: camera auto-detected,
        // raw frames encoded once (openh264: vicodec makes no H.264), sent over WebRTC.
        let robot = TestRobot::start_with(|c| {
            c.video.camera = "auto".parse().unwrap();
            c.video.fps = 25;
        })
        .await;
        let mut client = robot.client(true).await;
        let stats = recv_until(&mut client, "stream stats", |m| match m {
            shared_protocol::Telemetry::Stats(s) if s.frames_encoded > 0 => Some(s),
            _ => None,
        })
        .await;
        println!("robot stats: {stats:?}");
        assert!(
            stats.encoder.starts_with("/dev/video0"),
            "{}",
            stats.encoder
        );
        assert!(stats.encoder.ends_with("/openh264"), "{}", stats.encoder);
        assert_eq!((stats.width, stats.height), (640, 480));

        let mut video = client.take_video().expect("video track");
        let mut decoder = Decoder::new().unwrap();
        let mut pictures = 0;
        within("decoded pictures of the vivid camera", async {
            while pictures < 5 {
                let frame = video.recv().await.expect("video stream ended");
                let Ok(Some(picture)) = decoder.decode(&frame.data) else {
                    continue;
                };
                assert_eq!(picture.dimensions(), (640, 480));
                let (stride, _, _) = picture.strides();
                let row: Vec<u8> = picture.y()[stride * 100..stride * 100 + 640].to_vec();
                let (lo, hi) = (row.iter().min().unwrap(), row.iter().max().unwrap());
                assert!(hi - lo > 100, "colour bars expected, luma {lo}..{hi}");
                pictures += 1;
            }
        })
        .await;
        println!("decoded {pictures} pictures of the vivid camera");
    });
}

/// Plays `source` into the ALSA device `device` until `stop` is set.
fn play_into(
    device: &str,
    mut source: Box<dyn rtcbot::audio::AudioSource>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut sink = rtcbot::audio::alsa::open_playback(device).expect("the loopback's playback");
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let block = source.read().expect("the test's source");
            sink.write(&block.samples)
                .expect("writing into the loopback");
        }
    })
}

#[test]
#[ignore = "runs inside the V4L2 VM (camera_and_hardware_encoder_code_runs_on_real_v4l2_drivers)"]
fn in_vm_robot_captures_and_plays_through_the_alsa_loopback() {
    use rtcbot::audio::{alsa, tone, AudioSinkSpec, AudioSourceSpec, SAMPLE_RATE};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    in_vm();
    let pcm = std::fs::read_to_string("/proc/asound/pcm").expect("snd-aloop is loaded");
    println!("{pcm}");
    // `auto` finds the loopback card, as it would a USB microphone.
    assert!(alsa::first_device(alsa::Direction::Capture).is_some());
    // A device that does not exist is refused with its name.
    let err = alsa::open_capture("plughw:Nonesuch,0")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Nonesuch"), "{err}");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        // What the test plays into the loopback's device 0 the robot captures from
        // device 1; what the robot plays into device 0 subdevice 1 the test reads
        // back from device 1 subdevice 1.
        let stop = Arc::new(AtomicBool::new(false));
        let player = play_into(
            "plughw:Loopback,0,0",
            Box::new(rtcbot::audio::source::ToneSource::default()),
            stop.clone(),
        );
        let robot = TestRobot::start_with(|c| {
            c.audio.source = AudioSourceSpec::Alsa("plughw:Loopback,1,0".into());
            c.audio.speaker = AudioSinkSpec::Alsa("plughw:Loopback,0,1".into());
            c.audio.play_from = rtcbot::audio::PlayFrom::Everyone;
        })
        .await;
        let mut client = robot
            .client_with(rtcbot::rtc::ClientOptions {
                video: false,
                audio: true,
                ..rtcbot::rtc::ClientOptions::default()
            })
            .await;
        let mut packets = client.take_audio().unwrap();
        let mut decoder = rtcbot::audio::codec::OpusDecoder::new().unwrap();
        let mut heard = Vec::new();
        within("the robot's ALSA capture over WebRTC", async {
            while heard.len() < 100 * 960 {
                let packet = packets.recv().await.expect("audio goes on");
                heard.extend_from_slice(decoder.decode(&packet.data).unwrap());
            }
        })
        .await;
        let (hz, power) = tone::dominant_hz(&heard, &[440.0, 660.0, 1000.0], SAMPLE_RATE).unwrap();
        println!("the client heard {hz} Hz (power {power}) captured from ALSA");
        assert_eq!(hz, tone::TONE_HZ);
        stop.store(true, Ordering::Relaxed);
        player.join().unwrap();

        // The client's microphone (660 Hz) plays on the robot's ALSA speaker.
        let mut capture =
            alsa::open_capture("plughw:Loopback,1,1").expect("the loopback's capture");
        client
            .start_audio(Sine::new(660.0))
            .await
            .expect("the microphone starts");
        let played = tokio::task::spawn_blocking(move || {
            let mut samples = Vec::new();
            // Up to 10 s of capture for 1 s of the sine.
            for _ in 0..500 {
                let block = match capture.read() {
                    Ok(block) => block,
                    Err(err) => {
                        println!("reading the loopback: {err}");
                        break;
                    }
                };
                if tone::mean_square(&block.samples) > 0.005 {
                    samples.extend_from_slice(&block.samples);
                }
                if samples.len() >= 50 * 960 {
                    break;
                }
            }
            samples
        })
        .await
        .unwrap();
        let counters = robot.robot.incoming_audio().counters();
        assert!(
            played.len() >= 50 * 960,
            "the speaker played {} loud samples ({counters:?})",
            played.len()
        );
        let (hz, _) = tone::dominant_hz(&played, &[440.0, 660.0, 1000.0], SAMPLE_RATE).unwrap();
        println!("the robot's ALSA speaker played {hz} Hz");
        assert_eq!(hz, 660.0);
        let counters = robot.robot.incoming_audio().counters();
        assert!(counters.played_blocks >= 50, "{counters:?}");
    });
}

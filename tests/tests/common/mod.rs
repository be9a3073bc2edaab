//! Shared set-up for the end-to-end tests: a real robot on a port-0 server and real
//! WebRTC client peers.
#![allow(dead_code)]

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtcbot::rtc::{ClientOptions, ReceivedFrame, RobotClient};
use rtcbot::{Config, Robot};
use shared_protocol::{Stamp, Telemetry};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a timed run lasts: `var` (seconds) for a quick local run, else `default`.
pub fn seconds_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Generous bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(20);

/// A robot serving on 127.0.0.1 with a random port.
pub struct TestRobot {
    pub robot: Robot,
    pub addr: SocketAddr,
}

impl TestRobot {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let mut config = Self::config();
        edit(&mut config);
        Self::serve(Robot::start(config).expect("robot starts")).await
    }

    /// The tests' configuration: loopback HTTP and ICE, the test pattern.
    pub fn config() -> Config {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.webrtc.ice_udp = vec!["127.0.0.1:0".into()];
        // Never a real camera in tests, even on a machine that has one.
        config.video.camera = "test-pattern".parse().unwrap();
        // Nor a real sound card.
        config.audio.source = rtcbot::audio::AudioSourceSpec::None;
        config.audio.speaker = rtcbot::audio::AudioSinkSpec::None;
        config
    }

    /// Serves `robot` (made with [`TestRobot::config`], or a builder over it).
    pub async fn serve(robot: Robot) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // With the caller's address, as `rtcbot::serve` does (it bounds connecting peers).
        let app = rtcbot::router(robot.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { robot, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn client(&self, video: bool) -> RobotClient {
        self.client_with(ClientOptions {
            video,
            ..ClientOptions::default()
        })
        .await
    }

    pub async fn client_with(&self, options: ClientOptions) -> RobotClient {
        within(
            "the client to connect",
            RobotClient::connect(&self.url("/connect"), options),
        )
        .await
        .expect("client connects")
    }
}

/// A sine at `hz` (amplitude 0.3 of full scale), paced like a microphone.
pub struct Sine {
    hz: f64,
    pacer: rtcbot::audio::source::Pacer,
    n: u64,
}

impl Sine {
    pub fn new(hz: f64) -> Box<Self> {
        Box::new(Self {
            hz,
            pacer: rtcbot::audio::source::Pacer::new(),
            n: 0,
        })
    }
}

impl rtcbot::audio::AudioSource for Sine {
    fn name(&self) -> String {
        format!("sine {} Hz", self.hz)
    }

    fn read(&mut self) -> Result<rtcbot::audio::AudioBlock, rtcbot::audio::AudioError> {
        let (wall_us, captured) = self.pacer.wait();
        let rate = f64::from(rtcbot::audio::SAMPLE_RATE);
        let samples = (0..rtcbot::audio::FRAME_SAMPLES)
            .map(|_| {
                self.n += 1;
                let t = self.n as f64 / rate;
                ((2.0 * std::f64::consts::PI * self.hz * t).sin() * 0.3 * 32767.0) as i16
            })
            .collect();
        Ok(rtcbot::audio::AudioBlock {
            samples,
            captured,
            wall_us,
        })
    }
}

/// Awaits `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Waits until the serial link is open.
pub async fn connected(serial: &rtcbot::serial::SerialConnection) {
    let mut state = serial.state();
    within(
        "the serial link to connect",
        state.wait_for(|s| *s == rtcbot::serial::LinkState::Connected),
    )
    .await
    .unwrap();
}

/// Polls `check` until it is true, failing with `what` after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Receives telemetry until `pick` accepts one.
pub async fn recv_until<T>(
    client: &mut RobotClient,
    what: &str,
    mut pick: impl FnMut(Telemetry) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            let msg = client
                .recv()
                .await
                .unwrap_or_else(|| panic!("channel closed waiting for {what}"));
            if let Some(found) = pick(msg) {
                return found;
            }
        }
    })
    .await
}

/// Decodes received frames and returns the stamps read from the first `count` pictures.
pub async fn decode_stamps(video: &mut mpsc::Receiver<ReceivedFrame>, count: usize) -> Vec<Stamp> {
    let mut decoder = Decoder::new().expect("openh264 decoder");
    let mut stamps = Vec::new();
    within("decoded video frames", async {
        while stamps.len() < count {
            let frame = video.recv().await.expect("video stream ended");
            let Ok(Some(picture)) = decoder.decode(&frame.data) else {
                continue;
            };
            let (w, h) = picture.dimensions();
            let (stride, _, _) = picture.strides();
            let y = picture.y();
            let stamp = Stamp::read(w, h, |x, yy| y[yy * stride + x])
                .unwrap_or_else(|| panic!("decoded {w}x{h} picture carries no stamp"));
            stamps.push(stamp);
        }
    })
    .await;
    stamps
}

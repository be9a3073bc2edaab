//! The robot binary as a new user meets it: the block it prints on start (its URLs
//! with the token, the certificate's fingerprints), tokens and roles on `/connect`,
//! the per-address quota, and HTTPS with plain HTTP redirected. Real processes, real
//! WebRTC peers (the Rust client), real TLS.

use rtcbot::protocol::{Control, DriveState, Telemetry};
use rtcbot::{ClientOptions, RobotClient};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const VIEWER: &str = "viewer-token-for-the-first-run-test";

/// A running `rtcbot-robot` and the block it printed.
struct Robot {
    child: Child,
    /// The lines up to and including `Stop`.
    block: Vec<String>,
    state: std::path::PathBuf,
}

impl Drop for Robot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

impl Robot {
    /// Starts the binary on every address (port 0) with a fresh state folder and
    /// `args`, and reads its start-up block from stdout.
    fn start(name: &str, args: &[&str]) -> Self {
        let state =
            std::env::temp_dir().join(format!("rtcbot-first-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtcbot-robot"))
            .args([
                "--listen",
                "0.0.0.0:0",
                "--ice-udp",
                "127.0.0.1:0",
                "--www",
                "/nonexistent-www",
            ])
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("ROBOT_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running rtcbot-robot");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut block = Vec::new();
        loop {
            match rx.recv_timeout(WAIT) {
                Ok(line) => {
                    let done = line.trim_start().starts_with("Stop");
                    block.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => panic!("no start-up block ending in Stop within {WAIT:?}: {block:#?}"),
            }
        }
        Self {
            child,
            block,
            state,
        }
    }

    /// The value after `  key  ` in the block.
    fn fact(&self, key: &str) -> &str {
        self.block
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("no {key} line in {:#?}", self.block))
    }

    /// The URL printed for this machine.
    fn local_url(&self) -> String {
        self.fact("On this machine:").to_owned()
    }

    /// `/connect` beside the page URL, the token kept in its query.
    fn connect_url(&self) -> String {
        let url = self.local_url();
        let (base, query) = url
            .split_once("/?")
            .unwrap_or((url.trim_end_matches('/'), ""));
        if query.is_empty() {
            format!("{base}/connect")
        } else {
            format!("{base}/connect?{query}")
        }
    }

    fn token(&self) -> String {
        let url = self.local_url();
        url.split_once("?token=")
            .expect("a token in the URL")
            .1
            .to_owned()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Waits for the next message `want` accepts.
async fn until<T>(
    client: &mut RobotClient,
    what: &str,
    want: impl Fn(Telemetry) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match client.recv().await {
                Some(t) => {
                    if let Some(found) = want(t) {
                        return found;
                    }
                }
                None => panic!("the robot closed before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

/// The next error message, within [`WAIT`].
async fn refusal(client: &mut RobotClient, what: &str) -> String {
    until(client, what, |t| match t {
        Telemetry::Error { message } => Some(message),
        _ => None,
    })
    .await
}

async fn drive_of(client: &reqwest::Client, health_url: &str) -> serde_json::Value {
    let health: serde_json::Value = client
        .get(health_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["drive"].clone()
}

/// Polls `/health` until the drive's `forward` is `forward`.
/// (through `client`, which must trust the robot's certificate for an https URL).
async fn wait_forward(client: &reqwest::Client, health_url: &str, forward: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let drive = drive_of(client, health_url).await;
        if drive["forward"].as_f64() == Some(forward) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drive never reached forward {forward}: {drive}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn drive(forward: f64, seq: u64) -> Control {
    Control::Drive(DriveState::new(forward, 0.0, seq).unwrap())
}

fn options() -> ClientOptions {
    ClientOptions {
        video: false,
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_url_drives_and_nothing_else_gets_in() {
    let robot = Robot::start(
        "auth",
        &["--no-tls", "--auth-token", &format!("viewer:{VIEWER}")],
    );
    // The block: a URL for this machine with the generated token, which is kept.
    let url = robot.local_url();
    assert!(url.starts_with("http://localhost:"), "{url}");
    let token = robot.token();
    assert_eq!(token.len(), 32, "{url}");
    let kept = std::fs::read_to_string(robot.state.join("driver-token")).unwrap();
    assert_eq!(kept.trim(), token);
    assert!(
        robot.fact("Auth").contains("generated now"),
        "{:#?}",
        robot.block
    );
    assert!(robot.fact("HTTPS").starts_with("off"), "{:#?}", robot.block);
    let base = url.split("/?").next().unwrap().to_owned();
    let health = format!("{base}/health");
    let page = http().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the printed URL opens");

    // Without a token, or with a wrong one: 401.
    let connect = format!("{base}/connect");
    let offer = r#"{"type":"offer","sdp":"v=0\r\n"}"#;
    let response = http().post(&connect).body(offer).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"rtcbot\""
    );
    let response = http()
        .post(&connect)
        .bearer_auth("not-this-robots-token-at-all")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let err = RobotClient::connect(&connect, options())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");

    // A viewer connects but its drive states are refused, with a reason.
    let mut viewer = RobotClient::connect(
        &connect,
        ClientOptions {
            token: Some(VIEWER.into()),
            ..options()
        },
    )
    .await
    .expect("a viewer connects");
    viewer.send(&drive(0.5, 1)).await.unwrap();
    let refusal = refusal(&mut viewer, "the viewer's refusal").await;
    assert!(refusal.contains("you connected as a viewer"), "{refusal}");
    assert_eq!(drive_of(&http(), &health).await["forward"], 0.0);

    // The printed URL's token drives (here in the query, as the page sends it).
    let driver = RobotClient::connect(&robot.connect_url(), options())
        .await
        .expect("the printed token connects");
    driver.send(&drive(0.5, 1)).await.unwrap();
    wait_forward(&http(), &health, 0.5).await;
    driver.send(&drive(0.0, 2)).await.unwrap();
    wait_forward(&http(), &health, 0.0).await;
    driver.close().await;
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_connects_from_one_address_get_429_while_another_gets_in() {
    let robot = Robot::start("quota", &["--no-tls"]);
    let token = robot.token();
    let port = robot
        .local_url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let bad_offer = "{";
    let mut statuses = Vec::new();
    let one = from([127, 0, 0, 1]);
    for _ in 0..50 {
        let response = one
            .post(format!("http://127.0.0.1:{port}/connect"))
            .bearer_auth(&token)
            .body(bad_offer)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // The default quota: a burst of 20, then one a second.
    assert!(refused >= 25, "{refused} of 50 got 429: {statuses:?}");
    assert!(
        statuses[..20].iter().all(|s| *s == 400),
        "the burst passes the gate: {statuses:?}"
    );
    // Another address is not held up: it connects and drives.
    let other = RobotClient::connect(
        &format!("http://127.0.0.2:{port}/connect"),
        ClientOptions {
            token: Some(token.clone()),
            http_local_address: Some([127, 0, 0, 2].into()),
            ..options()
        },
    )
    .await
    .expect("another address connects while 127.0.0.1 is over its quota");
    other.send(&drive(0.5, 1)).await.unwrap();
    wait_forward(&http(), &format!("http://127.0.0.1:{port}/health"), 0.5).await;
    // ... while 127.0.0.1 still gets 429.
    let again = one
        .post(format!("http://127.0.0.1:{port}/connect"))
        .bearer_auth(&token)
        .body(bad_offer)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 429);
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_kept_certificate_and_plain_http_redirects() {
    // HTTPS is the binary's default.
    let robot = Robot::start("tls", &[]);
    let url = robot.local_url();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let https = robot.fact("HTTPS").to_owned();
    assert!(https.contains("certificate SHA-256 "), "{https}");
    assert!(https.contains("SPKI pin "), "{https}");
    let cert = std::fs::read(robot.state.join("tls/cert.pem")).expect("the kept certificate");

    // A client trusting the printed certificate loads the page...
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = trusting
        .get(&url)
        .send()
        .await
        .expect("HTTPS with the robot's certificate");
    assert_eq!(page.status(), 200);
    // ... one that does not is refused by TLS, not served.
    assert!(
        http().get(&url).send().await.is_err(),
        "an untrusted certificate must fail"
    );

    // Plain HTTP on the same port: a redirect to the same place over HTTPS.
    let plain = url.replacen("https://", "http://", 1);
    let response = http().get(&plain).send().await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], url.as_str());

    // The Rust client connects over HTTPS with the certificate and drives.
    let client = RobotClient::connect(
        &robot.connect_url(),
        ClientOptions {
            robot_certificate: Some(cert.clone()),
            ..options()
        },
    )
    .await
    .expect("connects over HTTPS");
    client.send(&drive(0.25, 1)).await.unwrap();
    let health = format!("{}/health", url.split("/?").next().unwrap());
    wait_forward(&trusting, &health, 0.25).await;
    client.close().await;
}

const ADMIN: &str = "admin-token-for-the-first-run-test";
const DRIVER: &str = "driver-token-for-the-first-run-test";

/// Decodes `video` until a picture of `size`, within [`WAIT`].
async fn decoded_size(
    video: &mut tokio::sync::mpsc::Receiver<rtcbot::rtc::client::ReceivedFrame>,
    decoder: &mut openh264::decoder::Decoder,
    size: (usize, usize),
) {
    use openh264::formats::YUVSource;
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let frame = video.recv().await.expect("the video went on");
            if let Ok(Some(picture)) = decoder.decode(&frame.data) {
                let dims = picture.dimensions();
                if dims == size {
                    return;
                }
                if seen.last() != Some(&dims) {
                    seen.push(dims);
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no decoded {size:?} picture within {WAIT:?} (saw {seen:?})"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_the_resolution_and_the_viewer_sees_it_without_reconnecting() {
    let robot = Robot::start(
        "settings",
        &[
            "--no-tls",
            "--auth-token",
            &format!("admin:{ADMIN}"),
            "--auth-token",
            &format!("driver:{DRIVER}"),
            "--width",
            "640",
            "--height",
            "480",
        ],
    );
    let connect = robot.connect_url();
    let mut admin = RobotClient::connect(
        connect.split('?').next().unwrap(),
        ClientOptions {
            token: Some(ADMIN.into()),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("the admin connects");
    let mut video = admin.take_video().expect("video");
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    decoded_size(&mut video, &mut decoder, (640, 480)).await;

    // Each peer is told the settings in force and the cameras when it connects.
    let told = until(&mut admin, "the settings at connection", |t| match t {
        Telemetry::Settings(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(
        (told.width, told.height, told.fps),
        (Some(640), Some(480), Some(30))
    );
    let cameras = told.cameras.unwrap_or_default();
    assert!(
        cameras.iter().any(|c| c == "test-pattern:noisy"),
        "{cameras:?}"
    );

    // A driver may not; a bad size is refused with the setting named.
    let mut driver = RobotClient::connect(
        connect.split('?').next().unwrap(),
        ClientOptions {
            token: Some(DRIVER.into()),
            ..options()
        },
    )
    .await
    .unwrap();
    let smaller = Control::Settings(rtcbot::protocol::VideoSettings {
        width: Some(320),
        height: Some(240),
        ..Default::default()
    });
    driver.send(&smaller).await.unwrap();
    let refused = refusal(&mut driver, "the driver's refusal").await;
    assert!(refused.contains("need an admin's token"), "{refused}");
    let odd = Control::Settings(rtcbot::protocol::VideoSettings {
        width: Some(321),
        ..Default::default()
    });
    admin.send(&odd).await.unwrap();
    let refused = refusal(&mut admin, "the bad size's refusal").await;
    assert!(refused.contains("video.width"), "{refused}");

    // The admin's change: every peer hears the settings in force, and the same
    // connection's decoded pictures change size.
    admin.send(&smaller).await.unwrap();
    let applied = until(&mut driver, "the new settings in force", |t| match t {
        Telemetry::Settings(s) if s.width == Some(320) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!((applied.width, applied.height), (Some(320), Some(240)));
    decoded_size(&mut video, &mut decoder, (320, 240)).await;
    let stats = until(&mut admin, "stats at the new size", |t| match t {
        Telemetry::Stats(s) if s.width == 320 => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(stats.height, 240);

    // Another camera, live: the noisy test pattern, at the size in force.
    let noisy = Control::Settings(rtcbot::protocol::VideoSettings {
        camera: Some("test-pattern:noisy".into()),
        ..Default::default()
    });
    admin.send(&noisy).await.unwrap();
    let applied = until(&mut driver, "the camera in force", |t| match t {
        Telemetry::Settings(s) if s.camera.as_deref() == Some("test-pattern:noisy") => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(applied.width, Some(320));
    decoded_size(&mut video, &mut decoder, (320, 240)).await;
    // A camera that does not open: refused, and the one in force goes on.
    let missing = Control::Settings(rtcbot::protocol::VideoSettings {
        camera: Some("/dev/video-none".into()),
        ..Default::default()
    });
    admin.send(&missing).await.unwrap();
    let refused = refusal(&mut admin, "the missing camera's refusal").await;
    assert!(refused.contains("kept the ones before"), "{refused}");
    decoded_size(&mut video, &mut decoder, (320, 240)).await;
    admin.close().await;
    driver.close().await;
}

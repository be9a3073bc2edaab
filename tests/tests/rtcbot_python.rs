//! Compatibility with the real RTCBot (Python, from PyPI, on aiortc) through our relay:
//!
//! - RTCBot's own robot code from its "Connecting over 4G" tutorial
//!   (`tests/python/rtcbot_robot.py`) takes a room of `rtcbot-relay` with its
//!   `Websocket` and answers the offer it receives there with its `RTCConnection`; our
//!   Rust client POSTs its offer to the room, decodes the robot's H.264 (aiortc
//!   encodes H.264 since our offer has no other codec) and reads back the frame stamps
//!   the Python camera painted; a data-channel message goes there and back;
//! - our robot in a relay room answers a stock RTCBot client
//!   (`tests/python/rtcbot_client.py`: `getLocalDescription()` POSTed with aiohttp to
//!   the room), which decodes our video with aiortc and reads our frame stamps from its
//!   pixels; a data-channel message goes each way.
//!
//! The scripts run in the venv `bash scripts/python-env.sh` makes (`target/pyenv`,
//! pinned in `tests/python/requirements.txt`); without it the tests fail under
//! `CI=true` and are skipped (saying how to make it) elsewhere. The scripts print
//! their events as lines on stdout, which the tests wait on; a failing test prints
//! what each script said.

mod common;

use common::{decode_stamps, recv_until, within, TestRobot};
use rtcbot::relay::RelayConfig;
use rtcbot::rtc::{ClientOptions, RobotClient};
use serde_json::{json, Value};
use shared_protocol::{Control, Telemetry};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// How long a script gets for each thing the test waits on.
const LINE_WAIT: Duration = Duration::from_secs(15);

/// The venv's Python, or `None` (the test skips) when it is missing outside CI.
fn venv_python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let venv = root.join("target/pyenv");
    let python = venv.join("bin/python");
    let wanted = std::fs::read(root.join("tests/python/requirements.txt")).ok();
    let installed = std::fs::read(venv.join(".requirements.txt")).ok();
    if python.exists() && installed.is_some() && installed == wanted {
        return Some(python);
    }
    let why = format!(
        "the RTCBot venv {} is missing or not made from tests/python/requirements.txt: \
         make it with `bash scripts/python-env.sh`",
        venv.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (scripts/test.sh should have run it)");
    }
    eprintln!("skipped: {why}");
    None
}

/// One of the Python scripts, running; killed when dropped. A failing test prints
/// everything it said.
struct Script {
    name: &'static str,
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Its stdout so far, then its stderr (RTCBot's and aiortc's logs, tracebacks).
    stdout: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn spawn(python: &Path, name: &'static str, url: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
        let mut child = tokio::process::Command::new(python)
            .arg("-u")
            .arg(dir.join(name))
            .arg(url)
            .current_dir(&dir)
            // No __pycache__ left in the checkout.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} with {}: {e}", python.display()));
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            name,
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// Waits for the script's next stdout line that `pick` takes.
    async fn line<T>(&mut self, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let found = tokio::time::timeout(LINE_WAIT, async {
            while let Some(line) = self.lines.recv().await {
                self.stdout.push(line);
                if let Some(found) = pick(self.stdout.last().unwrap()) {
                    return Some(found);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                let status = self.child.wait().await;
                panic!("{} ended ({status:?}) before {what}", self.name)
            }
            Err(_) => panic!("{} said nothing of {what} within {LINE_WAIT:?}", self.name),
        }
    }

    /// Waits for the script's event `name` (a JSON line) that `check` accepts.
    async fn event(&mut self, name: &str, check: impl Fn(&Value) -> bool) -> Value {
        let what = format!("its event {name:?}");
        self.line(&what, |line| {
            let event = serde_json::from_str::<Value>(line).ok()?;
            if event["event"] == "error" {
                panic!("it failed: {line}");
            }
            (event["event"] == name && check(&event)).then_some(event)
        })
        .await
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if std::thread::panicking() {
            while let Ok(line) = self.lines.try_recv() {
                self.stdout.push(line);
            }
            let stderr = self.stderr.lock().unwrap();
            eprintln!(
                "--- {} stdout:\n{}\n--- {} stderr:\n{}",
                self.name,
                self.stdout.join("\n"),
                self.name,
                stderr.join("\n")
            );
        }
    }
}

/// A relay on a free port of 127.0.0.1, on the test's runtime.
async fn relay() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(rtcbot_relay::run(
        listener,
        Default::default(),
        std::future::pending(),
    ));
    addr
}

/// aiortc's ICE leaves out loopback addresses: our side gathers on every interface.
fn every_interface() -> Vec<String> {
    vec!["0.0.0.0:0".into()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcbots_4g_tutorial_robot_in_our_relay_room_streams_to_our_client() {
    let Some(python) = venv_python() else { return };
    let relay = relay().await;
    let room = format!("http://{relay}/rtcbot-tutorial");
    let mut robot = Script::spawn(&python, "rtcbot_robot.py", &room);
    robot.event("in_room", |_| true).await;

    let options = ClientOptions {
        ice_udp: every_interface(),
        ..ClientOptions::default()
    };
    let mut client = within(
        "our client to connect to the RTCBot robot",
        RobotClient::connect(&room, options),
    )
    .await
    .expect("our client connects through the room to the RTCBot robot");
    robot
        .line("the tutorial's \"Started WebRTC\"", |l| {
            (l == "Started WebRTC").then_some(())
        })
        .await;

    // The Python camera's frames, encoded by aiortc, decoded here: the stamps it
    // painted read back in order.
    let mut video = client.take_video().expect("video");
    let stamps = decode_stamps(&mut video, 5).await;
    assert!(
        stamps.windows(2).all(|w| w[0].frame < w[1].frame),
        "frames in order: {stamps:?}"
    );

    client
        .send_text(r#"{"hello":"from rtcbot-rs"}"#)
        .await
        .expect("send on the data channel");
    robot
        .event("message", |e| {
            e["data"] == json!({"hello": "from rtcbot-rs"})
        })
        .await;
    let echo = recv_until(&mut client, "the RTCBot robot's echo", |t| match t {
        Telemetry::Json(v) if v.get("echo").is_some() => Some(v),
        _ => None,
    })
    .await;
    assert_eq!(echo["echo"], json!({"hello": "from rtcbot-rs"}));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_robot_in_a_relay_room_answers_a_stock_rtcbot_client() {
    let Some(python) = venv_python() else { return };
    let relay = relay().await;
    let t = TestRobot::start_with(|c| {
        c.relay = Some(RelayConfig::new(format!("ws://{relay}/rtcbot-client")));
        c.webrtc.ice_udp = every_interface();
    })
    .await;
    let mut relay_link = t.robot.relay_state().expect("[relay] is set").changes();
    within(
        "our robot in its room",
        relay_link.wait_for(|s| s.connected),
    )
    .await
    .unwrap();
    let mut messages = t.robot.subscribe();

    let mut client = Script::spawn(
        &python,
        "rtcbot_client.py",
        &format!("http://{relay}/rtcbot-client"),
    );
    client.event("answered", |_| true).await;

    // aiortc decodes our H.264; the client reads our stamps from the pixels.
    let (width, height) = (t.robot.config().video.width, t.robot.config().video.height);
    let mut stamps = Vec::new();
    for _ in 0..5 {
        let frame = client.event("frame", |_| true).await;
        assert_eq!(
            (frame["width"].as_u64(), frame["height"].as_u64()),
            (Some(u64::from(width)), Some(u64::from(height))),
            "{frame}"
        );
        stamps.push(frame["stamp"].as_u64().unwrap_or_else(|| {
            panic!("the RTCBot client read no frame stamp from a decoded frame: {frame}")
        }));
    }
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "frames in order: {stamps:?}"
    );

    // Its message reaches our robot's program, and ours reaches it.
    let from = within("the RTCBot client's message at our robot", async {
        loop {
            let event = messages.recv().await.expect("the robot runs");
            if matches!(&event.control, Control::Json(v) if v["hello"] == "from RTCBot") {
                return event.peer;
            }
        }
    })
    .await;
    t.robot
        .send(from, &Telemetry::Json(json!({"reply": "from rtcbot-rs"})))
        .expect("a reply to the RTCBot client");
    client
        .event("message", |e| {
            e["data"] == json!({"reply": "from rtcbot-rs"})
        })
        .await;
}

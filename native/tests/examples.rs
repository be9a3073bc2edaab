//! The examples in `native/examples/` run as programs against a real WebRTC client.
//! `cargo test -p rtcbot-native` builds them next to this test.

use rtcbot::protocol::Telemetry;
use rtcbot::{ClientOptions, RobotClient};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// An example program, killed on drop.
struct Example {
    child: Child,
    url: String,
    /// What it prints after its address, line by line.
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `target/<profile>/examples/<name>` on a free loopback port.
fn start(name: &str) -> Example {
    // This test runs from target/<profile>/deps/.
    let exe: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target folder")
        .join("examples")
        .join(name);
    assert!(
        exe.is_file(),
        "{} is missing: build it with `cargo build -p rtcbot-native --examples`",
        exe.display()
    );
    let mut child = Command::new(&exe)
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Keep reading, so the program never writes into a closed pipe.
    let (lines, stdout) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name} printed {line:?} instead of its address"))
        .to_owned();
    Example {
        child,
        url: format!("http://{addr}/connect"),
        stdout,
    }
}

async fn next_json(
    client: &mut RobotClient,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    tokio::time::timeout(WAIT, async {
        loop {
            match client.recv().await {
                Some(Telemetry::Json(v)) if want(&v) => return v,
                Some(_) => {}
                None => panic!("the example closed the channel"),
            }
        }
    })
    .await
    .expect("timed out waiting for the example's message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_echo_answers_the_sender_and_ticks_for_everyone() {
    let example = start("json_echo");
    let options = ClientOptions {
        video: false,
        ..ClientOptions::default()
    };
    let mut client =
        tokio::time::timeout(WAIT, RobotClient::connect(&example.url, options.clone()))
            .await
            .expect("connect in time")
            .expect("the client connects");
    let mut other = tokio::time::timeout(WAIT, RobotClient::connect(&example.url, options))
        .await
        .expect("connect in time")
        .expect("the second client connects");
    client.send_text(r#"{"hello":"robot"}"#).await.unwrap();
    let reply = next_json(&mut client, |v| v.get("you_said").is_some()).await;
    assert_eq!(reply, json!({"you_said": {"hello": "robot"}}));
    client.send_text("plain words").await.unwrap();
    let reply = next_json(&mut client, |v| v.get("you_said").is_some()).await;
    assert_eq!(reply, json!({"you_said": "plain words"}));
    // Both get the ticks; only the sender got the answers.
    let tick = next_json(&mut other, |v| {
        v.get("tick").is_some() || v.get("you_said").is_some()
    })
    .await;
    assert!(tick.get("tick").is_some(), "the other peer got {tick}");
    next_json(&mut client, |v| v.get("tick").is_some()).await;
    // The program printed what it got.
    let printed: Vec<String> = example.stdout.try_iter().collect();
    assert!(
        printed
            .iter()
            .any(|l| l.ends_with(r#"said {"hello":"robot"}"#)),
        "json_echo printed {printed:?}"
    );
    client.close().await;
    other.close().await;
}

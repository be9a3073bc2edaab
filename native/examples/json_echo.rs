//! RTCBot's "Sending JSON to Python and Back", in Rust: every message a browser sends
//! is printed and answered to that browser alone; a counter goes to every browser once
//! a second.
//!
//! ```sh
//! cargo run -p rtcbot-native --example json_echo            # http://localhost:8080
//! cargo run -p rtcbot-native --example json_echo -- 127.0.0.1:0
//! ```
//!
//! In the page's console (the robot's own page, or any page with the npm package):
//! `conn.put_nowait({"hello": "robot"})` gets back `{"you_said": {"hello": "robot"}}`.

use rtcbot::protocol::{Control, Telemetry};
use rtcbot::{Config, Robot};
use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or("0.0.0.0:8080".into());
    let robot = Robot::start(Config::default())?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    tokio::spawn(rtcbot::serve(
        listener,
        robot.clone(),
        rtcbot::shutdown_signal(),
    ));

    // Once a second, a message for everyone, like RTCBot's put_nowait in a loop.
    let ticker = robot.clone();
    tokio::spawn(async move {
        for n in 0u64.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ticker.broadcast(&Telemetry::Json(json!({"tick": n})));
        }
    });

    // Every message from every browser, with who sent it.
    let mut messages = robot.subscribe();
    while let Some(event) = messages.recv().await {
        let said = match event.control {
            Control::Json(value) => value,
            Control::Text(text) => json!(text),
            // Drive states, keys and gamepad events are controls, not chat.
            _ => continue,
        };
        println!("peer {} said {said}", event.peer);
        if let Err(err) = robot.send(event.peer, &Telemetry::Json(json!({"you_said": said}))) {
            eprintln!("could not answer peer {}: {err}", event.peer);
        }
    }
    Ok(())
}

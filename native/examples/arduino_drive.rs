//! RTCBot's "Remote Control" with an Arduino: the browser's drive state (keyboard,
//! gamepad, joystick) becomes a packed C struct on the serial port, tank-mixed and
//! limited, written 20 times a second; the motors stop when control goes silent.
//!
//! ```sh
//! cargo run -p rtcbot-native --example arduino_drive -- /dev/ttyACM0
//! ```
//!
//! The Arduino side reads
//! `typedef struct __attribute__((packed)) { uint8_t cmd; int16_t left; int16_t right; } motors;`
//! and sends back `{ uint8_t sensorID; uint16_t measurement; }`, which reaches every
//! browser as `{"type":"serial","message":{...}}`.

use rtcbot::config::{DriveConfig, SerialConfig};
use rtcbot::{Config, Robot};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or("/dev/ttyACM0".into());
    let listen = args.next().unwrap_or("0.0.0.0:8080".into());
    let serial = SerialConfig {
        path: port.into(),
        baud: 115_200,
        write_format: Some("<Bhh".into()),
        write_keys: Some(vec!["cmd".into(), "left".into(), "right".into()]),
        read_format: Some("<BH".into()),
        read_keys: Some(vec!["sensorID".into(), "measurement".into()]),
        ..SerialConfig::default()
    };
    let drive = DriveConfig {
        scale: 255.0,
        limit: Some(200.0),
        constants: [("cmd".to_string(), json!(1))].into(),
        ..DriveConfig::default()
    };
    let robot = Robot::builder(Config::default())
        .serial(serial)
        .drive(drive)
        .start()?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    // Shutting down writes the stop command before the program ends.
    rtcbot::serve(listener, robot, rtcbot::shutdown_signal()).await?;
    Ok(())
}

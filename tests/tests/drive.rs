//! Driving real motors, end to end: a WebRTC client drives the robot, and the test
//! plays the Arduino on a socat pty pair, reading the motor structs the robot writes.

mod common;
mod pty;
use common::*;
use pty::{scratch, PtyPair};
use rtcbot::config::{DriveConfig, SerialConfig};
use rtcbot::serial::LinkState;
use shared_protocol::{Control, DriveState, MotorState, Telemetry};

/// `struct { int16_t left; int16_t right; }`, differential mixing, full stick = 255.
async fn robot_with_motors(pair: &PtyPair, deadman_ms: u64) -> TestRobot {
    let path = pair.robot.clone();
    let robot = TestRobot::start_with(move |c| {
        c.serial = Some(SerialConfig {
            path,
            write_format: Some("<hh".into()),
            write_keys: Some(vec!["left".into(), "right".into()]),
            read_format: Some("<BH".into()),
            read_keys: Some(vec!["sensorID".into(), "measurement".into()]),
            ..SerialConfig::default()
        });
        c.drive = Some(DriveConfig {
            deadman_ms: Some(deadman_ms),
            ..DriveConfig::default()
        });
    })
    .await;
    let mut state = robot.robot.serial().expect("serial link").state();
    within(
        "the serial link to connect",
        state.wait_for(|s| *s == LinkState::Connected),
    )
    .await
    .unwrap();
    robot
}

fn motors(bytes: &[u8]) -> (i16, i16) {
    (
        i16::from_le_bytes([bytes[0], bytes[1]]),
        i16::from_le_bytes([bytes[2], bytes[3]]),
    )
}

/// Reads motor structs until one equals `want`.
async fn until_motors(arduino: &mut pty::Arduino, what: &str, want: (i16, i16)) {
    within(what, async {
        loop {
            if motors(&arduino.read_exact(4).await) == want {
                return;
            }
        }
    })
    .await;
}

fn drive(forward: f64, turn: f64, seq: u64) -> Control {
    Control::Drive(DriveState::new(forward, turn, seq).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arduino_gets_mapped_motor_structs_then_the_dead_man_stop() {
    let dir = scratch("drive");
    let pair = PtyPair::start(&dir);
    let robot = robot_with_motors(&pair, 300).await;
    let mut arduino = pair.arduino();
    let mut client = robot.client(false).await;

    // Idle: the robot keeps writing the stop command at its fixed rate.
    until_motors(&mut arduino, "the idle stop command", (0, 0)).await;

    // What the Arduino sends reaches the browser as JSON telemetry.
    arduino.write(&[12, 123, 0]);
    let message = recv_until(&mut client, "the sensor struct as telemetry", |m| match m {
        Telemetry::Json(v) if v["type"] == "serial" && v.get("message").is_some() => {
            Some(v["message"].clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        message,
        serde_json::json!({"sensorID": 12, "measurement": 123})
    );

    // Half forward, turning right: left = 0.5 + 0.25, right = 0.5 - 0.25.
    client.send(&drive(0.5, 0.25, 1)).await.unwrap();
    until_motors(&mut arduino, "the mapped motor struct", (191, 64)).await;

    // The client goes silent: the dead-man stop arrives, and the client is told why.
    until_motors(&mut arduino, "the dead-man stop struct", (0, 0)).await;
    let reason = recv_until(
        &mut client,
        "a status saying why the robot stopped",
        |m| match m {
            Telemetry::Status(s) if s.reason.is_some() && s.motors == MotorState::Stopped => {
                s.reason
            }
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, "control went silent");

    // Drive again, then leave: the stop comes at once.
    client.send(&drive(-1.0, 0.0, 2)).await.unwrap();
    until_motors(&mut arduino, "full reverse", (-255, -255)).await;
    client.close().await;
    until_motors(&mut arduino, "the stop after the driver left", (0, 0)).await;

    // Shutdown writes the stop command too.
    robot.robot.shutdown().await;
    let stops = robot.robot.drive().unwrap().counters();
    assert!(stops.stops.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_peer_cannot_drive_but_still_talks() {
    let dir = scratch("two-drivers");
    let pair = PtyPair::start(&dir);
    // A long dead-man time: the first driver keeps the drive throughout.
    let robot = robot_with_motors(&pair, 10_000).await;
    let mut arduino = pair.arduino();
    let first = robot.client(false).await;
    let mut second = robot.client(false).await;

    first.send(&drive(1.0, 0.0, 1)).await.unwrap();
    until_motors(&mut arduino, "the first driver's command", (255, 255)).await;

    second.send(&drive(-1.0, 0.0, 1)).await.unwrap();
    let message = recv_until(&mut second, "the refusal", |m| match m {
        Telemetry::Error { message } => Some(message),
        _ => None,
    })
    .await;
    assert!(message.contains("another peer is driving"), "{message}");
    assert!(robot.robot.controls().driver().is_some());
    assert_eq!(robot.robot.controls().drive().borrow().forward, 1.0);

    // When the driver leaves, the drive stops and the second peer may take it.
    first.close().await;
    until_motors(&mut arduino, "the stop after the driver left", (0, 0)).await;
    second.send(&drive(0.0, 1.0, 2)).await.unwrap();
    until_motors(
        &mut arduino,
        "the second driver spinning right",
        (255, -255),
    )
    .await;
}

//! Driving real motors, end to end: a WebRTC client drives the robot, and the test
//! plays the Arduino on a socat pty pair, reading the motor structs the robot writes.

mod common;
mod pty;
use common::*;
use pty::{scratch, PtyPair};
use rtcbot::config::{DriveConfig, SerialConfig};
use rtcbot::control::ControlHub;
use rtcbot::control::{DriveController, DriveMapping};
use rtcbot::serial::SerialConnection;
use shared_protocol::{Control, DriveState, MotorState, Ping, Telemetry};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `struct { int16_t left; int16_t right; }`, differential mixing, full stick = 255.
async fn robot_with_motors(pair: &PtyPair, deadman_ms: u64) -> TestRobot {
    robot_with_drive(
        pair,
        DriveConfig {
            deadman_ms: Some(deadman_ms),
            ..DriveConfig::default()
        },
    )
    .await
}

/// Far longer than any wait in these tests ([`WAIT`]), so that a stop they see cannot
/// be the dead-man stop.
const LONG_DEADMAN_MS: u64 = 60_000;

fn motor_serial(path: std::path::PathBuf) -> SerialConfig {
    SerialConfig {
        path,
        write_format: Some("<hh".into()),
        write_keys: Some(vec!["left".into(), "right".into()]),
        read_format: Some("<BH".into()),
        read_keys: Some(vec!["sensorID".into(), "measurement".into()]),
        ..SerialConfig::default()
    }
}

async fn robot_with_drive(pair: &PtyPair, drive: DriveConfig) -> TestRobot {
    let path = pair.robot.clone();
    let robot = TestRobot::start_with(move |c| {
        c.serial = Some(motor_serial(path));
        c.drive = Some(drive);
    })
    .await;
    connected(robot.robot.serial().expect("serial link")).await;
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

    // What the Arduino sends reaches the browser as JSON telemetry, once the robot's
    // side of the channel is open (its first status says so).
    recv_until(&mut client, "the first status", |m| match m {
        Telemetry::Status(_) => Some(()),
        _ => None,
    })
    .await;
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
}

/// Reads motor structs until one differs from `moving`, and returns it.
async fn next_change(arduino: &mut pty::Arduino, what: &str, moving: (i16, i16)) -> (i16, i16) {
    within(what, async {
        loop {
            let m = motors(&arduino.read_exact(4).await);
            if m != moving {
                return m;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_struct_comes_at_once_when_the_driver_leaves_and_at_shutdown() {
    let dir = scratch("leave");
    let pair = PtyPair::start(&dir);
    let robot = robot_with_motors(&pair, LONG_DEADMAN_MS).await;
    let mut arduino = pair.arduino();
    let client = robot.client(false).await;
    let stops = || {
        robot
            .robot
            .drive()
            .unwrap()
            .counters()
            .stops
            .load(Ordering::Relaxed)
    };

    client.send(&drive(-1.0, 0.0, 1)).await.unwrap();
    until_motors(&mut arduino, "full reverse", (-255, -255)).await;
    let before = stops();
    let left = Instant::now();
    client.close().await;
    let next = next_change(&mut arduino, "the stop after the driver left", (-255, -255)).await;
    assert_eq!(next, (0, 0), "the first struct after full reverse");
    let took = left.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?}: that is no stop on leaving"
    );
    // The counter moves just after the write is queued, which may be after the pty
    // read it: wait for it, then check it moved once.
    eventually("the stop to be counted", || stops() > before).await;
    assert_eq!(stops(), before + 1, "one stop command for the leave");

    // Moving again when the robot shuts down: the stop struct is on the wire before
    // shutdown returns, and nothing moves the motors after it.
    let client = robot.client(false).await;
    client.send(&drive(1.0, 0.0, 1)).await.unwrap();
    until_motors(&mut arduino, "full forward", (255, 255)).await;
    robot.robot.shutdown().await;
    let next = next_change(&mut arduino, "the stop at shutdown", (255, 255)).await;
    assert_eq!(next, (0, 0), "the first struct after full forward");
}

/// The controller's own shutdown write, without the hub stopping first: the hub still
/// says full forward, so only `DriveController::shutdown` can write a stop, and the
/// loop (at 1 Hz) must write nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_controller_writes_the_stop_itself_at_shutdown() {
    let dir = scratch("controller-shutdown");
    let pair = PtyPair::start(&dir);
    let serial = SerialConnection::open(motor_serial(pair.robot.clone())).unwrap();
    connected(&serial).await;
    let codec = serial.config().write_codec().unwrap();
    let mapping = DriveMapping::new(
        DriveConfig {
            rate_hz: 1.0,
            deadman_ms: Some(LONG_DEADMAN_MS),
            ..DriveConfig::default()
        },
        codec.as_ref(),
    )
    .unwrap();
    let hub = ControlHub::new(Duration::from_millis(LONG_DEADMAN_MS));
    let controller = DriveController::start(&hub, serial.clone(), mapping);
    let mut arduino = pair.arduino();
    hub.publish(1, drive(1.0, 0.0, 1)).unwrap();
    until_motors(&mut arduino, "full forward", (255, 255)).await;
    within("the controller's shutdown", controller.shutdown())
        .await
        .expect("the stop command is written");
    let next = next_change(&mut arduino, "the controller's stop", (255, 255)).await;
    assert_eq!(next, (0, 0));
    assert_eq!(controller.counters().stops.load(Ordering::Relaxed), 1);
    assert!(!hub.drive().borrow().is_stopped(), "the hub never stopped");
    serial.close();
}

/// Motor structs per second, counted on the pty over about two seconds. Call it right
/// after a change of value was read, so that no backlog is counted.
async fn measured_rate(arduino: &mut pty::Arduino) -> f64 {
    within("two seconds of motor structs", async {
        let start = Instant::now();
        let mut count = 0u32;
        while start.elapsed() < Duration::from_secs(2) {
            arduino.read_exact(4).await;
            count += 1;
        }
        f64::from(count) / start.elapsed().as_secs_f64()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motor_structs_are_written_at_rate_hz() {
    for (rate_hz, low, high) in [(20.0, 12.0, 28.0), (5.0, 2.5, 8.0)] {
        let dir = scratch(&format!("rate-{rate_hz}"));
        let pair = PtyPair::start(&dir);
        let robot = robot_with_drive(
            &pair,
            DriveConfig {
                rate_hz,
                deadman_ms: Some(LONG_DEADMAN_MS),
                ..DriveConfig::default()
            },
        )
        .await;
        let mut arduino = pair.arduino();
        let client = robot.client(false).await;
        // Driving, then stopped by the driver (keys released): the same rate. Each
        // count starts at the first struct of a new value.
        client.send(&drive(0.5, 0.0, 1)).await.unwrap();
        until_motors(&mut arduino, "half forward", (128, 128)).await;
        let driving = measured_rate(&mut arduino).await;
        client.send(&drive(0.0, 0.0, 2)).await.unwrap();
        until_motors(&mut arduino, "the released keys' stop", (0, 0)).await;
        let stopped = measured_rate(&mut arduino).await;
        for (what, rate) in [("driving", driving), ("stopped", stopped)] {
            assert!(
                (low..=high).contains(&rate),
                "rate_hz = {rate_hz}: {rate:.1} structs/s while {what}"
            );
        }
        robot.robot.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_peer_cannot_drive_but_still_talks_and_sees_video() {
    let dir = scratch("two-drivers");
    let pair = PtyPair::start(&dir);
    // A dead-man time far beyond the test: the first driver keeps the drive throughout,
    // and only its leaving can stop the motors in time.
    let robot = robot_with_motors(&pair, LONG_DEADMAN_MS).await;
    let mut arduino = pair.arduino();
    let first = robot.client(false).await;
    let mut second = robot.client(true).await;
    let mut video = second.take_video().expect("video requested");

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
    // The refused peer still sees live video and still gets pongs.
    let stamps = decode_stamps(&mut video, 10).await;
    assert!(
        stamps.windows(2).all(|w| w[1].frame > w[0].frame),
        "{stamps:?}"
    );
    second
        .send(&Control::Ping(Ping { id: 5, t: 1.0 }))
        .await
        .unwrap();
    recv_until(&mut second, "a pong for the refused peer", |m| {
        matches!(m, Telemetry::Pong(p) if p.id == 5).then_some(())
    })
    .await;

    // When the driver leaves, the drive stops and the second peer may take it.
    let left = Instant::now();
    first.close().await;
    until_motors(&mut arduino, "the stop after the driver left", (0, 0)).await;
    assert!(
        left.elapsed() < Duration::from_secs(10),
        "the stop took {:?}",
        left.elapsed()
    );
    second.send(&drive(0.0, 1.0, 2)).await.unwrap();
    until_motors(
        &mut arduino,
        "the second driver spinning right",
        (255, -255),
    )
    .await;
}

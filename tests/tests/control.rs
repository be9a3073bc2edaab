//! Controls travel over the data channel into the robot's hub; pings come back as
//! pongs; bad messages get an error reply and change nothing.

mod common;
use common::*;
use rtcbot::control::DriveSource;
use shared_protocol::{
    Control, DriveState, GamepadEvent, MotorState, Ping, RobotStatus, Telemetry,
};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_states_reach_the_hub_and_pings_get_pongs() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(false).await;
    let mut drive = robot.robot.controls().drive();
    let mut events = robot.robot.controls().events();

    client
        .send(&Control::Drive(DriveState::new(0.75, -0.5, 1).unwrap()))
        .await
        .unwrap();
    within(
        "the drive state",
        drive.wait_for(|d| d.forward == 0.75 && d.turn == -0.5),
    )
    .await
    .unwrap();

    client
        .send(&Control::Gamepad(GamepadEvent::Axis {
            index: 1,
            value: -0.3,
        }))
        .await
        .unwrap();
    client
        .send_text("plain text is passed through")
        .await
        .unwrap();
    let mut seen = Vec::new();
    within("the gamepad and text events", async {
        while seen.len() < 3 {
            seen.push(events.recv().await.unwrap().control);
        }
    })
    .await;
    assert!(seen.contains(&Control::Gamepad(GamepadEvent::Axis {
        index: 1,
        value: -0.3
    })));
    assert!(seen.contains(&Control::Text("plain text is passed through".into())));

    for id in 0..5 {
        client
            .send(&Control::Ping(Ping {
                id,
                t: id as f64 * 1.5,
            }))
            .await
            .unwrap();
        let pong = recv_until(&mut client, "a pong", |m| match m {
            Telemetry::Pong(p) if p.id == id => Some(p),
            _ => None,
        })
        .await;
        assert_eq!(pong.t, id as f64 * 1.5);
        assert!(pong.robot_us > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_an_error_reply_and_change_nothing() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(false).await;
    let drive = robot.robot.controls().drive();
    for (bad, reason) in [
        (
            r#"{"type":"drive","forward":5,"turn":0}"#,
            "forward = 5 is out of range (expected -1..=1)",
        ),
        (
            r#"{"type":"teleport"}"#,
            "unknown message type \"teleport\"",
        ),
        (r#"{"type":"drive","forward":"#, "malformed JSON message"),
    ] {
        client.send_text(bad).await.unwrap();
        let message = recv_until(&mut client, "an error reply", |m| match m {
            Telemetry::Error { message } => Some(message),
            _ => None,
        })
        .await;
        assert!(
            message.contains(reason),
            "{bad} was refused with {message:?}, wanted {reason:?}"
        );
    }
    assert!(
        drive.borrow().is_stopped(),
        "refused messages must not move the robot"
    );
    // The channel still works.
    client
        .send(&Control::Ping(Ping { id: 77, t: 0.0 }))
        .await
        .unwrap();
    recv_until(&mut client, "a pong after errors", |m| {
        matches!(m, Telemetry::Pong(p) if p.id == 77).then_some(())
    })
    .await;
}

/// Far longer than any wait in these tests ([`WAIT`]), so that a stop they see cannot
/// be the dead-man stop.
const LONG_DEADMAN_MS: u64 = 60_000;

async fn robot_with_long_deadman() -> TestRobot {
    let robot = TestRobot::start_with(|c| c.control.deadman_ms = LONG_DEADMAN_MS).await;
    assert_eq!(
        robot.robot.controls().silence_timeout(),
        Duration::from_millis(LONG_DEADMAN_MS),
        "[control] deadman_ms sets the hub's silence"
    );
    robot
}

/// The next status carrying a reason.
async fn status_reason(client: &mut rtcbot::RobotClient, what: &str) -> RobotStatus {
    recv_until(client, what, |m| match m {
        Telemetry::Status(s) if s.reason.is_some() => Some(s),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_stops_when_the_driver_goes_silent() {
    let robot = TestRobot::start_with(|c| c.control.deadman_ms = 300).await;
    let mut drive = robot.robot.controls().drive();
    let mut client = robot.client(false).await;
    client
        .send(&Control::Drive(DriveState::new(1.0, 0.0, 1).unwrap()))
        .await
        .unwrap();
    within("moving", drive.wait_for(|d| d.forward == 1.0))
        .await
        .unwrap();
    within("the silence stop", drive.wait_for(|d| d.is_stopped()))
        .await
        .unwrap();
    assert_eq!(robot.robot.controls().drive_source(), DriveSource::Silence);
    assert_eq!(
        robot.robot.controls().driver(),
        None,
        "the drive is released"
    );
    loop {
        let status = status_reason(&mut client, "the silence stop's status").await;
        if status.reason.as_deref() == Some("control went silent") {
            assert_eq!(status.motors, MotorState::Stopped);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_stops_at_once_when_the_driver_leaves() {
    let robot = robot_with_long_deadman().await;
    let mut drive = robot.robot.controls().drive();
    let driver = robot.client(false).await;
    let mut watcher = robot.client(false).await;
    driver
        .send(&Control::Drive(DriveState::new(0.5, 0.0, 1).unwrap()))
        .await
        .unwrap();
    within("moving", drive.wait_for(|d| d.forward == 0.5))
        .await
        .unwrap();
    let left = Instant::now();
    driver.close().await;
    within("the stop after leaving", drive.wait_for(|d| d.is_stopped()))
        .await
        .unwrap();
    let took = left.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?}: that is no stop on leaving"
    );
    assert_eq!(robot.robot.controls().drive_source(), DriveSource::PeerLeft);
    // The other peer is told why.
    loop {
        let status = status_reason(&mut watcher, "the status after the driver left").await;
        if status.reason.as_deref() == Some("the driving peer left") {
            assert_eq!((status.motors, status.driver), (MotorState::Stopped, false));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_stops_at_once_when_the_keys_are_released() {
    let robot = robot_with_long_deadman().await;
    let mut drive = robot.robot.controls().drive();
    let driver = robot.client(false).await;
    driver
        .send(&Control::Drive(DriveState::new(1.0, -0.5, 1).unwrap()))
        .await
        .unwrap();
    within("moving", drive.wait_for(|d| d.forward == 1.0))
        .await
        .unwrap();
    let released = Instant::now();
    // Keys up: the page sends a zero drive state.
    driver
        .send(&Control::Drive(DriveState::new(0.0, 0.0, 2).unwrap()))
        .await
        .unwrap();
    within("the stop on release", drive.wait_for(|d| d.is_stopped()))
        .await
        .unwrap();
    let took = released.elapsed();
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    let controls = robot.robot.controls();
    assert!(
        matches!(controls.drive_source(), DriveSource::Peer(_)),
        "the driver's own zero state, not a safety stop: {:?}",
        controls.drive_source()
    );
    assert!(controls.driver().is_some(), "the driver keeps the drive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_gets_status_saying_who_drives() {
    let robot = robot_with_long_deadman().await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(robot.client(false).await);
    }
    // Before anyone drives, each peer hears that nobody does.
    for (i, client) in clients.iter_mut().enumerate() {
        let status = recv_until(client, "a first status", |m| match m {
            Telemetry::Status(s) => Some(s),
            _ => None,
        })
        .await;
        assert!(!status.driver && !status.you_drive, "peer {i}: {status:?}");
    }
    clients[1]
        .send(&Control::Drive(DriveState::new(0.25, 0.0, 1).unwrap()))
        .await
        .unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        let status = recv_until(client, "a status naming the driver", |m| match m {
            Telemetry::Status(s) if s.driver && s.motors == MotorState::Running => Some(s),
            _ => None,
        })
        .await;
        assert_eq!(status.you_drive, i == 1, "peer {i}: {status:?}");
    }
}

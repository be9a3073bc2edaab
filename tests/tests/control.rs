//! Controls travel over the data channel into the robot's hub; pings come back as
//! pongs; bad messages get an error reply and change nothing.

mod common;
use common::*;
use shared_protocol::{Control, DriveState, GamepadEvent, Ping, Telemetry};

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
    for bad in [
        r#"{"type":"drive","forward":5,"turn":0}"#,
        r#"{"type":"teleport"}"#,
        r#"{"type":"drive","forward":"#,
    ] {
        client.send_text(bad).await.unwrap();
        let message = recv_until(&mut client, "an error reply", |m| match m {
            Telemetry::Error { message } => Some(message),
            _ => None,
        })
        .await;
        assert!(!message.is_empty());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_stops_when_the_driver_leaves_or_goes_silent() {
    let robot = TestRobot::start().await;
    let mut drive = robot.robot.controls().drive();

    let client = robot.client(false).await;
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

    client
        .send(&Control::Drive(DriveState::new(0.5, 0.0, 2).unwrap()))
        .await
        .unwrap();
    within("moving again", drive.wait_for(|d| d.forward == 0.5))
        .await
        .unwrap();
    client.close().await;
    within("the stop after leaving", drive.wait_for(|d| d.is_stopped()))
        .await
        .unwrap();
}

//! The robot program's side of RTCBot's API, with real WebRTC clients: every peer's
//! messages with the peer's id (`subscribe`), a message to one peer (`send`) or all
//! (`broadcast`), who is there (`peers`), and a stalled peer that fills its outbox
//! without delaying the others.

mod common;

use common::*;
use rtcbot::protocol::{Control, DriveState, Telemetry};
use rtcbot::rtc::SendError;
use serde_json::json;

/// The next JSON telemetry a client gets that `want` accepts.
async fn next_json(
    client: &mut rtcbot::RobotClient,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    recv_until(client, what, |t| match t {
        Telemetry::Json(v) if want(&v) => Some(v),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_come_with_their_peer_and_answers_reach_only_that_peer() {
    let robot = TestRobot::start().await;
    let mut messages = robot.robot.subscribe();
    let mut a = robot.client(false).await;
    let mut b = robot.client(false).await;

    a.send_text(r#"{"from":"a"}"#).await.unwrap();
    let from_a = within("a's message", messages.recv()).await.unwrap();
    assert_eq!(from_a.control, Control::Json(json!({"from": "a"})));
    b.send(&Control::Drive(DriveState::new(0.5, 0.0, 1).unwrap()))
        .await
        .unwrap();
    let from_b = within("b's drive state", messages.recv()).await.unwrap();
    assert_ne!(from_a.peer, from_b.peer, "two peers, two ids");

    let peers = robot.robot.peers();
    assert_eq!(
        peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        {
            let mut ids = vec![from_a.peer, from_b.peer];
            ids.sort();
            ids
        },
        "{peers:?}"
    );
    let info = |id| peers.iter().find(|p| p.id == id).unwrap();
    assert!(
        info(from_b.peer).drives && !info(from_a.peer).drives,
        "{peers:?}"
    );
    assert!(peers.iter().all(|p| p.connected && !p.video), "{peers:?}");
    assert!(info(from_a.peer).counters.received >= 1, "{peers:?}");

    // To a alone, then to both.
    robot
        .robot
        .send(from_a.peer, &Telemetry::Json(json!({"only": "a"})))
        .unwrap();
    assert_eq!(
        robot.robot.broadcast(&Telemetry::Json(json!({"all": 1}))),
        2
    );
    let first_a = next_json(&mut a, "a's messages", |v| {
        v.get("only").is_some() || v.get("all").is_some()
    })
    .await;
    assert_eq!(first_a, json!({"only": "a"}), "send is queued in order");
    next_json(&mut a, "the broadcast at a", |v| v.get("all").is_some()).await;
    let first_b = next_json(&mut b, "the broadcast at b", |v| {
        v.get("only").is_some() || v.get("all").is_some()
    })
    .await;
    assert_eq!(first_b, json!({"all": 1}), "b never got a's message");

    assert_eq!(
        robot.robot.send(9_999, &Telemetry::Json(json!(1))),
        Err(SendError::UnknownPeer(9_999))
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_fills_its_outbox_and_the_others_still_hear_at_once() {
    let robot = TestRobot::start().await;
    let mut messages = robot.robot.subscribe();
    // `stalled` never reads: its client stops taking messages off the channel once its
    // own queue is full, SCTP's window closes, and the robot's writes to it wait.
    let stalled = robot.client(false).await;
    let mut live = robot.client(false).await;
    stalled.send_text("stalled").await.unwrap();
    let stalled_id = within("the stalled peer's message", messages.recv())
        .await
        .unwrap()
        .peer;
    let big = "x".repeat(8 * 1024);
    let mut full_after = None;
    for n in 0..100_000u32 {
        let msg = Telemetry::Json(json!({"n": n, "pad": big}));
        match robot.robot.send(stalled_id, &msg) {
            Ok(()) => tokio::task::yield_now().await,
            Err(SendError::Full) => {
                full_after = Some(n);
                break;
            }
            Err(other) => panic!("sending to the stalled peer: {other}"),
        }
    }
    let full_after = full_after.expect("the stalled peer's outbox never filled");
    assert!(full_after >= 256, "full after {full_after} messages");
    // Sends never wait, and the live peer hears a broadcast at once.
    assert_eq!(
        robot
            .robot
            .broadcast(&Telemetry::Json(json!({"hello": "live"}))),
        1
    );
    next_json(&mut live, "the broadcast at the live peer", |v| {
        v.get("hello").is_some()
    })
    .await;
    let stalled_info = robot
        .robot
        .peers()
        .into_iter()
        .find(|p| p.id == stalled_id)
        .unwrap();
    assert!(stalled_info.counters.dropped >= 2, "{stalled_info:?}");
    stalled.close().await;
    live.close().await;
}

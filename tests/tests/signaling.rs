//! Bad signaling input is refused with a clear status and message, and never
//! disturbs peers that are already connected.

mod common;
use common::*;
use shared_protocol::{Control, Ping, Telemetry};

async fn post(robot: &TestRobot, body: Vec<u8>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(robot.url("/connect"))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_offers_are_refused_without_disturbing_a_connected_client() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(true).await;
    let mut video = client.take_video().unwrap();

    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, "malformed"),
        (br#"{"type":"offer"}"#.to_vec(), 400, "missing field `sdp`"),
        (
            br#"{"type":"offer","sdp":"v=0\r\nm=audio 1 RTP/AVP 0\r\nthis is not sdp"}"#.to_vec(),
            400,
            "refused",
        ),
        (
            br#"{"type":"answer","sdp":"v=0\r\nm=video 9 x 1\r\n"}"#.to_vec(),
            400,
            "offer",
        ),
        (vec![b'{'; 100 * 1024], 413, ""),
    ];
    for (body, status, expected) in cases {
        let (got, text) = post(&robot, body).await;
        assert_eq!(got, status, "{text}");
        assert!(
            text.contains(expected),
            "{text:?} should mention {expected:?}"
        );
    }
    assert_eq!(
        robot.robot.peer_count(),
        1,
        "refused offers must not leave peers behind"
    );

    // The connected client still talks and watches.
    client
        .send(&Control::Ping(Ping { id: 1, t: 0.0 }))
        .await
        .unwrap();
    recv_until(&mut client, "a pong", |m| {
        matches!(m, Telemetry::Pong(_)).then_some(())
    })
    .await;
    let stamps = decode_stamps(&mut video, 5).await;
    assert_eq!(stamps.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_peers() {
    let robot = TestRobot::start().await;
    let _client = robot.client(false).await;
    let health: serde_json::Value = reqwest::get(robot.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["peers"], 1);
}

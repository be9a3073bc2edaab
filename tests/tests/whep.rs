//! WHEP on the robot: a real WebRTC peer (the library's `WhepClient`: receive-only
//! offer, `POST /whep` as `application/sdp`, the `201` answer applied) watches the
//! shared stream, is a viewer whatever its token, and its session ends with `DELETE`
//! (at once) or with its connection (the robot notices); bad requests get 4xx.

mod common;

use common::{decode_stamps, eventually, within, TestRobot};
use rtcbot::auth::{AuthConfig, Role};
use rtcbot::rtc::whep::WhepClient;
use rtcbot::rtc::ClientOptions;

const DRIVER: &str = "whep-test-driver-token";
const VIEWER: &str = "whep-test-viewer-token";

async fn robot() -> TestRobot {
    TestRobot::start_with(|c| {
        c.auth = Some(
            AuthConfig::default()
                .with_token(Role::Driver, DRIVER)
                .with_token(Role::Viewer, VIEWER),
        );
    })
    .await
}

fn options(token: &str) -> ClientOptions {
    ClientOptions {
        token: Some(token.into()),
        ..ClientOptions::default()
    }
}

async fn watcher(robot: &TestRobot, token: &str) -> WhepClient {
    within(
        "the WHEP offer to be answered",
        WhepClient::connect(&robot.url("/whep"), options(token)),
    )
    .await
    .expect("the robot answers the WHEP offer")
}

async fn health_peers(robot: &TestRobot) -> u64 {
    let health: serde_json::Value = reqwest::get(robot.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["peers"].as_u64().expect("peers in /health")
}

/// `DELETE url` with `token`: the status.
async fn delete(url: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().delete(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_whep_viewer_watches_and_delete_ends_its_session_at_once() {
    let robot = robot().await;
    // A driver's token: the WHEP session is a viewer all the same.
    let mut client = watcher(&robot, DRIVER).await;
    let location = client.session_url().to_owned();
    assert!(
        location.starts_with(&robot.url("/whep/")),
        "the session lives under /whep: {location}"
    );
    let mut video = client.take_video().expect("video asked for");
    let stamps = decode_stamps(&mut video, 30).await;
    assert!(
        stamps.windows(2).all(|w| w[1].frame > w[0].frame),
        "frame stamps increase: {:?}",
        stamps.iter().map(|s| s.frame).collect::<Vec<_>>()
    );
    let peers = robot.robot.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].role, Role::Viewer, "a WHEP session never drives");
    assert!(peers[0].connected && peers[0].video);
    assert_eq!(health_peers(&robot).await, 1);

    within("DELETE on the session", client.delete())
        .await
        .expect("DELETE answers 2xx");
    // Removed when DELETE answers, not after a timeout.
    assert_eq!(
        health_peers(&robot).await,
        0,
        "DELETE removes the peer at once"
    );
    assert_eq!(
        delete(&location, Some(VIEWER)).await,
        404,
        "a deleted session is gone"
    );
}

#[tokio::test]
async fn a_whep_session_whose_connection_closes_is_removed() {
    let robot = robot().await;
    let mut client = watcher(&robot, VIEWER).await;
    let mut video = client.take_video().expect("video asked for");
    decode_stamps(&mut video, 5).await;
    assert_eq!(robot.robot.peer_count(), 1);
    // The viewer goes away without DELETE (a closed tab): no data channel tells the
    // robot, its connection does.
    client.close().await;
    eventually("the closed WHEP peer to be removed", || {
        robot.robot.peer_count() == 0
    })
    .await;
    assert_eq!(
        delete(client.session_url(), Some(VIEWER)).await,
        404,
        "its session went with it"
    );
}

#[tokio::test]
async fn bad_whep_requests_get_4xx() {
    let robot = robot().await;
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, body: &str, token: Option<&'static str>| {
        let mut request = http
            .post(robot.url("/whep"))
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let recvonly = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                    m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=recvonly\r\n";
    let (status, text) = post("application/sdp", recvonly, None).await;
    assert_eq!(status, 401, "no token: {text}");
    let (status, text) = post(
        "application/sdp",
        recvonly,
        Some("not-a-token-of-this-robot"),
    )
    .await;
    assert_eq!(status, 401, "a wrong token: {text}");
    let offer_json = r#"{"type":"offer","sdp":"v=0"}"#;
    let (status, text) = post("application/json", offer_json, Some(VIEWER)).await;
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("application/sdp"), "{text}");
    let (status, text) = post("application/sdp", "hello robot", Some(VIEWER)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("v=0"), "{text}");
    let sendonly = recvonly.replace("recvonly", "sendonly");
    let (status, text) = post("application/sdp", &sendonly, Some(VIEWER)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("receives no media"), "{text}");
    // Shaped like SDP, refused by the WebRTC stack (no ICE credentials, no DTLS).
    let (status, text) = post("application/sdp", recvonly, Some(VIEWER)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("the offer was refused"), "{text}");

    let unknown = robot.url("/whep/AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        delete(&unknown, Some(VIEWER)).await,
        404,
        "an unknown session"
    );
    let malformed = robot.url("/whep/not-a-session");
    assert_eq!(
        delete(&malformed, Some(VIEWER)).await,
        404,
        "a malformed id"
    );
    assert_eq!(
        delete(&unknown, None).await,
        401,
        "DELETE needs the token too"
    );
    assert_eq!(robot.robot.peer_count(), 0, "no refused offer left a peer");
}

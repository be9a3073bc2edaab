//! The robot through a relay room: a real `rtcbot-relay` (in a runtime of its own, so
//! that "killing" it closes every socket it holds, as a process's death would), the
//! robot connecting out to it with `[relay] url`, and the Rust client POSTing its
//! offer to the room's address instead of the robot's. Then the relay restarts: the
//! robot takes its room again by itself, a new viewer gets in, and the viewer already
//! connected never noticed.

mod common;

use common::{within, TestRobot};
use rtcbot::relay::{RelayConfig, RelayStatus};
use rtcbot::rtc::{ClientOptions, RobotClient};
use std::net::SocketAddr;

/// A relay on its own thread and runtime; dropping it kills it.
struct Relay {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// On `addr` (port 0: any free port).
    fn start(addr: SocketAddr, config: rtcbot_relay::RelayConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind(addr).expect("the relay's port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            rtcbot_relay::run(listener, config, std::future::pending()).await
        });
        Self {
            addr,
            runtime: Some(runtime),
        }
    }

    fn url(&self, room: &str) -> String {
        format!("http://{}/{room}", self.addr)
    }
}

impl Drop for Relay {
    /// Kills the relay: its runtime shuts down, on a thread of its own (a runtime may
    /// not be dropped inside another), and is gone with every task and socket when
    /// this returns, so its port is free again at once.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let _ = std::thread::spawn(move || drop(runtime)).join();
        }
    }
}

/// Waits until the robot's relay link says `what`.
async fn relay_until(t: &TestRobot, what: &str, f: impl Fn(&RelayStatus) -> bool) -> RelayStatus {
    let mut changes = t.robot.relay_state().expect("[relay] is set").changes();
    let status = within(what, changes.wait_for(|s| f(s))).await.unwrap();
    status.clone()
}

async fn viewer(relay: &Relay, room: &str) -> RobotClient {
    within(
        "a viewer to connect through the relay",
        RobotClient::connect(&relay.url(room), ClientOptions::default()),
    )
    .await
    .expect("the client connects through the relay")
}

async fn a_frame(
    client: &mut RobotClient,
    video: &mut tokio::sync::mpsc::Receiver<rtcbot::rtc::ReceivedFrame>,
) {
    let _ = client;
    within("a video frame through the relay's connection", video.recv())
        .await
        .expect("video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_in_a_relay_room_is_watched_through_it_and_comes_back_after_a_relay_restart() {
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), Default::default());
    let relay_addr = relay.addr;
    let t = TestRobot::start_with(|c| {
        c.relay = Some(RelayConfig {
            key: Some("room-key-0123".into()),
            ..RelayConfig::new(format!("ws://{relay_addr}/bot-7"))
        });
    })
    .await;
    let status = relay_until(&t, "the robot in its room", |s| s.connected).await;
    assert_eq!(status.url, format!("ws://{relay_addr}/bot-7"));

    let mut first = viewer(&relay, "bot-7").await;
    let mut first_video = first.take_video().expect("video");
    a_frame(&mut first, &mut first_video).await;
    assert_eq!(t.robot.relay_status().unwrap().offers, 1);

    // The room is claimed by the robot's key: another robot cannot take it.
    let err = a_second_robots_refusal(relay_addr, "bot-7").await;
    assert!(err.contains("403"), "{err}");

    // The relay dies and comes back on the same port.
    drop(relay);
    relay_until(&t, "the robot to see the relay gone", |s| !s.connected).await;
    let relay = Relay::start(relay_addr, Default::default());
    let status = relay_until(&t, "the robot back in its room", |s| s.connected).await;
    assert_eq!(status.connects, 2);
    let mut second = viewer(&relay, "bot-7").await;
    let mut second_video = second.take_video().expect("video");
    a_frame(&mut second, &mut second_video).await;
    // The first viewer's connection is the robot's: the relay's death cost it nothing.
    a_frame(&mut first, &mut first_video).await;
    assert_eq!(t.robot.peer_count(), 2, "both viewers are connected");
    first.close().await;
    second.close().await;
}

/// A second robot's WebSocket to a room, without the key; the relay's refusal.
async fn a_second_robots_refusal(relay: SocketAddr, room: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(relay).await.unwrap();
    let request = format!(
        "GET /{room} HTTP/1.1\r\nHost: {relay}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0; 1024];
    let n = within("the relay's reply", stream.read(&mut response))
        .await
        .unwrap();
    String::from_utf8_lossy(&response[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_to_a_room_with_no_robot_gets_404_and_a_bad_relay_url_is_refused_at_start() {
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), Default::default());
    let err = RobotClient::connect(&relay.url("nobody-here"), ClientOptions::default())
        .await
        .err()
        .expect("no robot in the room");
    let text = err.to_string();
    assert!(text.contains("404") || text.contains("no robot"), "{text}");

    let mut config = TestRobot::config();
    config.relay = Some(RelayConfig::new("relay.example.org/room"));
    let err = rtcbot::Robot::start(config)
        .err()
        .expect("a URL with no scheme");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("relay.url"), "{text}");
}

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
use rtcbot_relay::testing::RedisServer;
use rtcbot_relay::Detached as Relay;
use std::net::SocketAddr;

/// A relay on its own thread and runtime (dropping it kills it, as a process's death
/// would), on `addr` (port 0: any free port).
fn start_relay(addr: &str, config: rtcbot_relay::RelayConfig) -> Relay {
    Relay::start(addr.parse().expect("an address"), config).expect("the relay starts")
}

/// A relay sharing rooms through `redis`, connected to it.
async fn relay_with(addr: &str, redis: &RedisServer) -> Relay {
    let relay = start_relay(
        addr,
        rtcbot_relay::RelayConfig {
            redis_url: Some(redis.url()),
            ..Default::default()
        },
    );
    let mut status = relay.redis.clone().expect("Redis is set");
    within(
        "the relay to connect to Redis",
        status.wait_for(|s| s.connected),
    )
    .await
    .unwrap();
    relay
}

fn room_url(relay: &Relay, room: &str) -> String {
    format!("http://{}/{room}", relay.addr)
}

/// Waits until the robot's relay link says `what`.
async fn relay_until(t: &TestRobot, what: &str, f: impl Fn(&RelayStatus) -> bool) -> RelayStatus {
    let mut changes = t.robot.relay_state().expect("[relay] is set").changes();
    let status = within(what, changes.wait_for(|s| f(s))).await.unwrap();
    status.clone()
}

/// A robot connecting out to `room` on the relay at `relay` with `key`, in its room.
async fn robot_in(relay: SocketAddr, room: &str, key: &str) -> TestRobot {
    let t = TestRobot::start_with(|c| {
        c.relay = Some(RelayConfig {
            key: Some(key.into()),
            ..RelayConfig::new(format!("ws://{relay}/{room}"))
        });
    })
    .await;
    relay_until(&t, "the robot in its room", |s| s.connected).await;
    t
}

async fn viewer(relay: &Relay, room: &str) -> RobotClient {
    within(
        "a viewer to connect through the relay",
        RobotClient::connect(&room_url(relay, room), ClientOptions::default()),
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
    let relay = start_relay("127.0.0.1:0", Default::default());
    let relay_addr = relay.addr;
    let t = robot_in(relay_addr, "bot-7", "room-key-0123").await;
    assert_eq!(
        t.robot.relay_status().unwrap().url,
        format!("ws://{relay_addr}/bot-7")
    );

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
    let relay = start_relay(&relay_addr.to_string(), Default::default());
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

#[tokio::test]
async fn the_rust_client_through_a_room_takes_the_rooms_ice_servers() {
    // A small STUN server: the client's binding requests reach it only if the client
    // took the room's ICE servers (GET /<room>/ice). It answers, so gathering ends at
    // once instead of waiting the request out.
    let stun = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stun_addr = stun.local_addr().unwrap();
    let (requests_tx, mut requests) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut packet = [0u8; 1500];
        while let Ok((n, from)) = stun.recv_from(&mut packet).await {
            let request =
                n >= 20 && packet[..2] == [0, 1] && packet[4..8] == [0x21, 0x12, 0xa4, 0x42];
            if !request {
                continue;
            }
            let _ = requests_tx.try_send(from);
            let _ = stun
                .send_to(&binding_success(&packet[4..20], from), from)
                .await;
        }
    });
    let relay = start_relay(
        "127.0.0.1:0",
        rtcbot_relay::RelayConfig {
            stun_urls: vec![format!("stun:{stun_addr}")],
            ..Default::default()
        },
    );
    let _robot = robot_in(relay.addr, "ice-room", "k").await;
    let _viewer = viewer(&relay, "ice-room").await;
    within("a STUN binding request from the client", requests.recv())
        .await
        .expect("the STUN server runs");
}

/// A STUN binding success for the request whose cookie and transaction id are
/// `cookie_and_id`, mapping the client to `to` (XOR-MAPPED-ADDRESS, IPv4).
fn binding_success(cookie_and_id: &[u8], to: SocketAddr) -> Vec<u8> {
    let std::net::IpAddr::V4(ip) = to.ip() else {
        panic!("the test's STUN server is IPv4");
    };
    let mut reply = vec![0x01, 0x01, 0, 12];
    reply.extend_from_slice(cookie_and_id);
    reply.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 1]);
    reply.extend_from_slice(&(to.port() ^ 0x2112).to_be_bytes());
    reply.extend_from_slice(&(u32::from(ip) ^ 0x2112_a442).to_be_bytes());
    reply
}

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
    let relay = start_relay("127.0.0.1:0", Default::default());
    let err = RobotClient::connect(&room_url(&relay, "nobody-here"), ClientOptions::default())
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

/// Two relays sharing rooms through a real Redis: the robot connects out to relay A, a
/// viewer reaches it through relay B's room. A dies and comes back on its port: the
/// robot takes its room there again by itself (its key still claims it: the claim is
/// in Redis), and a new viewer gets in through B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_on_one_relay_is_watched_through_another_sharing_redis_even_after_its_relay_restarts(
) {
    let redis = RedisServer::start(0).expect("redis-server (apt-get install redis-server)");
    let a = relay_with("127.0.0.1:0", &redis).await;
    let b = relay_with("127.0.0.1:0", &redis).await;
    let a_addr = a.addr;
    let t = robot_in(a_addr, "bot-9", "room-key-4567").await;
    let mut first = viewer(&b, "bot-9").await;
    let mut first_video = first.take_video().expect("video");
    a_frame(&mut first, &mut first_video).await;

    drop(a);
    relay_until(&t, "the robot to see relay A gone", |s| !s.connected).await;
    let a = relay_with(&a_addr.to_string(), &redis).await;
    relay_until(&t, "the robot back in its room on relay A", |s| {
        s.connected && s.connects == 2
    })
    .await;
    let mut second = viewer(&b, "bot-9").await;
    let mut second_video = second.take_video().expect("video");
    a_frame(&mut second, &mut second_video).await;
    assert_eq!(t.robot.relay_status().unwrap().offers, 2, "both through B");
    first.close().await;
    second.close().await;
    drop(a);
}

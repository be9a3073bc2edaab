//! Relays sharing rooms through a real Redis (`redis-server`, Debian's package, on a
//! free port in a temporary folder, nothing saved): a robot on relay A reached by
//! offers POSTed to relay B, claims that hold on every relay, a relay killed, and Redis
//! itself killed and restarted. Each relay runs on a runtime of its own
//! ([`rtcbot_relay::Detached`]), so killing it closes its sockets as a process's death
//! would.

mod common;

use common::{answer_all, get_json, get_text, post, robot, OFFER};
use futures_util::StreamExt;
use rtcbot_relay::testing::{RedisServer, WAIT};
use rtcbot_relay::{Detached, RedisStatus, RelayConfig};
use std::time::{Duration, Instant};

/// A relay on a free port sharing rooms through `redis`, connected to it.
async fn relay(redis: &RedisServer) -> Detached {
    let config = RelayConfig {
        redis_url: Some(redis.url()),
        offer_timeout_s: 2.0,
        ..RelayConfig::default()
    };
    let relay = Detached::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
    redis_until(&relay, "the relay to connect to Redis", |s| s.connected).await;
    relay
}

/// Waits until `relay`'s link to Redis says `what`.
async fn redis_until(relay: &Detached, what: &str, f: impl Fn(&RedisStatus) -> bool) {
    let mut status = relay.redis.clone().expect("a relay with Redis");
    let waited = tokio::time::timeout(WAIT, status.wait_for(|s| f(s)))
        .await
        .map(|r| r.map(drop));
    match waited {
        Ok(ran) => ran.expect("the relay's link runs"),
        Err(_) => panic!("{what}: not within {WAIT:?}: {:?}", *status.borrow()),
    }
}

/// The answer our stand-in robots give to [`OFFER`].
fn the_answer() -> serde_json::Value {
    serde_json::json!({"type": "answer", "sdp": "answer to \"v=0 test\""})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_on_one_relay_is_reached_through_another_and_its_claim_holds_on_both() {
    let redis = RedisServer::start(0).unwrap();
    let (a, b) = (relay(&redis).await, relay(&redis).await);
    let on_a = answer_all(robot(a.addr, "bot?key=k1").await.unwrap());

    let (status, answer) = post(b.addr, "bot", OFFER).await;
    assert_eq!((status, answer), (200, the_answer()), "B reaches A's robot");
    let (status, _) = post(b.addr, "bot/connect", OFFER).await;
    assert_eq!(status, 200, "through /connect too");
    assert_eq!(get_json(b.addr, "bot/status").await["robot"], true);
    let page = get_text(b.addr, "bot").await;
    assert!(page.contains("A robot is connected"), "{page}");
    let health = get_json(b.addr, "health").await;
    assert_eq!(health["redis"]["connected"], true, "{health}");
    assert_eq!(health["robots"], 0, "B holds no robot itself: {health}");

    // The room is claimed by A's robot's key on every relay.
    for path in ["bot", "bot?key=wrong"] {
        let err = robot(b.addr, path).await.unwrap_err();
        assert!(err.contains("403"), "{path} on B: {err}");
    }

    // An empty room is 404 on both.
    for relay in [&a, &b] {
        let (status, body) = post(relay.addr, "empty", OFFER).await;
        assert_eq!(status, 404, "{body}");
        assert!(body.as_str().unwrap().contains("no robot"), "{body}");
    }
    assert_eq!(get_json(a.addr, "empty/status").await["robot"], false);

    // The key's robot on B takes the room: the newest wins across relays as on one,
    // and A's robot is sent away.
    let on_b = answer_all(robot(b.addr, "bot?key=k1").await.unwrap());
    tokio::time::timeout(WAIT, on_a)
        .await
        .expect("A's robot sent away when B's took the room")
        .unwrap();
    let (status, answer) = post(a.addr, "bot", OFFER).await;
    assert_eq!((status, answer), (200, the_answer()), "A reaches B's robot");
    on_b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relays_room_is_404_at_once_on_the_others() {
    let redis = RedisServer::start(0).unwrap();
    let (a, b) = (relay(&redis).await, relay(&redis).await);
    let _on_a = answer_all(robot(a.addr, "gone-soon").await.unwrap());
    assert_eq!(post(b.addr, "gone-soon", OFFER).await.0, 200);

    // A robot that leaves: its room is 404 through the other relay.
    let mut leaving = robot(a.addr, "left").await.unwrap();
    assert_eq!(get_json(b.addr, "left/status").await["robot"], true);
    leaving.close(None).await.unwrap();
    tokio::time::timeout(WAIT, async { while leaving.next().await.is_some() {} })
        .await
        .expect("relay A closes the robot's socket");
    assert_eq!(post(b.addr, "left", OFFER).await.0, 404);

    drop(a); // no clean-up: its presence key stays until it lapses
    assert_eq!(
        get_json(b.addr, "gone-soon/status").await["robot"],
        false,
        "no relay listens on A's channel any more"
    );
    let asked = Instant::now();
    let (status, body) = post(b.addr, "gone-soon", OFFER).await;
    let took = asked.elapsed();
    assert_eq!(status, 404, "{body}");
    assert!(
        took < Duration::from_secs(2),
        "B found A gone in {took:?} (no relay listens on A's channel any more)"
    );
    assert_eq!(get_json(b.addr, "gone-soon/status").await["robot"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_local_rooms_go_on_cross_relay_offers_get_503_and_it_all_comes_back() {
    let redis = RedisServer::start(0).unwrap();
    let port = redis.port;
    let (a, b) = (relay(&redis).await, relay(&redis).await);
    let _on_a = answer_all(robot(a.addr, "room-a").await.unwrap());
    let _on_b = answer_all(robot(b.addr, "room-b").await.unwrap());
    assert_eq!(post(b.addr, "room-a", OFFER).await.0, 200);

    drop(redis);
    for relay in [&a, &b] {
        redis_until(relay, "the relay to see Redis gone", |s| !s.connected).await;
    }
    assert_eq!(post(a.addr, "room-a", OFFER).await.0, 200, "A's own room");
    assert_eq!(post(b.addr, "room-b", OFFER).await.0, 200, "B's own room");
    let (status, body) = post(b.addr, "room-a", OFFER).await;
    assert_eq!(status, 503, "{body}");
    let text = body.as_str().unwrap();
    assert!(
        text.contains("Redis") && text.contains("unreachable"),
        "{text}"
    );
    let health = get_json(a.addr, "health").await;
    assert_eq!(health["redis"]["connected"], false, "{health}");
    assert!(health["redis"]["last_error"].is_string(), "{health}");
    // A robot may still take a room on a relay while Redis is away.
    let _late = answer_all(robot(a.addr, "room-late").await.unwrap());

    // Redis comes back empty on the same port: each relay writes its rooms again.
    let _redis = RedisServer::start(port).unwrap();
    for relay in [&a, &b] {
        redis_until(relay, "the relay to reconnect to Redis", |s| {
            s.connected && s.connects == 2
        })
        .await;
    }
    assert_eq!(post(b.addr, "room-a", OFFER).await.0, 200);
    assert_eq!(post(a.addr, "room-b", OFFER).await.0, 200);
    assert_eq!(post(b.addr, "room-late", OFFER).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_shut_down_cleanly_takes_its_rooms_out_of_redis() {
    let redis = RedisServer::start(0).unwrap();
    let relay = rtcbot_relay::Relay::new(RelayConfig {
        redis_url: Some(redis.url()),
        ..RelayConfig::default()
    })
    .unwrap();
    let mut status = relay.redis_status().unwrap();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.connected))
        .await
        .expect("the relay connects to Redis")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(relay.serve(listener, async {
        let _ = stopped.await;
    }));
    let _robot = answer_all(robot(addr, "tidy").await.unwrap());

    let mut redis_conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = "rtcbot:room:tidy";
    let held: Option<String> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    assert!(
        held.is_some(),
        "the room names the relay while its robot is there"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("the relay stops")
        .unwrap()
        .unwrap();
    let held: Option<String> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    assert_eq!(held, None, "the room no longer names the relay");
}

//! The relay over real sockets (port 0): a robot's WebSocket (tokio-tungstenite, as a
//! stand-in for any robot: RTCBot's, ours) in a room, browsers' offers POSTed to it,
//! and every way that goes wrong.

mod common;

use common::{answer, closed_within_5_s, get_json, get_text, post, post_from, relay, robot, OFFER};
use rtcbot_relay::RelayConfig;

#[tokio::test]
async fn a_browsers_offer_reaches_the_robot_in_its_room_and_the_answer_comes_back() {
    let addr = relay(RelayConfig::default()).await;
    let mut socket = robot(addr, "myRandomSequence11").await.unwrap();
    let robot_task = tokio::spawn(async move {
        answer(&mut socket, 2).await;
        socket
    });
    for path in ["myRandomSequence11", "myRandomSequence11/connect"] {
        let (status, answer) = post(addr, path, OFFER).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer["type"], "answer");
        assert_eq!(answer["sdp"], "answer to \"v=0 test\"");
    }
    let _socket = robot_task.await.unwrap();
    let status = get_json(addr, "myRandomSequence11/status").await;
    assert_eq!(status["robot"], true);
    let page = get_text(addr, "myRandomSequence11").await;
    assert!(page.contains("A robot is connected"), "{page}");
}

#[tokio::test]
async fn no_robot_a_silent_robot_bad_offers_and_wrong_keys_get_clear_errors() {
    let addr = relay(RelayConfig {
        offer_timeout_s: 0.5,
        room_keys: [("kept".to_owned(), "secret".to_owned())].into(),
        ..RelayConfig::default()
    })
    .await;
    let (status, body) = post(addr, "empty", OFFER).await;
    assert_eq!(status, 404);
    assert!(body.as_str().unwrap().contains("no robot"), "{body}");

    let (status, body) = post(addr, "empty", "not json").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(addr, "a%20b", OFFER).await;
    assert_eq!(status, 400, "a bad room name");
    let (status, _) = post(
        addr,
        "empty",
        &format!(r#"{{"sdp":"{}"}}"#, "x".repeat(70_000)),
    )
    .await;
    assert_eq!(status, 413, "an offer over 64 KiB");

    // A robot that never answers: 504, and its socket is closed.
    let mut silent = robot(addr, "quiet").await.unwrap();
    let (status, body) = post(addr, "quiet", OFFER).await;
    assert_eq!(status, 504, "{body}");
    let closed = closed_within_5_s(&mut silent).await;
    assert_eq!(closed, Ok(true), "the silent robot's socket is closed");

    // A claimed room: no key, or the wrong one, is refused; the key gets in.
    let err = robot(addr, "kept").await.unwrap_err();
    assert!(err.contains("403"), "{err}");
    assert!(robot(addr, "kept?key=wrong")
        .await
        .unwrap_err()
        .contains("403"));
    let mut kept = robot(addr, "kept?key=secret").await.unwrap();
    let answering = tokio::spawn(async move { answer(&mut kept, 1).await });
    assert_eq!(post(addr, "kept", OFFER).await.0, 200);
    answering.await.unwrap();
}

#[tokio::test]
async fn a_flood_of_offers_is_refused_and_other_rooms_go_on() {
    let addr = relay(RelayConfig {
        offers_per_second: 1.0,
        offer_burst: 2,
        ..RelayConfig::default()
    })
    .await;
    let mut flooded = robot(addr, "flooded").await.unwrap();
    tokio::spawn(async move { answer(&mut flooded, 1000).await });
    let mut other = robot(addr, "other").await.unwrap();
    tokio::spawn(async move { answer(&mut other, 1000).await });
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(post(addr, "flooded", OFFER).await.0);
    }
    assert_eq!(&statuses[..2], &[200, 200], "the burst: {statuses:?}");
    assert!(statuses[2..].iter().all(|&s| s == 429), "{statuses:?}");
    // From another address: this one has used its own share (6 at once) too.
    assert_eq!(
        post_from([127, 0, 0, 2], addr, "other", OFFER).await.0,
        200,
        "another room's own rate"
    );
}

#[tokio::test]
async fn one_address_flooding_a_room_leaves_the_room_to_its_other_viewers() {
    // Without the per-address share, 20 offers from one address would take the
    // room's whole burst of 10 and the next viewer would get 429 too.
    let addr = relay(RelayConfig {
        offers_per_second: 0.1,
        offer_burst: 10,
        offer_address_burst: 3,
        offers_per_address_per_minute: 1,
        ..RelayConfig::default()
    })
    .await;
    let mut robot = robot(addr, "room").await.unwrap();
    tokio::spawn(async move { answer(&mut robot, 1000).await });
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(post_from([127, 0, 0, 2], addr, "room", OFFER).await);
    }
    let statuses: Vec<u16> = flood.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        &statuses[..3],
        &[200, 200, 200],
        "the address's burst: {statuses:?}"
    );
    assert!(statuses[3..].iter().all(|&s| s == 429), "{statuses:?}");
    assert!(
        flood[3]
            .1
            .as_str()
            .unwrap_or_default()
            .contains("your address"),
        "{:?}",
        flood[3].1
    );
    assert_eq!(
        post(addr, "room", OFFER).await.0,
        200,
        "a viewer at another address"
    );
}

#[tokio::test]
async fn a_new_robot_replaces_the_old_one_in_an_open_room() {
    let addr = relay(RelayConfig::default()).await;
    let mut old = robot(addr, "r").await.unwrap();
    let mut new = robot(addr, "r").await.unwrap();
    // The old one is told to go.
    let closed = closed_within_5_s(&mut old).await;
    assert_eq!(closed, Ok(true));
    let answering = tokio::spawn(async move {
        answer(&mut new, 1).await;
        new
    });
    assert_eq!(post(addr, "r", OFFER).await.0, 200);
    let _new = answering.await.unwrap();
    let health = get_json(addr, "health").await;
    assert_eq!(health["robots"], 1, "{health}");
}

#[tokio::test]
async fn the_app_is_served_in_the_room_and_other_sites_pages_may_post() {
    let www = std::env::temp_dir().join(format!("rtcbot-relay-www-{}", std::process::id()));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><p>the app</p>").unwrap();
    std::fs::write(www.join("app-1.js"), "console.log(1)").unwrap();
    let addr = relay(RelayConfig {
        www: Some(www.clone()),
        ..RelayConfig::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let moved = client
        .get(format!("http://{addr}/bot"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 308, "to the room's folder");
    assert_eq!(moved.headers()["location"], "/bot/");
    let page = client
        .get(format!("http://{addr}/bot/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("the app"));
    let asset = client
        .get(format!("http://{addr}/bot/app-1.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.text().await.unwrap(), "console.log(1)");
    let outside = client
        .get(format!("http://{addr}/bot/..%2f..%2fetc%2fpasswd"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        outside.status().as_u16(),
        404,
        "nothing outside the app's folder"
    );
    // A page from another origin reads the answer (or the error).
    let response = client
        .post(format!("http://{addr}/bot/connect"))
        .header("origin", "https://some-other-site.example")
        .body(OFFER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404, "no robot yet");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let _ = std::fs::remove_dir_all(&www);
}

#[tokio::test]
async fn a_page_gets_stun_and_turn_with_credentials_minted_for_its_room() {
    let addr = relay(RelayConfig {
        stun_urls: vec!["stun:stun.example.org:3478".into()],
        turn_urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
        turn_secret: Some("north".into()),
        turn_ttl_s: 600,
        ..RelayConfig::default()
    })
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ice = get_json(addr, "myroom/ice").await;
    let servers = ice["iceServers"].as_array().unwrap();
    assert_eq!(
        servers[0],
        serde_json::json!({"urls": ["stun:stun.example.org:3478"]})
    );
    let turn = &servers[1];
    let username = turn["username"].as_str().unwrap();
    let (expiry, room) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert_eq!(room, "myroom");
    assert!(
        (before + 600..=before + 602).contains(&expiry),
        "{expiry} vs {before}"
    );
    let (_, expected) = rtcbot_relay::turn::credentials("north", "myroom", expiry);
    assert_eq!(turn["credential"], expected.as_str());
}

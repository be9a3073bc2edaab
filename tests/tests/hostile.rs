//! Hostile HTTP while a driver drives: malformed offers, a flood of offers that never
//! connect, and bodies that never finish arrive from one address (127.0.0.2), and
//! the connected driver keeps driving (no dead-man stop, pings answered), the flood
//! gets clear refusals, and a newcomer from another address still connects.

mod common;

use common::{within, TestRobot};
use rtcbot::robot::MAX_CONNECTING_PER_CLIENT;
use shared_protocol::{Control, DriveState, Ping, Telemetry};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn malformed(i: usize) -> Vec<u8> {
    match i % 8 {
        0 => Vec::new(),
        1 => b"not json".to_vec(),
        2 => b"{\"type\":\"offer\"}".to_vec(),
        3 => b"{\"type\":\"answer\",\"sdp\":\"v=0\"}".to_vec(),
        4 => b"{\"type\":\"offer\",\"sdp\":\"garbage\"}".to_vec(),
        5 => vec![0xff; 300],
        6 => format!(
            "{{\"type\":\"offer\",\"sdp\":\"{}\"}}",
            "x".repeat(70 * 1024)
        )
        .into_bytes(),
        _ => b"[1,2,3]".to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_keeps_driving_through_malformed_offers_floods_and_slow_bodies() {
    let t = TestRobot::start().await;
    let mut driver = t.client(false).await;
    let mut notices = t.robot.controls().notices();
    let stranger = reqwest::Client::builder()
        .local_address(STRANGER)
        .build()
        .unwrap();
    let url = t.url("/connect");

    // The attacks run in the background while the driver drives in the foreground.
    let attack = {
        let (stranger, url, addr) = (stranger.clone(), url.clone(), t.addr);
        tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            // Bodies that never finish: headers promise 1,000 bytes, 10 arrive.
            let mut slow = Vec::new();
            for _ in 0..20 {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind((STRANGER, 0).into()).unwrap();
                let mut s = socket.connect(addr).await.unwrap();
                s.write_all(
                    b"POST /connect HTTP/1.1\r\nhost: robot\r\ncontent-type: application/json\r\n\
                      content-length: 1000\r\n\r\n{\"type\":",
                )
                .await
                .unwrap();
                slow.push(s);
            }
            for i in 0..1000 {
                let r = stranger.post(&url).body(malformed(i)).send().await.unwrap();
                *statuses.entry(r.status().as_u16()).or_default() += 1;
            }
            // Offers that never connect, all at once.
            let mut offers = Vec::new();
            for _ in 0..32 {
                offers.push(rtcbot_bench::dead_end_offer().await.expect("an offer"));
            }
            let mut posts = tokio::task::JoinSet::new();
            for (offer, _) in &offers {
                let post = stranger
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(offer.to_json())
                    .send();
                posts.spawn(post);
            }
            let mut flood = std::collections::BTreeMap::<u16, usize>::new();
            while let Some(r) = posts.join_next().await {
                *flood
                    .entry(r.unwrap().unwrap().status().as_u16())
                    .or_default() += 1;
            }
            (statuses, flood, slow, offers)
        })
    };

    let started = Instant::now();
    let mut seq = 0;
    let mut rtts = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sent_at = None;
    while !attack.is_finished() || rtts.len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the attack took over 60 s"
        );
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                driver.send(&Control::Drive(DriveState::new(0.3, 0.0, seq).unwrap())).await.unwrap();
                if sent_at.is_none() {
                    sent_at = Some(Instant::now());
                    driver.send(&Control::Ping(Ping { id: seq as i128, t: 0.0 })).await.unwrap();
                }
            }
            Some(msg) = driver.recv() => {
                if let (Telemetry::Pong(_), Some(at)) = (msg, sent_at) {
                    rtts.push(at.elapsed());
                    sent_at = None;
                }
            }
            Ok(notice) = notices.recv() => {
                assert!(!notice.stopped, "the driver's motors were stopped during the attack: {}", notice.reason);
            }
        }
    }
    let (statuses, flood, _slow, _offers) = attack.await.unwrap();
    rtts.sort();
    println!(
        "hostile: malformed offers answered {statuses:?}; never-connecting offers {flood:?}; \
         the driver's ping round trip p50 {:?}, max {:?} over {} pings",
        rtts[rtts.len() / 2],
        rtts.last().unwrap(),
        rtts.len()
    );
    assert!(
        statuses.keys().all(|s| (400..500).contains(s)),
        "every malformed offer gets a 4xx: {statuses:?}"
    );
    assert_eq!(
        flood.get(&200).copied(),
        Some(MAX_CONNECTING_PER_CLIENT),
        "one address gets {MAX_CONNECTING_PER_CLIENT} connecting peers: {flood:?}"
    );
    assert_eq!(
        flood.get(&429).copied(),
        Some(32 - MAX_CONNECTING_PER_CLIENT),
        "the rest of its flood is told to wait: {flood:?}"
    );
    let mut drive = t.robot.controls().drive();
    within("the driver's last state", drive.wait_for(|d| d.seq == seq))
        .await
        .expect("the drive state stays readable");
    assert_eq!(*drive.borrow(), DriveState::new(0.3, 0.0, seq).unwrap());
    // A newcomer from another address is not locked out by the stranger's flood.
    let newcomer = within("a newcomer to connect during the flood", t.client(false)).await;
    newcomer.close().await;
    driver.close().await;
}

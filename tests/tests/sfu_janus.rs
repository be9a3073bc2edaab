//! Publishing to Janus: the robot publishes its one H.264 stream to a VideoRoom of a
//! Janus the test starts with a generated config; subscribers through Janus decode
//! frames with increasing stamps (and the robot's Opus test tone arrives) while the robot's stream keeps one viewer (its
//! publisher) and its bytes to Janus stay those of one stream whatever the number of
//! subscribers; Janus killed and restarted, the robot publishes again by itself and a
//! new subscriber gets video; a driver connected straight to the robot the whole time
//! never drops. Bad settings get their clear `last_error` (Janus unreachable, a room
//! that does not exist, a wrong secret).
//!
//! Janus never gathers loopback candidates, so the test runs itself again inside a new
//! network namespace (`unshare --net`) with a veth interface of its own
//! (`sfu0`, 10.88.0.1/24; this kernel has no `dummy`); Janus's HTTP API listens on 127.0.0.1 there. It needs root,
//! util-linux's `unshare`, iproute2's `ip` and Debian's `janus`; without them it fails
//! and says so.

mod common;

use common::{decode_stamps, within, TestRobot, WAIT};
use rtcbot::sfu::{JanusViewer, SfuConfig, SfuPhase, SfuStatus};
use rtcbot::Robot;
use rtcbot_bench::janus::{JanusOptions, JanusServer};
use rtcbot_bench::namespace::{self, Veth};
use shared_protocol::{Control, Ping, Telemetry};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set (to the test's name) in the re-run inside the namespace.
const INNER: &str = "RTCBOT_SFU_INNER";
/// The namespace's own non-loopback address, for ICE with Janus.
const ADDRESS: &str = "10.88.0.1";
/// The veth interface with [`ADDRESS`], the one Janus gathers on.
const INTERFACE: &str = "sfu0";
const API: &str = "http://127.0.0.1:18088/janus";
const ROOM: u64 = 1234;
const SECRET: &str = "room-secret";
const FEED: u64 = 7;

/// Runs `inner` here when this is the re-run of `test` inside the namespace;
/// otherwise runs `test` again inside a new network namespace with the veth
/// interface, and fails if that run fails.
fn in_namespace(test: &str, inner: impl std::future::Future<Output = ()>) {
    if namespace::inside(INNER, test) {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(inner);
    }
    let veth = Veth {
        name: INTERFACE,
        peer: "sfu1",
        address: &format!("{ADDRESS}/24"),
    };
    let mut rerun =
        namespace::rerun_command(&std::env::current_exe().unwrap(), Some(&veth), INNER, test);
    rerun.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    namespace::run_inner_test(&mut rerun, "root, `unshare`, `ip` and `janus` (Debian's)");
}

/// A Janus of the test's own (`rtcbot_bench::janus`): VideoRoom over HTTP only on
/// 127.0.0.1:18088, room [`ROOM`] with [`SECRET`], gathering on [`INTERFACE`].
fn configure_janus(dir: &Path) -> JanusServer {
    let mut options = JanusOptions::new(dir, INTERFACE);
    options.port = 18088;
    options.room = ROOM;
    options.secret = Some(SECRET.into());
    options.ready_timeout = WAIT;
    let janus = JanusServer::configure(options).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(janus.api(), API);
    janus
}

/// Starts (or restarts) Janus and waits until its API answers.
async fn start(janus: &mut JanusServer) {
    if let Err(e) = janus.start().await {
        panic!("{e:#}");
    }
}

fn sfu(edit: impl FnOnce(&mut SfuConfig)) -> SfuConfig {
    let mut config = SfuConfig::new(API, ROOM);
    config.publisher_id = FEED;
    config.secret = Some(SECRET.into());
    edit(&mut config);
    config
}

async fn robot_with(config: SfuConfig) -> TestRobot {
    TestRobot::start_with(|c| {
        // Sound too: the room takes Opus with the video.
        c.audio.source = rtcbot::audio::AudioSourceSpec::Tone;
        c.webrtc.ice_udp = vec!["127.0.0.1:0".into(), format!("{ADDRESS}:0")];
        c.sfu = Some(config);
    })
    .await
}

/// Waits until the robot's publisher status satisfies `ok`.
async fn sfu_state(robot: &Robot, what: &str, ok: impl FnMut(&SfuStatus) -> bool) -> SfuStatus {
    let mut changes = robot.sfu_state().expect("[sfu] configured").changes();
    let last = robot.sfu_status();
    let found = tokio::time::timeout(WAIT, changes.wait_for(ok)).await;
    match found {
        Ok(Ok(status)) => status.clone(),
        _ => panic!(
            "timed out after {WAIT:?} waiting for {what}; the SFU status: {:?} (was {last:?})",
            robot.sfu_status()
        ),
    }
}

/// Subscribes through Janus and checks decoded frames come with increasing stamps.
///
/// The robot says it publishes once its connection to Janus is up, but Janus takes
/// the feed for subscribers only once it has set up the publisher's media on its side,
/// a moment later (longer on a loaded machine): until then it answers "No such feed",
/// and nothing tells a subscriber when that changes, so the subscription is tried again.
async fn watch_through_janus(what: &str) -> JanusViewer {
    let subscribed = async {
        loop {
            match JanusViewer::watch(API, ROOM, FEED, None, &[format!("{ADDRESS}:0")]).await {
                Err(e) if e.to_string().contains("No such feed") => {
                    // Janus gives no event for it: ask again shortly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                done => return done,
            }
        }
    };
    let mut viewer = within(what, subscribed)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut video = viewer.take_video().unwrap();
    let stamps = decode_stamps(&mut video, 10).await;
    assert!(
        stamps.windows(2).all(|w| w[1].frame > w[0].frame),
        "{what}: frame stamps not increasing: {stamps:?}"
    );
    println!("{what}: frames {}..{}", stamps[0].frame, stamps[9].frame);
    viewer
}

/// Video bytes the robot wrote to Janus over `window`.
async fn bytes_per_second(robot: &Robot, window: Duration) -> f64 {
    let before = robot.sfu_status().unwrap().video_bytes;
    tokio::time::sleep(window).await; // a measurement window, not a synchronisation
    let after = robot.sfu_status().unwrap().video_bytes;
    (after - before) as f64 / window.as_secs_f64()
}

#[test]
fn the_robot_publishes_to_janus_and_publishes_again_after_a_restart() {
    in_namespace(
        "the_robot_publishes_to_janus_and_publishes_again_after_a_restart",
        publish_and_restart(),
    );
}

async fn publish_and_restart() {
    let started = Instant::now();
    eprintln!("sfu test: starting");
    let dir = std::env::temp_dir().join(format!("rtcbot-janus-{}", std::process::id()));
    let mut janus = configure_janus(&dir);
    // Janus is not up yet: the robot says so and keeps trying.
    let test = robot_with(sfu(|_| {})).await;
    let robot = &test.robot;
    let status = sfu_state(robot, "the robot to find Janus unreachable", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("Janus is unreachable"))
    })
    .await;
    println!("before Janus: {:?}", status.last_error.unwrap());
    let mut driver = test.client(false).await;
    let driver_id = robot.peers()[0].id;

    start(&mut janus).await;
    let status = sfu_state(robot, "the robot to publish to Janus", |s| {
        s.state == SfuPhase::Publishing
    })
    .await;
    assert_eq!(status.publishes, 1);
    println!("published {:?} after the start", started.elapsed());

    let first = watch_through_janus("a subscriber through Janus").await;
    // More subscribers through Janus: the robot still encodes once, for one viewer
    // (its publisher), and writes Janus as many bytes.
    let one = bytes_per_second(robot, Duration::from_secs(2)).await;
    assert!(first.audio_packets() > 0, "no Opus through Janus");
    let mut more = Vec::new();
    for _ in 0..9 {
        let mut viewer = within(
            "another subscriber",
            JanusViewer::watch(API, ROOM, FEED, None, &[format!("{ADDRESS}:0")]),
        )
        .await
        .expect("another subscriber joins");
        let mut video = viewer.take_video().unwrap();
        let frames = Arc::new(AtomicU64::new(0));
        let counted = frames.clone();
        let counting = tokio::spawn(async move {
            while video.recv().await.is_some() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        more.push((viewer, frames, counting));
    }
    let ten = bytes_per_second(robot, Duration::from_secs(2)).await;
    assert_eq!(
        robot.counters().viewers,
        1,
        "the stream's viewers: the publisher alone"
    );
    for (viewer, frames, counting) in more {
        counting.abort();
        viewer.close().await;
        let frames = frames.load(Ordering::Relaxed);
        assert!(frames > 10, "a subscriber of ten got {frames} frames");
    }
    println!(
        "robot's video to Janus: {:.0} kbit/s with 1 subscriber, {:.0} kbit/s with 10",
        one * 8.0 / 1000.0,
        ten * 8.0 / 1000.0
    );
    assert!(
        ten < one * 1.5 + 20_000.0,
        "one stream whatever the subscribers: {one} vs {ten} B/s"
    );
    first.close().await;

    // Bad settings: a room that does not exist, a wrong secret for the robot's own id.
    let no_room = robot_with(sfu(|c| c.room = 999)).await;
    let status = sfu_state(&no_room.robot, "the missing room's error", |s| {
        s.last_error.is_some()
    })
    .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("the room does not exist"), "{error}");
    println!("room 999: {error}");
    no_room.robot.shutdown().await;
    let wrong_secret = robot_with(sfu(|c| c.secret = Some("not-the-secret".into()))).await;
    let status = sfu_state(&wrong_secret.robot, "the wrong secret's error", |s| {
        s.last_error.is_some()
    })
    .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("wrong secret"), "{error}");
    println!("wrong secret: {error}");
    wrong_secret.robot.shutdown().await;
    assert_eq!(robot.sfu_status().unwrap().state, SfuPhase::Publishing);

    // Janus restarts: the robot publishes again by itself.
    janus.kill();
    let killed = Instant::now();
    sfu_state(robot, "the robot to notice Janus went away", |s| {
        s.state != SfuPhase::Publishing
    })
    .await;
    start(&mut janus).await;
    let status = sfu_state(robot, "the robot to publish again", |s| {
        s.state == SfuPhase::Publishing && s.publishes == 2
    })
    .await;
    println!(
        "published again {:?} after Janus was killed",
        killed.elapsed()
    );
    assert_eq!(status.publishes, 2);
    let again = watch_through_janus("a subscriber after the restart").await;
    again.close().await;

    // The driver's own connection never noticed.
    let peers = robot.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(peers[0].id == driver_id && peers[0].connected, "{peers:?}");
    driver
        .send(&Control::Ping(Ping { id: 5, t: 0.0 }))
        .await
        .unwrap();
    common::recv_until(&mut driver, "the driver's pong", |m| {
        matches!(m, Telemetry::Pong(p) if p.id == 5).then_some(())
    })
    .await;

    // A second robot configured with the same publisher id: it takes the id (the
    // holder looks like a stale session of its own), the first says so and waits,
    // and never kicks it back.
    let twin = robot_with(sfu(|_| {})).await;
    sfu_state(&twin.robot, "the twin to publish", |s| {
        s.state == SfuPhase::Publishing
    })
    .await;
    let status = sfu_state(robot, "the first robot to see the conflict", |s| {
        s.state == SfuPhase::Conflict
    })
    .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("same [sfu] publisher_id"), "{error}");
    println!("conflict: {error}");
    // It tries again (each try is a change of its status) and still does not kick.
    let mut changes = robot.sfu_state().unwrap().changes();
    changes.borrow_and_update();
    for _ in 0..3 {
        within("the first robot to try again", changes.changed())
            .await
            .unwrap();
    }
    let twin_status = twin.robot.sfu_status().unwrap();
    assert_eq!(
        (twin_status.state, twin_status.publishes),
        (SfuPhase::Publishing, 1),
        "the twin was pushed out: {twin_status:?}"
    );
    assert_ne!(robot.sfu_status().unwrap().state, SfuPhase::Publishing);
    // The twin shuts down and ends its Janus session: the id is free at once (not
    // after Janus's 60 s session timeout), and the first robot takes it back.
    twin.robot.shutdown().await;
    let status = sfu_state(robot, "the first robot to publish again", |s| {
        s.state == SfuPhase::Publishing
    })
    .await;
    assert_eq!(status.publishes, 3, "{status:?}");
    watch_through_janus("a subscriber after the conflict")
        .await
        .close()
        .await;

    println!("done in {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

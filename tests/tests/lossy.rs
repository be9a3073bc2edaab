//! Driving through a lossy link: the Rust client drives at 20 Hz for 60 s while
//! nftables drops 5% of all UDP packets at random, and the robot's 300 ms dead-man
//! must never stop the motors on its own. Drive states go on the unordered `drive`
//! channel without retransmission, so a lost packet costs one state, never the states
//! behind it.
//!
//! The test runs itself again inside a new network namespace (`unshare --net`), whose
//! loopback gets the nftables rule (`meta l4proto udp numgen random mod 100 < 5 drop`
//! on the input hook), so no packet of the host is touched. It needs root, util-linux's
//! `unshare` and Debian's `nft` (installed by `scripts/test.sh`); without them it fails
//! and says so. `RTCBOT_LOSSY_SECS` shortens the drive for a quick local run. While
//! it drives, the robot sends a latest-wins reading at 20 Hz, which must keep flowing
//! (no gap of 300 ms). The figures it prints are for reading; `rtcbot-lossy` reports
//! them as JSON.
//!
//! A link that narrows: in the same kind of namespace, with no loss, a token-bucket
//! filter (`tc tbf`, a deep queue) on the robot's uplink carries 5 Mbit/s, then 800 kbit/s for 20 s, then
//! 5 Mbit/s again, while the client watches the noisy test pattern at the default
//! 1000 kbit/s and measures glass-to-glass latency from each frame's stamp
//! (`rtcbot_bench::narrowing`). With congestion control the latency stays low and the
//! bitrate comes back; without it (`video.congestion_control = false`) the same link
//! makes latency grow past a second, which shows the test can fail.
//! `RTCBOT_NARROWING_SCALE` (1.0) shortens the phases.
//!
//! Two viewers, one slow: in the same kind of namespace, only what the robot sends to
//! one viewer's port goes through an 800 kbit/s bucket. The other viewer drives, so
//! the one encoder follows its wide path (1000 kbit/s); the slow one must get the base
//! temporal layer (half the frame rate, at about 60% of the bits) with a latency that
//! stays bounded, while the fast one keeps every frame. `RTCBOT_TWO_VIEWERS_SECS`
//! (20) shortens it.

mod common;

use common::{seconds_from_env, within, TestRobot, WAIT};
use rtcbot::rtc::ClientOptions;
use rtcbot::video::layers::Layers;
use rtcbot::video::TestPattern;
use rtcbot::Robot;
use rtcbot_bench::lossy::{self, namespace_command};
use rtcbot_bench::narrowing::{self, Watcher};
use shared_protocol::{Control, DriveState, Telemetry};
use std::time::{Duration, Instant};

/// Held by each outer test for its whole run: the three share two cores, and the VM's
/// emulated CPU under that load once took over 20 s to set up its connection.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Set (to the test's name) in the re-run inside the namespace.
const INNER: &str = "RTCBOT_LOSSY_INNER";

/// Runs `inner` here when this is the re-run of `test` inside the lossy namespace;
/// otherwise runs `test` again inside a new network namespace whose loopback drops
/// `loss_percent`% of UDP packets at random, and fails if that run fails.
fn in_lossy_namespace(test: &str, loss_percent: u32, inner: impl std::future::Future<Output = ()>) {
    if std::env::var(INNER).is_ok_and(|t| t == test) {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(inner);
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    let args = ["--exact", test, "--nocapture", "--test-threads=1"];
    rtcbot_bench::namespace::run_inner_test(
        namespace_command(loss_percent, &exe, &args).env(INNER, test),
        "root, `unshare` and `nft` (Debian's nftables)",
    );
}

#[test]
fn twenty_hz_driving_through_5_percent_loss_never_trips_the_deadman() {
    in_lossy_namespace(
        "twenty_hz_driving_through_5_percent_loss_never_trips_the_deadman",
        5,
        drive_through_loss("5% loss"),
    );
}

#[test]
fn a_narrowing_link_costs_bitrate_not_latency() {
    in_lossy_namespace(
        "a_narrowing_link_costs_bitrate_not_latency",
        0,
        watch_through_narrowing(true),
    );
}

#[test]
fn without_congestion_control_a_narrowing_link_builds_latency() {
    in_lossy_namespace(
        "without_congestion_control_a_narrowing_link_builds_latency",
        0,
        watch_through_narrowing(false),
    );
}

#[test]
fn video_through_2_percent_loss_never_freezes_for_a_second() {
    in_lossy_namespace(
        "video_through_2_percent_loss_never_freezes_for_a_second",
        2,
        video_through_loss(),
    );
}

#[test]
fn two_viewers_one_slow_the_slow_one_gets_the_base_layer() {
    in_lossy_namespace(
        "two_viewers_one_slow_the_slow_one_gets_the_base_layer",
        0,
        two_viewers_one_slow(),
    );
}

/// 40 ms of delay with 10 ms of jitter, plus 5% loss, need `sch_netem`, which this
/// host's kernel lacks: the test boots the test VM (`scripts/v4l2-vm.sh`, Debian's
/// kernel) with this test binary and `tc` inside, and drives there.
#[test]
#[cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    ignore = "the test VM needs an x86_64 Linux host"
)]
fn twenty_hz_driving_through_40_ms_delay_with_jitter_and_loss_in_the_vm() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = std::env::current_exe().expect("test binary path");
    let tc = ["/usr/sbin/tc", "/sbin/tc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("`tc` (Debian's iproute2, installed by scripts/test.sh)");
    let secs = seconds_from_env("RTCBOT_LOSSY_SECS", 60).to_string();
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/v4l2-vm.sh"))
        .args(["--file", &format!("{tc}:/sbin/tc")])
        .args([
            "--env",
            "RTCBOT_IN_VM=1",
            "--env",
            &format!("RTCBOT_LOSSY_SECS={secs}"),
        ])
        .arg("--")
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "in_vm_drive_through_delay_jitter_and_loss",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .output()
        .expect("running scripts/v4l2-vm.sh (bash)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines().filter(|l| l.contains("lossy link")) {
        println!("  in the VM: {line}");
    }
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "the drive through delay, jitter and loss inside the VM failed ({}):\n{text}",
        out.status
    );
}

#[test]
#[ignore = "runs inside the test VM (sch_netem): see the test above"]
fn in_vm_drive_through_delay_jitter_and_loss() {
    assert_eq!(
        std::env::var("RTCBOT_IN_VM").as_deref(),
        Ok("1"),
        "this test changes the loopback's qdisc: it runs inside the VM of \
         twenty_hz_driving_through_40_ms_delay_with_jitter_and_loss_in_the_vm"
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    run(&["ip", "link", "set", "lo", "up"]);
    // Every packet crosses the loopback once: 40 ms each way, ±10 ms, 5% lost.
    run(&[
        "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "40ms", "10ms", "loss", "5%",
    ]);
    let qdisc = run(&["tc", "qdisc", "show", "dev", "lo"]);
    assert!(qdisc.contains("netem"), "no netem on lo: {qdisc}");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(drive_through_loss("40 ms ± 10 ms delay and 5% loss"));
}

/// Drives at 20 Hz through the impaired link (`link` says how) and checks the drive
/// and the robot's readings got through.
async fn drive_through_loss(link: &str) {
    let secs = seconds_from_env("RTCBOT_LOSSY_SECS", 60);
    let t = TestRobot::start().await;
    assert_eq!(
        t.robot.controls().silence_timeout(),
        Duration::from_millis(300),
        "the default dead-man"
    );
    // Set-up itself goes through the loss: SCTP and DTLS resend what is lost.
    let mut client = t.client(false).await;
    assert!(
        client.wait_drive_channel(WAIT).await,
        "the drive channel opens"
    );
    let f = lossy::drive(&t.robot, &mut client, secs as f64).await;
    println!("lossy link, {link}: {}", f.to_json());
    assert!(
        f.deadman_stops.is_empty(),
        "the dead-man stopped the motors while the driver kept sending at 20 Hz through \
         {link}: {:?}",
        f.deadman_stops
    );
    assert!(
        f.states_seen * 100 >= f.states_sent * 80,
        "the robot saw only {} of {} drive states through {link}",
        f.states_seen,
        f.states_sent
    );
    assert!(
        !f.ping_rtt_ms.is_empty(),
        "no ping came back through {link}"
    );
    // The robot's readings go on the unreliable drive channel: a loss costs one
    // reading, never a retransmission timeout of every reading behind it.
    assert!(
        f.readings_received * 100 >= f.readings_sent * 80,
        "only {} of {} readings arrived through {link}",
        f.readings_received,
        f.readings_sent
    );
    assert!(
        f.reading_max_gap_ms < 300.0,
        "the robot's readings stopped for {:.0} ms through {link} (at 20 Hz)",
        f.reading_max_gap_ms
    );
    client.close().await;
}

/// Watches the test pattern for `RTCBOT_LOSSY_VIDEO_SECS` (20) through 2% loss,
/// decoding every frame as a browser would and asking for a keyframe (PLI) when a
/// picture does not decode or carries no readable stamp. A freeze is the time between
/// two pictures shown; the longest must stay under a second.
async fn video_through_loss() {
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;
    use shared_protocol::Stamp;
    let secs = seconds_from_env("RTCBOT_LOSSY_VIDEO_SECS", 20);
    let t = TestRobot::start().await;
    let mut client = t.client(true).await;
    let mut video = client.take_video().expect("video");
    let mut decoder = Decoder::new().expect("openh264 decoder");
    let mut shown = 0u64;
    let mut last_shown: Option<Instant> = None;
    let mut last_number = 0u32;
    let mut freezes = Vec::new();
    let mut plis = 0u32;
    let mut last_pli = Instant::now() - Duration::from_secs(1);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let frame = within("a video frame through 2% loss", video.recv())
            .await
            .expect("the video stream goes on");
        let stamp = match decoder.decode(&frame.data) {
            Ok(Some(picture)) => {
                let (w, h) = picture.dimensions();
                let (stride, _, _) = picture.strides();
                let y = picture.y();
                Stamp::read(w, h, |x, yy| y[yy * stride + x])
            }
            _ => None,
        };
        match stamp {
            Some(stamp) if shown == 0 || stamp.frame > last_number => {
                last_number = stamp.frame;
                let now = Instant::now();
                if let Some(previous) = last_shown {
                    let gap = now - previous;
                    if gap > Duration::from_millis(200) {
                        freezes.push(gap);
                    }
                }
                last_shown = Some(now);
                shown += 1;
            }
            _ => {
                if last_pli.elapsed() > Duration::from_millis(200) {
                    last_pli = Instant::now();
                    plis += 1;
                    let _ = client.request_keyframe().await;
                }
            }
        }
    }
    freezes.sort();
    let longest = freezes.last().copied().unwrap_or_default();
    println!(
        "video through 2% loss: {shown} pictures shown in {secs} s (30 fps sent), {} freezes \
         over 200 ms, the longest {longest:?}; {plis} keyframe requests",
        freezes.len()
    );
    assert!(
        longest < Duration::from_secs(1),
        "the video froze for {longest:?} through 2% loss (freezes over 200 ms: {freezes:?})"
    );
    assert!(
        shown >= secs * 30 / 2,
        "only {shown} pictures shown in {secs} s of 30 fps through 2% loss"
    );
    client.close().await;
}

/// The robot for a shaped link: the noisy pattern at 640x480, and for one viewer its
/// one ICE port [`narrowing::ROBOT_PORT`] (`robot_port`; each peer binds its own
/// socket); the namespace's loopback at a 1500-byte MTU (its 64 KiB would let one TCP
/// segment outgrow the bucket).
async fn robot_for_shaping(congestion_control: bool, robot_port: bool) -> TestRobot {
    let ip = std::process::Command::new("ip")
        .args(["link", "set", "lo", "mtu", "1500"])
        .status()
        .expect("ip (iproute2)");
    assert!(ip.success(), "ip link set lo mtu 1500 failed");
    let mut config = TestRobot::config();
    config.video.congestion_control = congestion_control;
    if robot_port {
        config.webrtc.ice_udp = vec![format!("127.0.0.1:{}", narrowing::ROBOT_PORT)];
    }
    let noisy = TestPattern::new(640, 480).unwrap().with_noise(6);
    let robot = Robot::builder(config).video(noisy).start().unwrap();
    TestRobot::serve(robot).await
}

/// The slow viewer's ICE port, whose path [`narrowing::shape_viewer`] narrows.
const SLOW_VIEWER_PORT: u16 = 40_002;

/// One driving viewer on a wide path, one watching through 800 kbit/s; see the module
/// docs.
async fn two_viewers_one_slow() {
    let secs = seconds_from_env("RTCBOT_TWO_VIEWERS_SECS", 20) as f64;
    let t = robot_for_shaping(true, false).await;
    narrowing::shape_viewer(SLOW_VIEWER_PORT, 800)
        .expect("shaping the slow viewer's path on the namespace's loopback");
    let mut fast = t.client(true).await;
    // It drives, so the encoder follows its path.
    fast.send(&Control::Drive(DriveState::new(0.0, 0.0, 1).unwrap()))
        .await
        .unwrap();
    within("the fast viewer to get the drive", async {
        while let Some(message) = fast.recv().await {
            if matches!(message, Telemetry::Status(s) if s.you_drive) {
                return;
            }
        }
        panic!("the fast viewer's connection ended before it got the drive");
    })
    .await;
    let mut slow = t
        .client_with(ClientOptions {
            ice_udp: vec![format!("127.0.0.1:{SLOW_VIEWER_PORT}")],
            // A browser's pace of ICE checks, not the test client's 100 a second
            // (their replies would take 80 kbit/s of the slow path).
            ice_tick: None,
            ..ClientOptions::default()
        })
        .await;
    let mut fast_video = Watcher::new(&mut fast).unwrap();
    let mut slow_video = Watcher::new(&mut slow).unwrap();
    // The driver keeps driving (standing still, at 10 Hz), as a page does, or its
    // drive would lapse.
    let seq = std::sync::atomic::AtomicU64::new(2);
    let driving = async {
        loop {
            let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = fast
                .send(&Control::Drive(DriveState::new(0.0, 0.0, n).unwrap()))
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let watching = async {
        // The slow viewer's estimate finds its path and its layer follows; then
        // measure.
        let settle = 8.0;
        let (a, b) = tokio::join!(
            fast_video.watch(&fast, settle),
            slow_video.watch(&slow, settle)
        );
        let (_, _) = (a.unwrap(), b.unwrap());
        let (a, b) = tokio::join!(fast_video.watch(&fast, secs), slow_video.watch(&slow, secs));
        (a.unwrap(), b.unwrap())
    };
    let (fast_seen, slow_seen) = tokio::select! {
        seen = watching => seen,
        () = driving => unreachable!("driving ends only with the test"),
    };
    let peers = t.robot.peers();
    let layers: Vec<_> = peers
        .iter()
        .filter_map(|p| Some((p.drives, p.link?.layers, p.link?.layer_switches)))
        .collect();
    let c = t.robot.counters();
    println!(
        "two viewers, one through 800 kbit/s: fast {}, slow {}; (drives, layers,          switches) {layers:?}; encoder target {} kbit/s, {} encoder(s), {} keyframes; \
         keyframe requests: fast {}, slow {}",
        fast_seen.to_json(),
        slow_seen.to_json(),
        c.target_kbps,
        c.encoders_started,
        c.keyframes,
        fast_video.keyframe_requests,
        slow_video.keyframe_requests,
    );
    assert_eq!(c.encoders_started, 1, "one encoder serves both viewers");
    assert!(
        fast_seen.fps() >= 27.0,
        "the fast viewer should keep every frame of 30 fps: {}",
        fast_seen.to_json()
    );
    assert!(
        (11.0..=20.0).contains(&slow_seen.fps()),
        "the slow viewer should get the base layer, about 15 fps: {}",
        slow_seen.to_json()
    );
    let p95 = slow_seen.latency_p(0.95);
    assert!(
        p95 < 500.0,
        "the slow viewer's latency p95 {p95:.0} ms: the base layer should keep its queue          short ({})",
        slow_seen.to_json()
    );
    assert!(
        layers
            .iter()
            .any(|&(drives, _, switches)| !drives && switches >= 1),
        "the slow viewer went to the base layer: (drives, layers, switches) {layers:?}"
    );
    assert!(
        layers
            .iter()
            .any(|&(drives, l, switches)| drives && l == Layers::All && switches == 0),
        "the driver got every frame all along: (drives, layers, switches) {layers:?}"
    );
    fast.close().await;
    slow.close().await;
}

/// Watches the noisy pattern through the narrowing link, with congestion control on
/// or off, and checks what each must show.
async fn watch_through_narrowing(congestion_control: bool) {
    let scale = std::env::var("RTCBOT_NARROWING_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    let t = robot_for_shaping(congestion_control, true).await;
    narrowing::shape_uplink(narrowing::ROBOT_PORT, 5000)
        .expect("shaping the robot's uplink on the namespace's loopback");
    let mut client = t.client(true).await;
    let mut phases = narrowing::narrowing_phases(scale).to_vec();
    if !congestion_control {
        // Enough to show the queue building; the rest would only drain it.
        phases.truncate(2);
        phases[0].seconds = phases[0].seconds.min(4.0);
    }
    let planned: f64 = phases.iter().map(|p| p.seconds).sum();
    let trace = tokio::time::timeout(
        Duration::from_secs_f64(planned + 30.0),
        narrowing::watch(&t.robot, &mut client, &phases, narrowing::set_rate),
    )
    .await
    .unwrap_or_else(|_| panic!("the run through the narrowing link took {planned} s + 30 s"))
    .expect("watching through the narrowing link");
    let on = if congestion_control { "on" } else { "off" };
    println!(
        "narrowing link, congestion control {on}: {}",
        trace.to_json()
    );
    // Beside the browser tests' screenshots: the half-second trace, for a person.
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let table = artifacts.join(format!("narrowing-link-congestion-control-{on}.md"));
    if std::fs::create_dir_all(&artifacts).is_ok() && std::fs::write(&table, trace.table()).is_ok()
    {
        println!("latency trace: {}", table.display());
    }
    let narrow = &trace.phases[1];
    if congestion_control {
        let p95 = narrow.latency_p(0.95);
        assert!(
            p95 < 250.0,
            "glass-to-glass latency p95 {p95:.0} ms while the link carried 800 kbit/s \
             (congestion control on): {}",
            trace.to_json()
        );
        let back = &trace.phases[2];
        assert!(
            back.adapted_after_s.is_some_and(|s| s <= 10.0),
            "the bitrate did not come back within 10 s of the link widening: {}",
            trace.to_json()
        );
    } else {
        let worst = narrow.latency_ms.last().copied().unwrap_or(0.0);
        assert!(
            worst > 1000.0,
            "without congestion control the latency should grow past 1 s on an \
             800 kbit/s link, but its worst was {worst:.0} ms: {}",
            trace.to_json()
        );
    }
    client.close().await;
}

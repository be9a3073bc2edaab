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
//! and says so. `RTCBOT_LOSSY_SECS` shortens the drive for a quick local run. The
//! round-trip figures it prints are for reading; the benchmark reports them as JSON.

mod common;

use common::{within, TestRobot, WAIT};
use shared_protocol::{Control, DriveState, Ping, Telemetry};
use std::process::Command;
use std::time::{Duration, Instant};

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
    let rules = format!(
        "table inet lossy {{
  chain out {{
    type filter hook input priority 0;
    meta l4proto udp numgen random mod 100 < {loss_percent} drop
  }}
}}"
    );
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "set -e; ip link set lo up; printf '%s\\n' '{rules}' | nft -f -; \
         nft list ruleset | grep -q 'numgen random mod 100 < {loss_percent} drop'; \
         exec \"$0\" --exact {test} --nocapture --test-threads=1"
    );
    let run = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script])
        .arg(&exe)
        .env(INNER, test)
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    // The inner run's lines, but not its own "test result" line: the runner's summary
    // counts this test once, from the outer run.
    for line in String::from_utf8_lossy(&run.stdout).lines() {
        println!("  inner: {}", line.replace("test result:", "inner result:"));
    }
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        run.status.success(),
        "the lossy-link run failed ({}); it needs root, `unshare` and `nft` \
         (Debian's nftables): see its output above",
        run.status
    );
}

/// How long a run lasts: `var` (seconds) for a quick local run, else `default`.
fn seconds_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn twenty_hz_driving_through_5_percent_loss_never_trips_the_deadman() {
    in_lossy_namespace(
        "twenty_hz_driving_through_5_percent_loss_never_trips_the_deadman",
        5,
        drive_through_loss(),
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

async fn drive_through_loss() {
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
    let mut notices = t.robot.controls().notices();
    let mut drive = t.robot.controls().drive();

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut seq = 0u64;
    let mut pings = std::collections::HashMap::new();
    let mut rtts = Vec::new();
    let mut silence_stops = Vec::new();
    let mut seen = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                let state = DriveState::new(0.5, if seq % 40 < 20 { 0.25 } else { -0.25 }, seq).unwrap();
                client.send(&Control::Drive(state)).await.expect("a drive state is sent");
                if seq & 1 == 0 {
                    pings.insert(seq as i128, Instant::now());
                    client
                        .send(&Control::Ping(Ping { id: seq as i128, t: 0.0 }))
                        .await
                        .expect("a ping is sent");
                }
            }
            Ok(()) = drive.changed() => {
                seen += 1;
            }
            Ok(notice) = notices.recv() => {
                if notice.stopped {
                    silence_stops.push(format!("{:.1} s: {}", started.elapsed().as_secs_f64(), notice.reason));
                }
            }
            Some(msg) = client.recv() => {
                if let Telemetry::Pong(pong) = msg {
                    if let Some(sent) = pings.remove(&pong.id) {
                        rtts.push(sent.elapsed());
                    }
                }
            }
        }
    }
    rtts.sort();
    let pct =
        |p: f64| rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1)));
    println!(
        "lossy link: {seq} drive states sent in {secs} s, the robot saw {seen} changes; \
         ping round trip p50 {:?}, p99 {:?} over {} pongs ({} lost)",
        pct(0.5),
        pct(0.99),
        rtts.len(),
        pings.len()
    );
    assert!(
        silence_stops.is_empty(),
        "the dead-man stopped the motors while the driver kept sending at 20 Hz through \
         5% loss: {silence_stops:?}"
    );
    assert!(
        seen * 100 >= seq * 80,
        "the robot saw only {seen} of {seq} drive states through 5% loss"
    );
    assert!(!rtts.is_empty(), "some pings came back through 5% loss");
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

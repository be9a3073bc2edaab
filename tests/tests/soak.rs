//! Soak: 100 connect / first video frame / close cycles against one robot leave no
//! file descriptor and no task behind. The figures come from the same reading as the
//! robot's `/health` (`process`), taken in this process, which holds both the robot
//! and the clients. `native/bench`'s `rtcbot-soak` runs 1,000 cycles against the robot
//! binary and prints RSS, threads, tasks and descriptors as JSON.

mod common;

use common::{within, TestRobot, WAIT};
use rtcbot::robot::ProcessStats;
use std::time::{Duration, Instant};

const CYCLES: usize = 100;
/// Cycles before the baseline is taken: pools (blocking threads, buffers, the
/// encoder) have filled by then.
const WARM_UP: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_viewer_cycles_leave_no_descriptor_or_task_behind() {
    let t = TestRobot::start().await;
    let mut baseline = None;
    let started = Instant::now();
    for cycle in 0..CYCLES {
        if cycle == WARM_UP {
            baseline = Some(settled(&t).await);
        }
        let mut client = t.client(true).await;
        let mut video = client.take_video().expect("a video stream");
        within("a video frame", video.recv())
            .await
            .expect("the robot sends video");
        client.close().await;
        drop(client);
        within("the robot to drop the peer", async {
            while t.robot.peer_count() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
    let baseline = baseline.unwrap();
    let end = settled(&t).await;
    // Every closed peer's state is freed: a reference cycle between a connection and
    // its handler once kept each one (and ~370 KB of the WebRTC stack) alive.
    let deadline = Instant::now() + WAIT;
    while rtcbot::rtc::peer::live_peer_states() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rtcbot::rtc::peer::live_peer_states(),
        0,
        "closed peers' states are still alive after {CYCLES} cycles"
    );
    println!(
        "soak: {CYCLES} cycles in {:.1} s; after {WARM_UP}: {baseline:?}; at the end: {end:?}",
        started.elapsed().as_secs_f64()
    );
    // Descriptors and tasks of closed peers go away, though not always at once:
    // wait for them (up to WAIT) before calling it a leak.
    let deadline = Instant::now() + WAIT;
    let mut now = end;
    while (now.fds > baseline.fds || now.tasks > baseline.tasks) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = ProcessStats::now();
    }
    assert!(
        now.fds <= baseline.fds,
        "file descriptors grew over {} cycles: {:?} after {WARM_UP}, {:?} at the end",
        CYCLES - WARM_UP,
        baseline.fds,
        now.fds
    );
    assert!(
        now.tasks <= baseline.tasks,
        "tokio tasks grew over {} cycles: {:?} after {WARM_UP}, {:?} at the end",
        CYCLES - WARM_UP,
        baseline.tasks,
        now.tasks
    );
}

/// The figures once no peer is left and the task count stopped falling.
async fn settled(t: &TestRobot) -> ProcessStats {
    assert_eq!(t.robot.peer_count(), 0);
    let mut last = ProcessStats::now();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = ProcessStats::now();
        if now.tasks >= last.tasks && now.fds >= last.fds {
            return now;
        }
        last = now;
    }
    last
}

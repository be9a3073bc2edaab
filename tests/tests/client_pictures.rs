//! The Rust client's decoded pictures (`RobotClient::pictures`) from a real robot:
//! in order, stamped, of the robot's size, live; a slow reader gets recent pictures,
//! not a backlog.

mod common;
use common::*;
use rtcbot::rtc::client::{ClientError, PICTURE_QUEUE};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_decodes_60_pictures_with_increasing_stamps() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(true).await;
    let mut pictures = client.pictures().expect("video was asked for");
    let mut frames = Vec::new();
    let mut latencies = Vec::new();
    within("60 decoded pictures", async {
        while frames.len() < 60 {
            let picture = pictures
                .next()
                .await
                .expect("the video ended")
                .expect("the robot's video decodes");
            assert_eq!((picture.width(), picture.height()), (640, 480));
            assert_eq!(picture.rgb().len(), 640 * 480 * 3);
            let stamp = picture.stamp().expect("the test pattern's stamp");
            frames.push(stamp.frame);
            latencies.push(picture.latency().expect("a stamped picture has a latency"));
        }
    })
    .await;
    assert!(
        frames.windows(2).all(|w| w[1] > w[0]),
        "stamps must increase: {frames:?}"
    );
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(500),
        "capture to decoded takes {median:?} on loopback (median)"
    );
    // Taken once.
    assert!(matches!(client.pictures(), Err(ClientError::NotReady(_))));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_recent_pictures_not_a_backlog() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(true).await;
    let mut pictures = client.pictures().unwrap();
    let first = within("a first picture", pictures.next_picture())
        .await
        .expect("the video ended");
    let first = first.stamp().expect("stamped").frame;
    // Not reading: the queue fills and its oldest pictures are dropped.
    let before = pictures.dropped();
    eventually("10 pictures dropped for the slow reader", || {
        pictures.dropped() >= before + 10
    })
    .await;
    let next = within("the next picture", pictures.next_picture())
        .await
        .expect("the video ended");
    let next = next.stamp().expect("stamped").frame;
    assert!(
        next > first + 10,
        "after {} drops the reader got frame {next}, right after {first}",
        pictures.dropped()
    );
    // What waits is the newest few, no more.
    let newest = pictures.latest().expect("pictures wait");
    let newest = newest.stamp().expect("stamped").frame;
    assert!(
        newest - next <= PICTURE_QUEUE as u32 + 2,
        "frame {newest} waited behind {next}: the queue holds {PICTURE_QUEUE}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_video_there_are_no_pictures() {
    let robot = TestRobot::start().await;
    let mut client = robot.client(false).await;
    let err = client.pictures().err().expect("no video was asked for");
    assert!(err.to_string().contains("no video"), "{err}");
    client.close().await;
}

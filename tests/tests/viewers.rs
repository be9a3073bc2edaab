//! Several viewers share one encoder: N viewers never cost N encodes.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_get_the_same_frames_from_one_encoder() {
    let robot = TestRobot::start().await;
    let mut a = robot.client(true).await;
    let mut b = robot.client(true).await;
    let mut va = a.take_video().unwrap();
    let mut vb = b.take_video().unwrap();
    let (sa, sb) = tokio::join!(decode_stamps(&mut va, 30), decode_stamps(&mut vb, 30));
    let na: Vec<u32> = sa.iter().map(|s| s.frame).collect();
    let nb: Vec<u32> = sb.iter().map(|s| s.frame).collect();
    assert!(
        na.iter().any(|n| nb.contains(n)),
        "both viewers must see the same frames: {na:?} vs {nb:?}"
    );

    let c = robot.robot.counters();
    assert_eq!(c.encoders_started, 1, "one encoder for all viewers");
    assert_eq!(c.viewers, 2);
    // Every captured frame is encoded at most once, however many viewers there are.
    assert!(
        c.frames_encoded <= c.frames_captured,
        "encoded {} frames from {} captured",
        c.frames_encoded,
        c.frames_captured
    );
    let span = u64::from(na.last().unwrap().max(nb.last().unwrap()) - na[0].min(nb[0]));
    assert!(
        c.frames_encoded >= span,
        "{} encoded, {span} seen",
        c.frames_encoded
    );

    a.close().await;
    b.close().await;
    eventually("both peers to be removed", || robot.robot.peer_count() == 0).await;
    eventually("the viewers to leave the stream", || {
        robot.robot.counters().viewers == 0
    })
    .await;
}

//! Several viewers share one encoder: N viewers never cost N encodes.

mod common;
use common::*;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_get_the_same_frames_from_one_encoder() {
    let robot = TestRobot::start().await;
    let mut a = robot.client(true).await;
    let mut b = robot.client(true).await;
    let mut va = a.take_video().unwrap();
    let mut vb = b.take_video().unwrap();
    let before = robot.robot.counters();
    // The first viewer watches twice as long, so the two overlap by 60 frames even
    // when the second one's first picture comes up to two seconds later (once on a
    // loaded CI machine it waited for the periodic keyframe).
    let (sa, sb) = tokio::join!(decode_stamps(&mut va, 120), decode_stamps(&mut vb, 60));
    let after = robot.robot.counters();

    // One encoder: a frame number means one picture, captured once, so both viewers
    // see the same capture time for it (two pipelines would stamp it twice, at
    // different times; two encoders on one source would split the frames).
    let by_frame = |s: &[shared_protocol::Stamp]| -> BTreeMap<u32, u64> {
        s.iter().map(|s| (s.frame, s.capture_us)).collect()
    };
    let (ma, mb) = (by_frame(&sa), by_frame(&sb));
    let from = *ma.keys().next().unwrap().max(mb.keys().next().unwrap());
    let to = *ma.keys().last().unwrap().min(mb.keys().last().unwrap());
    assert!(
        to >= from + 20,
        "the viewers' frames overlap too little: {:?} vs {:?}",
        ma.keys(),
        mb.keys()
    );
    let common_a: Vec<_> = ma.range(from..=to).collect();
    let common_b: Vec<_> = mb.range(from..=to).collect();
    assert_eq!(
        common_a, common_b,
        "both viewers must get the same frames, stamped once"
    );

    let c = robot.robot.counters();
    assert_eq!(c.encoders_started, 1, "one encoder for all viewers");
    assert_eq!(c.viewers, 2);
    // While both watched, each frame was encoded once: the encoder's count grew by
    // about the frames one viewer saw, not twice that.
    let seen = u64::from(sa.last().unwrap().frame.max(sb.last().unwrap().frame))
        - u64::from(sa[0].frame.min(sb[0].frame));
    let encoded = after.frames_encoded - before.frames_encoded;
    assert!(
        encoded <= seen + 30 && encoded + 30 >= seen,
        "{encoded} frames encoded while the viewers saw a span of {seen}"
    );

    a.close().await;
    b.close().await;
    eventually("both peers to be removed", || robot.robot.peer_count() == 0).await;
    eventually("the viewers to leave the stream", || {
        robot.robot.counters().viewers == 0
    })
    .await;
}

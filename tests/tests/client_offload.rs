//! The offloading example (`native/examples/offload.rs`, compiled in here) against a
//! real robot whose camera plays a clip: a red target left of centre, then right of
//! it, and again. The robot's drive state turns left, then right.

mod common;
use common::*;

#[allow(dead_code)]
#[path = "../../native/examples/offload.rs"]
mod offload;

use rtcbot::video::{now_us, Frame, SourceError, VideoSource};
use rtcbot::Robot;
use std::time::Instant;

/// Frames the target stays on one side.
const SIDE_FRAMES: u32 = 20;

/// Grey frames with a red square left of centre for [`SIDE_FRAMES`] frames, then
/// right of it, and so on.
struct Clip {
    width: usize,
    height: usize,
    next: u32,
}

impl VideoSource for Clip {
    fn name(&self) -> &str {
        "left-right clip"
    }

    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
        let (w, h) = (self.width, self.height);
        *frame = Frame::new(w, h);
        frame.data[..w * h].fill(110);
        let side = h / 4;
        let left = (self.next / SIDE_FRAMES).is_multiple_of(2);
        let x0 = if left { w / 8 } else { w - w / 8 - side };
        let y0 = h / 2 - side / 2;
        let luma = w * h;
        let (u, v) = frame.data[luma..].split_at_mut(luma / 4);
        for row in y0 / 2..(y0 + side) / 2 {
            for col in x0 / 2..(x0 + side) / 2 {
                // The test pattern's red bar.
                u[row * w / 2 + col] = 100;
                v[row * w / 2 + col] = 212;
            }
        }
        for row in y0..y0 + side {
            frame.data[row * w + x0..row * w + x0 + side].fill(65);
        }
        frame.number = self.next;
        frame.capture_us = now_us();
        frame.captured = Instant::now();
        self.next += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offloading_example_steers_left_then_right() {
    let config = TestRobot::config();
    let (width, height) = (config.video.width as usize, config.video.height as usize);
    let robot = Robot::builder(config)
        .video(Clip {
            width,
            height,
            next: 0,
        })
        .start()
        .expect("the robot starts with the clip");
    let robot = TestRobot::serve(robot).await;
    let mut drive = robot.robot.controls().drive();
    let (quit_tx, quit) = tokio::sync::watch::channel(false);
    let url = robot.url("/connect");
    let program =
        tokio::spawn(
            async move { offload::run(&url, rtcbot::ClientOptions::default(), quit).await },
        );

    within("the robot to turn left (the target is left)", async {
        drive
            .wait_for(|s| s.turn < -0.5)
            .await
            .expect("the robot runs");
    })
    .await;
    let left = *drive.borrow();
    assert!(left.forward > 0.0, "it drives towards the target: {left:?}");
    within("the robot to turn right (the target moved right)", async {
        drive
            .wait_for(|s| s.turn > 0.5)
            .await
            .expect("the robot runs");
    })
    .await;
    // A steady stream of states: the robot is steered, not left to its silence stop.
    let stops_before = robot.robot.controls().silence_stops();

    quit_tx.send_replace(true);
    within("the example to stop", program)
        .await
        .expect("the example's task")
        .expect("the example ends cleanly");
    within("the robot to stop", async {
        drive
            .wait_for(|s| s.is_stopped())
            .await
            .expect("the robot runs");
    })
    .await;
    assert_eq!(robot.robot.controls().silence_stops(), stops_before);
}

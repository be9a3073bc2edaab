//! RTCBot's "Offloading Computation" in Rust: the robot only streams; this desktop
//! program receives its video as pictures, finds a red target in each with plain
//! pixel operations, and steers the robot towards it with full drive states at 20 Hz
//! (forward while it sees the target, turning to keep it centred; a stop when it loses
//! it).
//!
//! ```sh
//! cargo run -p rtcbot-native --example offload -- http://robot:8080/connect?token=…
//! ```
//!
//! Hold something red in front of the robot's camera.

use rtcbot::protocol::{Control, DriveState};
use rtcbot::rtc::client::Picture;
use rtcbot::{ClientOptions, RobotClient};
use std::time::Duration;
use tokio::sync::watch;

/// How often a drive state goes to the robot.
pub const PERIOD: Duration = Duration::from_millis(50);
/// Chroma samples that must be red to count as a target (of the picture's).
pub const MIN_FRACTION: f64 = 0.002;

/// Where the target is in a picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Horizontal centre, -1 (left edge) to 1 (right edge).
    pub x: f64,
    /// Share of the picture it covers.
    pub fraction: f64,
}

/// Whether a chroma sample is saturated red: high Cr, low Cb.
pub fn is_red(u: u8, v: u8) -> bool {
    v >= 180 && u <= 120
}

/// Finds the red target: the centre of the red chroma samples, when enough are.
pub fn find_target(picture: &Picture) -> Option<Target> {
    let cw = picture.width() / 2;
    if cw == 0 {
        return None;
    }
    let (mut count, mut sum_x) = (0usize, 0usize);
    for (i, (u, v)) in picture.u().iter().zip(picture.v()).enumerate() {
        if is_red(*u, *v) {
            count += 1;
            sum_x += i % cw;
        }
    }
    let fraction = count as f64 / picture.u().len().max(1) as f64;
    (fraction >= MIN_FRACTION).then(|| Target {
        x: (sum_x as f64 / count as f64 + 0.5) / cw as f64 * 2.0 - 1.0,
        fraction,
    })
}

/// `(forward, turn)` towards `target`: turn in proportion to how far off centre it is,
/// forward slower the more it has to turn; a stop when there is none.
pub fn steer(target: Option<Target>) -> (f64, f64) {
    match target {
        Some(t) => {
            let turn = (t.x * 1.5).clamp(-1.0, 1.0);
            (0.4 * (1.0 - turn.abs()), turn)
        }
        None => (0.0, 0.0),
    }
}

/// Connects to `url` and steers towards the target until the video ends or `quit`
/// turns true; stops the robot before returning.
pub async fn run(
    url: &str,
    options: ClientOptions,
    mut quit: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut client = RobotClient::connect(url, options).await?;
    let mut pictures = client.pictures()?;
    let mut tick = tokio::time::interval(PERIOD);
    let (mut seq, mut aim) = (0u64, (0.0, 0.0));
    let result = loop {
        tokio::select! {
            item = pictures.next() => match item {
                Some(Ok(picture)) => aim = steer(find_target(&picture)),
                // A unit that did not decode: keep the last aim until the next picture.
                Some(Err(_)) => {}
                None => break Ok(()),
            },
            _ = tick.tick() => {
                seq += 1;
                let state = DriveState::new(aim.0, aim.1, seq)?;
                if let Err(err) = client.send(&Control::Drive(state)).await {
                    break Err(err.into());
                }
            }
            // Told to quit (or the one who could tell is gone).
            _ = quit.changed() => break Ok(()),
        }
    };
    seq += 1;
    let stop = DriveState {
        seq,
        ..DriveState::STOP
    };
    let _ = client.send(&Control::Drive(stop)).await;
    client.close().await;
    result
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("http://localhost:8080/connect".into());
    let options = ClientOptions {
        ice_udp: vec!["0.0.0.0:0".into()],
        token: std::env::var("RTCBOT_TOKEN").ok(),
        ..ClientOptions::default()
    };
    let (quit_tx, quit) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        quit_tx.send_replace(true);
    });
    println!("steering towards red in {url}'s video; Ctrl-C stops");
    run(&url, options, quit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 64x32 picture with a red 8x8 square whose left edge is at `x`.
    fn with_square(x: usize) -> Picture {
        let (w, h) = (64, 32);
        let mut yuv = vec![128u8; w * h];
        yuv.extend(vec![128u8; w * h / 2]);
        let (u, v) = yuv[w * h..].split_at_mut(w * h / 4);
        for row in 8 / 2..16 / 2 {
            for col in x / 2..(x + 8) / 2 {
                u[row * w / 2 + col] = 100;
                v[row * w / 2 + col] = 212;
            }
        }
        Picture::from_i420(w, h, yuv).unwrap()
    }

    #[test]
    fn the_target_is_found_left_or_right_and_steered_to() {
        let left = find_target(&with_square(0)).expect("a target");
        assert!((left.x - -0.875).abs() < 1e-9, "{left:?}");
        let right = find_target(&with_square(56)).expect("a target");
        assert!((right.x - 0.875).abs() < 1e-9, "{right:?}");
        assert!(steer(Some(left)).1 < -0.9 && steer(Some(right)).1 > 0.9);
        let centre = steer(find_target(&with_square(28)));
        assert_eq!(centre, (0.4, 0.0));
        let grey = Picture::from_i420(64, 32, vec![128; 64 * 32 * 3 / 2]).unwrap();
        assert_eq!(find_target(&grey), None);
        assert_eq!(steer(None), (0.0, 0.0));
    }
}

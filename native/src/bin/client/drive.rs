//! Driving, whatever the input: held directions fold into `(forward, turn)`, and a
//! 20 Hz ticker decides what goes to the robot (the full state every tick while
//! moving, one stop when it stops), as the browser app does.

use rtcbot::protocol::{Control, DriveState};
use rtcbot::RobotClient;
use std::time::Duration;
use tokio::sync::watch;

/// How often a moving state is sent.
pub const DRIVE_PERIOD: Duration = Duration::from_millis(50);

/// What the driver holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// W / up.
    pub forward: bool,
    /// S / down.
    pub back: bool,
    /// A / left.
    pub left: bool,
    /// D / right.
    pub right: bool,
    /// Shift: half speed.
    pub slow: bool,
}

impl Held {
    /// `(forward, turn)` in `[-1, 1]`: opposite keys cancel, `slow` halves both.
    pub fn axes(&self) -> (f64, f64) {
        let axis = |plus: bool, minus: bool| f64::from(i8::from(plus) - i8::from(minus));
        let scale = if self.slow { 0.5 } else { 1.0 };
        (
            axis(self.forward, self.back) * scale,
            axis(self.right, self.left) * scale,
        )
    }
}

/// Adds two inputs' `(forward, turn)` (keys and a gamepad), clamped to `[-1, 1]`.
pub fn add(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let c = |v: f64| {
        if v.is_finite() {
            v.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    };
    (c(a.0 + b.0), c(a.1 + b.1))
}

/// Decides, each tick, which drive state to send.
#[derive(Debug, Default)]
pub struct Ticker {
    seq: u64,
    moving: bool,
}

impl Ticker {
    /// The state to send now for `(forward, turn)`: every tick while moving, once
    /// when it stops, nothing while stopped.
    pub fn tick(&mut self, (forward, turn): (f64, f64)) -> Option<DriveState> {
        let state = DriveState::new(forward, turn, self.seq + 1).unwrap_or(DriveState::STOP);
        let was_moving = std::mem::replace(&mut self.moving, !state.is_stopped());
        if state.is_stopped() && !was_moving {
            return None;
        }
        self.seq += 1;
        Some(DriveState {
            seq: self.seq,
            ..state
        })
    }

    /// A stop to send on leaving (whatever was sent before).
    pub fn stop(&mut self) -> DriveState {
        self.seq += 1;
        self.moving = false;
        DriveState {
            seq: self.seq,
            ..DriveState::STOP
        }
    }
}

/// Sends `axes` to the robot at 20 Hz until it closes (then a stop) or a send fails.
pub async fn send_loop(
    client: &RobotClient,
    mut axes: watch::Receiver<(f64, f64)>,
) -> anyhow::Result<()> {
    let mut ticker = Ticker::default();
    let mut interval = tokio::time::interval(DRIVE_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = axes.changed() => if changed.is_err() {
                client.send(&Control::Drive(ticker.stop())).await?;
                return Ok(());
            },
        }
        let now = *axes.borrow_and_update();
        if let Some(state) = ticker.tick(now) {
            client.send(&Control::Drive(state)).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keys_fold_into_axes() {
        let held = |forward, back, left, right, slow| Held {
            forward,
            back,
            left,
            right,
            slow,
        };
        assert_eq!(held(true, false, false, false, false).axes(), (1.0, 0.0));
        assert_eq!(held(true, true, false, true, false).axes(), (0.0, 1.0));
        assert_eq!(held(false, true, true, false, true).axes(), (-0.5, -0.5));
        assert_eq!(Held::default().axes(), (0.0, 0.0));
        assert_eq!(add((1.0, 0.5), (0.5, f64::NAN)), (1.0, 0.0));
    }

    #[test]
    fn moving_sends_every_tick_and_stopping_once() {
        let mut t = Ticker::default();
        assert_eq!(t.tick((0.0, 0.0)), None);
        let a = t.tick((1.0, 0.0)).unwrap();
        let b = t.tick((1.0, 0.0)).unwrap();
        assert_eq!((a.forward, a.seq, b.seq), (1.0, 1, 2));
        let stop = t.tick((0.0, 0.0)).unwrap();
        assert!(stop.is_stopped());
        assert_eq!(stop.seq, 3);
        assert_eq!(t.tick((0.0, 0.0)), None);
        // Out of range is a stop, never an error on the wire.
        assert_eq!(t.tick((2.0, 0.0)), None);
        assert_eq!(t.stop().seq, 4);
    }
}

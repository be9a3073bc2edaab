//! Turning keys, gamepad axes and joystick drags into full drive states, and sending
//! them. No UI framework.
//!
//! Only full [`DriveState`]s are sent: [`DriveSender::set`] sends a new state at once
//! whenever it changes and repeats it at a steady rate (20 Hz) while it is non-zero,
//! each time with a new `seq`; a zero state is sent once, when the drive stops.
//!
//! The sender and the mixer run on browser timers (wasm32 only); the mapping from
//! inputs to `(forward, turn)` is pure and tested natively.

#[cfg(target_arch = "wasm32")]
use gloo::timers::callback::Interval;
#[cfg(target_arch = "wasm32")]
use shared_protocol::DriveState;
#[cfg(target_arch = "wasm32")]
use std::cell::{Cell, RefCell};
#[cfg(target_arch = "wasm32")]
use std::rc::Rc;

/// The repeat period of a non-zero drive state: 20 Hz.
pub const REPEAT_MS: u32 = 50;

/// The gamepad dead zone: axes closer to 0 than this read as 0.
pub const DEAD_ZONE: f64 = 0.1;

#[cfg(target_arch = "wasm32")]
/// Sends drive states through a callback; cheap to clone.
#[derive(Clone)]
pub struct DriveSender {
    inner: Rc<Inner>,
}

#[cfg(target_arch = "wasm32")]
struct Inner {
    send: Box<dyn Fn(&DriveState)>,
    state: Cell<DriveState>,
    repeat: RefCell<Option<Interval>>,
    period_ms: u32,
}

#[cfg(target_arch = "wasm32")]
impl DriveSender {
    /// A sender that hands every state to `send`, repeating non-zero states every
    /// `period_ms`.
    pub fn new(period_ms: u32, send: impl Fn(&DriveState) + 'static) -> Self {
        Self {
            inner: Rc::new(Inner {
                send: Box::new(send),
                state: Cell::new(DriveState::STOP),
                repeat: RefCell::new(None),
                period_ms,
            }),
        }
    }

    /// Sets the wanted drive (each axis clamped to `[-1, 1]`, NaN as 0). Sends it at once
    /// when it differs from the current one.
    pub fn set(&self, forward: f64, turn: f64) {
        let (forward, turn) = (tidy(forward), tidy(turn));
        let current = self.inner.state.get();
        if current.forward == forward && current.turn == turn {
            return;
        }
        self.inner.state.set(DriveState {
            forward,
            turn,
            seq: current.seq,
        });
        Inner::send_now(&self.inner);
        let moving = forward != 0.0 || turn != 0.0;
        let mut repeat = self.inner.repeat.borrow_mut();
        if moving && repeat.is_none() {
            let weak = Rc::downgrade(&self.inner);
            *repeat = Some(Interval::new(self.inner.period_ms, move || {
                if let Some(inner) = weak.upgrade() {
                    Inner::send_now(&inner);
                }
            }));
        } else if !moving {
            *repeat = None;
        }
    }

    /// Stops: sends a zero state if the current one is not zero.
    pub fn stop(&self) {
        self.set(0.0, 0.0);
    }

    /// The last state sent.
    pub fn current(&self) -> DriveState {
        self.inner.state.get()
    }
}

#[cfg(target_arch = "wasm32")]
impl Inner {
    fn send_now(inner: &Rc<Self>) {
        let mut state = inner.state.get();
        state.seq += 1;
        inner.state.set(state);
        (inner.send)(&state);
    }
}

/// Where a drive input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Keyboard (WASD / arrows).
    Keys,
    /// Gamepad axes.
    Gamepad,
    /// On-screen joystick.
    Joystick,
}

#[cfg(target_arch = "wasm32")]
/// Keeps the latest `(forward, turn)` of every [`Source`] and drives a [`DriveSender`]
/// with their sum; cheap to clone.
#[derive(Clone)]
pub struct DriveMixer {
    sender: DriveSender,
    sources: Rc<Cell<[(f64, f64); 3]>>,
}

#[cfg(target_arch = "wasm32")]
impl DriveMixer {
    /// A mixer feeding `sender`.
    pub fn new(sender: DriveSender) -> Self {
        Self {
            sender,
            sources: Rc::new(Cell::new([(0.0, 0.0); 3])),
        }
    }

    /// Updates one source and sends the combined drive if it changed.
    pub fn set(&self, source: Source, forward: f64, turn: f64) {
        let mut sources = self.sources.get();
        sources[source as usize] = (tidy(forward), tidy(turn));
        self.sources.set(sources);
        let (forward, turn) = combine(&sources);
        self.sender.set(forward, turn);
    }

    /// Zeroes every source (focus lost, tab hidden) and sends the stop.
    pub fn stop_all(&self) {
        self.sources.set([(0.0, 0.0); 3]);
        self.sender.stop();
    }

    /// The sender behind the mixer.
    pub fn sender(&self) -> &DriveSender {
        &self.sender
    }
}

/// Clamps to `[-1, 1]`, rounds to 1/1000 (so that sub-pixel jitter is not a change)
/// and maps NaN and -0 to 0.
pub fn tidy(v: f64) -> f64 {
    if !v.is_finite() {
        return 0.0;
    }
    let v = (crate::util::clamp(v, -1.0, 1.0) * 1000.0).round() / 1000.0;
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// A driving direction a key stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// W / ArrowUp
    Forward,
    /// S / ArrowDown
    Back,
    /// A / ArrowLeft
    Left,
    /// D / ArrowRight
    Right,
}

impl Dir {
    /// The direction of a key, from the DOM `code` (layout independent) or, when that
    /// is empty or unknown, the `key`.
    pub fn of_key(key: &str, code: &str) -> Option<Self> {
        let by_code = match code {
            "KeyW" | "ArrowUp" => Some(Self::Forward),
            "KeyS" | "ArrowDown" => Some(Self::Back),
            "KeyA" | "ArrowLeft" => Some(Self::Left),
            "KeyD" | "ArrowRight" => Some(Self::Right),
            _ => None,
        };
        by_code.or(match key {
            "w" | "W" | "ArrowUp" | "Up" => Some(Self::Forward),
            "s" | "S" | "ArrowDown" | "Down" => Some(Self::Back),
            "a" | "A" | "ArrowLeft" | "Left" => Some(Self::Left),
            "d" | "D" | "ArrowRight" | "Right" => Some(Self::Right),
            _ => None,
        })
    }
}

/// Folds the held directions into `(forward, turn)`; `slow` halves both.
pub fn fold_keys(held: impl IntoIterator<Item = Dir>, slow: bool) -> (f64, f64) {
    let (mut forward, mut turn) = (0.0f64, 0.0f64);
    let (mut f, mut b, mut l, mut r) = (false, false, false, false);
    for dir in held {
        match dir {
            Dir::Forward => f = true,
            Dir::Back => b = true,
            Dir::Left => l = true,
            Dir::Right => r = true,
        }
    }
    forward += f64::from(u8::from(f)) - f64::from(u8::from(b));
    turn += f64::from(u8::from(r)) - f64::from(u8::from(l));
    let scale = if slow { 0.5 } else { 1.0 };
    (forward * scale, turn * scale)
}

/// Applies the dead zone to one axis.
pub fn dead_zone(v: f64, zone: f64) -> f64 {
    if !v.is_finite() || v.abs() < zone {
        0.0
    } else {
        crate::util::clamp(v, -1.0, 1.0)
    }
}

/// `(forward, turn)` from Gamepad API axes: axis 1 is up-negative, axis 0 is turn.
pub fn gamepad_drive(axes: &[f64]) -> (f64, f64) {
    let axis = |i: usize| axes.get(i).copied().unwrap_or(0.0);
    (
        tidy(-dead_zone(axis(1), DEAD_ZONE)),
        tidy(dead_zone(axis(0), DEAD_ZONE)),
    )
}

/// `(forward, turn)` from a joystick knob offset `(dx, dy)` in pixels (y down) on a pad
/// of `radius` pixels: the offset is clipped to the circle and scaled to `[-1, 1]`.
pub fn joystick_drive(dx: f64, dy: f64, radius: f64) -> (f64, f64) {
    if radius <= 0.0 {
        return (0.0, 0.0);
    }
    let (x, y) = (dx / radius, dy / radius);
    let len = x.hypot(y);
    let (x, y) = if len > 1.0 {
        (x / len, y / len)
    } else {
        (x, y)
    };
    (tidy(-y), tidy(x))
}

/// Adds the sources' `(forward, turn)` and clamps: idle sources add nothing.
pub fn combine(sources: &[(f64, f64)]) -> (f64, f64) {
    let (f, t) = sources
        .iter()
        .fold((0.0, 0.0), |(f, t), (sf, st)| (f + sf, t + st));
    (tidy(f), tidy(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_into_a_full_state() {
        assert_eq!(fold_keys([Dir::Forward], false), (1.0, 0.0));
        assert_eq!(fold_keys([Dir::Forward, Dir::Right], false), (1.0, 1.0));
        assert_eq!(fold_keys([Dir::Forward, Dir::Back], false), (0.0, 0.0));
        assert_eq!(fold_keys([Dir::Back, Dir::Left], true), (-0.5, -0.5));
        assert_eq!(fold_keys([], false), (0.0, 0.0));
        assert_eq!(Dir::of_key("w", ""), Some(Dir::Forward));
        assert_eq!(Dir::of_key("z", "KeyW"), Some(Dir::Forward));
        assert_eq!(Dir::of_key("ArrowLeft", "ArrowLeft"), Some(Dir::Left));
        assert_eq!(Dir::of_key("q", "KeyQ"), None);
    }

    #[test]
    fn gamepad_axes_use_a_dead_zone() {
        assert_eq!(gamepad_drive(&[0.05, -0.09]), (0.0, 0.0));
        assert_eq!(gamepad_drive(&[0.5, -1.0]), (1.0, 0.5));
        assert_eq!(gamepad_drive(&[-0.25, 0.75]), (-0.75, -0.25));
        assert_eq!(gamepad_drive(&[]), (0.0, 0.0));
        assert_eq!(gamepad_drive(&[f64::NAN, 2.0]), (-1.0, 0.0));
    }

    #[test]
    fn joystick_is_clipped_to_its_circle() {
        assert_eq!(joystick_drive(0.0, -50.0, 50.0), (1.0, 0.0));
        assert_eq!(joystick_drive(0.0, -500.0, 50.0), (1.0, 0.0));
        assert_eq!(joystick_drive(25.0, 0.0, 50.0), (0.0, 0.5));
        assert_eq!(joystick_drive(1.0, 1.0, 0.0), (0.0, 0.0));
    }

    #[test]
    fn sources_add_up_and_clamp() {
        assert_eq!(combine(&[(1.0, 0.0), (0.5, 0.5)]), (1.0, 0.5));
        assert_eq!(combine(&[(0.0, 0.0), (-0.3, 0.0)]), (-0.3, 0.0));
        assert_eq!(tidy(-0.0), 0.0);
        assert!(tidy(-0.0).is_sign_positive());
    }
}

//! A gamepad's left stick and d-pad → `(forward, turn)`, as the browser app maps the
//! Gamepad API: stick up is forward, a dead zone around the centre, the d-pad full
//! scale. [`Pad`] is pure (fed axis values and buttons); with the `gamepad` feature,
//! gilrs feeds it from the real devices ([`Gamepads`]).
// Without the feature only the tests use the mapping.
#![cfg_attr(not(feature = "gamepad"), allow(dead_code))]

/// Stick deflections smaller than this count as centred (worn sticks never rest at 0).
pub const DEAD_ZONE: f32 = 0.1;

/// The state of one gamepad's driving controls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pad {
    /// Left stick, right positive (gilrs's `LeftStickX`).
    pub stick_x: f32,
    /// Left stick, up positive (gilrs's `LeftStickY`).
    pub stick_y: f32,
    /// D-pad up, down, left, right held.
    pub dpad: [bool; 4],
}

/// One axis with the dead zone applied; NaN or out of range is clamped or centred.
pub fn dead_zone(v: f32) -> f64 {
    if !v.is_finite() || v.abs() < DEAD_ZONE {
        0.0
    } else {
        f64::from(v.clamp(-1.0, 1.0))
    }
}

impl Pad {
    /// `(forward, turn)`: the d-pad when it is held, else the stick.
    pub fn axes(&self) -> (f64, f64) {
        let [up, down, left, right] = self.dpad;
        if self.dpad.iter().any(|b| *b) {
            let axis = |plus: bool, minus: bool| f64::from(i8::from(plus) - i8::from(minus));
            return (axis(up, down), axis(right, left));
        }
        // Rounded to 1/1000, so stick noise is not a change on the wire.
        let tidy = |v: f64| (v * 1000.0).round() / 1000.0 + 0.0;
        (tidy(dead_zone(self.stick_y)), tidy(dead_zone(self.stick_x)))
    }
}

#[cfg(feature = "gamepad")]
mod devices {
    use super::Pad;
    use gilrs::{Axis, Button, EventType};

    impl Pad {
        /// Applies one gilrs event (others than sticks and d-pad change nothing).
        pub fn apply(&mut self, event: &EventType) {
            match event {
                EventType::AxisChanged(axis, v, _) => self.axis(*axis, *v),
                EventType::ButtonPressed(b, _) | EventType::ButtonRepeated(b, _) => {
                    self.button(*b, true)
                }
                EventType::ButtonReleased(b, _) => self.button(*b, false),
                // A pad that goes away stops the robot.
                EventType::Disconnected => *self = Pad::default(),
                _ => {}
            }
        }

        /// A stick moved.
        pub fn axis(&mut self, axis: Axis, value: f32) {
            match axis {
                Axis::LeftStickX => self.stick_x = value,
                Axis::LeftStickY => self.stick_y = value,
                _ => {}
            }
        }

        /// A button went down or up.
        pub fn button(&mut self, button: Button, down: bool) {
            let i = match button {
                Button::DPadUp => 0,
                Button::DPadDown => 1,
                Button::DPadLeft => 2,
                Button::DPadRight => 3,
                _ => return,
            };
            self.dpad[i] = down;
        }
    }

    /// The machine's gamepads (the last one moved drives).
    pub struct Gamepads {
        gilrs: gilrs::Gilrs,
        pad: Pad,
    }

    impl Gamepads {
        /// Opens them; `None` (with a log line) where gamepads cannot be read.
        pub fn open() -> Option<Self> {
            match gilrs::Gilrs::new() {
                Ok(gilrs) => Some(Self {
                    gilrs,
                    pad: Pad::default(),
                }),
                Err(err) => {
                    tracing::info!("no gamepads: {err}");
                    None
                }
            }
        }

        /// Reads the events waiting; the driving axes now.
        pub fn poll(&mut self) -> (f64, f64) {
            while let Some(event) = self.gilrs.next_event() {
                self.pad.apply(&event.event);
            }
            self.pad.axes()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn gilrs_axes_and_buttons_drive_the_pad() {
            // gilrs makes no event codes outside a device, so events without them.
            let mut pad = Pad::default();
            pad.axis(Axis::LeftStickY, 0.8);
            pad.axis(Axis::LeftStickX, -0.05);
            pad.axis(Axis::RightStickX, 1.0);
            assert_eq!(pad.axes(), (0.8, 0.0));
            pad.button(Button::DPadLeft, true);
            assert_eq!(pad.axes(), (0.0, -1.0));
            pad.button(Button::DPadLeft, false);
            pad.button(Button::South, true);
            assert_eq!(pad.axes(), (0.8, 0.0));
            pad.apply(&EventType::Disconnected);
            assert_eq!(pad.axes(), (0.0, 0.0));
        }
    }
}

#[cfg(feature = "gamepad")]
pub use devices::Gamepads;

/// Without the `gamepad` feature: no gamepads.
#[cfg(not(feature = "gamepad"))]
pub struct Gamepads;

#[cfg(not(feature = "gamepad"))]
impl Gamepads {
    /// Always `None`: built without the `gamepad` feature.
    pub fn open() -> Option<Self> {
        tracing::info!("built without the gamepad feature: no gamepads");
        None
    }

    /// Never called.
    pub fn poll(&mut self) -> (f64, f64) {
        (0.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stick_has_a_dead_zone_and_the_dpad_wins() {
        let pad = |x, y| Pad {
            stick_x: x,
            stick_y: y,
            dpad: [false; 4],
        };
        assert_eq!(pad(0.05, -0.09).axes(), (0.0, 0.0));
        assert_eq!(pad(0.5, 1.0).axes(), (1.0, 0.5));
        assert_eq!(pad(-0.25, -0.75).axes(), (-0.75, -0.25));
        assert_eq!(pad(f32::NAN, 2.0).axes(), (1.0, 0.0));
        let held = Pad {
            dpad: [true, false, false, true],
            ..pad(-1.0, -1.0)
        };
        assert_eq!(held.axes(), (1.0, 1.0));
    }
}

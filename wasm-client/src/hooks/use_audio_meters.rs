//! The level meters of the robot's audio and of the microphone.

use crate::audio_meter::{Meter, Reading};
use crate::state::{Action, AppState};
use gloo::timers::callback::Interval;
use std::rc::Rc;
use web_sys::{AudioContext, MediaStream};
use yew::prelude::*;

/// How often the meters are read.
const READ_MS: u32 = 100;

/// Reads a [`Meter`] on each stream given (the robot's audio, the microphone) ten
/// times a second into [`Action::Levels`]. `context` is the page's one
/// `AudioContext`; a new stream gets a new meter.
#[hook]
pub fn use_audio_meters(
    context: Option<AudioContext>,
    robot: Option<MediaStream>,
    mic: Option<MediaStream>,
    dispatch: UseReducerDispatcher<AppState>,
) {
    use_effect_with((context, robot, mic), move |(context, robot, mic)| {
        let meter = |stream: &Option<MediaStream>| {
            let (context, stream) = (context.as_ref()?, stream.as_ref()?);
            Meter::new(context, stream)
                .map_err(|e| {
                    web_sys::console::error_1(&format!("rtcbot: no level meter: {e}").into())
                })
                .ok()
        };
        let (robot, mic) = (Rc::new(meter(robot)), Rc::new(meter(mic)));
        let timer = (robot.is_some() || mic.is_some()).then(|| {
            Interval::new(READ_MS, move || {
                let read =
                    |m: &Option<Meter>| m.as_ref().map(|m| rounded(m.read())).unwrap_or_default();
                dispatch.dispatch(Action::Levels(read(&robot), read(&mic)));
            })
        });
        move || drop(timer)
    });
}

/// A reading in the steps the page shows (1% of the bar, 1 Hz), so that a steady
/// sound does not re-render the page.
fn rounded(r: Reading) -> Reading {
    Reading {
        level: (r.level * 100.0).round() / 100.0,
        hz: r.hz.map(f64::round),
    }
}

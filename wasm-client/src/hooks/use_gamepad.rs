use crate::drive::{gamepad_drive, DriveMixer, Source};
use crate::state::{Action, AppState};
use gloo::timers::callback::Interval;
use std::cell::Cell;
use wasm_bindgen::{JsCast, JsValue};
use yew::prelude::*;

/// The default gamepad poll rate, Hz.
pub const DEFAULT_GAMEPAD_HZ: f64 = 10.0;

/// Polls `navigator.getGamepads()` `hz` times a second and drives with the first
/// connected pad: axis 1 (up = forward) and axis 0 (turn), 0.1 dead zone.
#[hook]
pub fn use_gamepad(mixer: DriveMixer, hz: f64, dispatch: UseReducerDispatcher<AppState>) {
    use_effect_with(hz.to_bits(), move |_| {
        let hz = if hz.is_finite() && hz > 0.0 {
            hz.min(250.0)
        } else {
            DEFAULT_GAMEPAD_HZ
        };
        let period = (1000.0 / hz).round().max(4.0) as u32;
        let connected = Cell::new(false);
        let interval = Interval::new(period, move || {
            let axes = first_pad_axes();
            if axes.is_some() != connected.get() {
                connected.set(axes.is_some());
                dispatch.dispatch(Action::Gamepad(axes.is_some()));
            }
            let (forward, turn) = axes.map_or((0.0, 0.0), |a| gamepad_drive(&a));
            mixer.set(Source::Gamepad, forward, turn);
        });
        move || drop(interval)
    });
}

/// Axes of the first connected gamepad. Reads everything through `Reflect`, so that a
/// page (or a test) replacing `navigator.getGamepads` with plain objects works.
fn first_pad_axes() -> Option<Vec<f64>> {
    let navigator = gloo::utils::window().navigator();
    let get = js_sys::Reflect::get(&navigator, &"getGamepads".into()).ok()?;
    let pads = get.dyn_ref::<js_sys::Function>()?.call0(&navigator).ok()?;
    let pads = js_sys::Array::from(&pads);
    pads.iter().find_map(|pad| {
        if pad.is_null() || pad.is_undefined() {
            return None;
        }
        let connected = js_sys::Reflect::get(&pad, &"connected".into()).ok();
        if connected == Some(JsValue::FALSE) {
            return None;
        }
        let axes = js_sys::Reflect::get(&pad, &"axes".into()).ok()?;
        Some(
            js_sys::Array::from(&axes)
                .iter()
                .map(|v| v.as_f64().unwrap_or(0.0))
                .collect(),
        )
    })
}

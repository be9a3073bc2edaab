//! `Keyboard`, `Gamepad` and `setGamepadRate`, emitting rtcbot.js's event shapes.

use super::{call, describe, err, function};
use gloo::events::{EventListener, EventListenerOptions};
use gloo::timers::callback::Interval;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::KeyboardEvent;

fn set(obj: &js_sys::Object, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

type Subscriber = Rc<RefCell<Option<js_sys::Function>>>;

thread_local! {
    /// The listeners of every open `Keyboard`, by id: like rtcbot.js's window
    /// listeners, they live until `close()` even if the page drops the object.
    static KEYBOARDS: RefCell<Vec<(u32, Vec<EventListener>)>> = const { RefCell::new(Vec::new()) };
    static NEXT_KEYBOARD: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// Key presses on the page, as rtcbot.js's `Keyboard` reports them:
/// `{type: "keydown"|"keyup", altKey, shiftKey, keyCode, key, timestamp}` (key repeats
/// are skipped, the browser's default action is prevented). Listens until `close()`.
#[wasm_bindgen]
pub struct Keyboard {
    id: u32,
    subscriber: Subscriber,
}

#[wasm_bindgen]
impl Keyboard {
    /// Starts listening to `keydown` / `keyup` on `window`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<Keyboard, JsValue> {
        let window = web_sys::window()
            .ok_or_else(|| err("Keyboard needs a browser window (none in this environment)"))?;
        let subscriber: Subscriber = Rc::new(RefCell::new(None));
        let listeners = ["keydown", "keyup"]
            .into_iter()
            .map(|kind| {
                let subscriber = Rc::clone(&subscriber);
                EventListener::new_with_options(
                    &window,
                    kind,
                    EventListenerOptions::enable_prevent_default(),
                    move |event| {
                        let Some(event) = event.dyn_ref::<KeyboardEvent>() else {
                            return;
                        };
                        if !(event.type_() == "keydown" && event.repeat()) {
                            let msg = js_sys::Object::new();
                            set(&msg, "type", &event.type_().into());
                            set(&msg, "altKey", &event.alt_key().into());
                            set(&msg, "shiftKey", &event.shift_key().into());
                            set(&msg, "keyCode", &event.key_code().into());
                            set(&msg, "key", &event.key().into());
                            // rtcbot.js reads `e.timestamp`, which browsers do not define.
                            set(&msg, "timestamp", &get(event, "timestamp"));
                            let callback = subscriber.borrow().clone();
                            call(callback.as_ref(), &msg.into());
                        }
                        event.prevent_default();
                    },
                )
            })
            .collect();
        let id = NEXT_KEYBOARD.with(|n| n.replace(n.get() + 1));
        KEYBOARDS.with(|k| k.borrow_mut().push((id, listeners)));
        Ok(Self { id, subscriber })
    }

    /// Sets the callback that receives each event (replacing the previous one; before
    /// any, events are logged to the console like rtcbot.js).
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: KeyboardMessage) => void")]
        callback: JsValue,
    ) -> Result<(), JsValue> {
        *self.subscriber.borrow_mut() = Some(function("Keyboard.subscribe", callback)?);
        Ok(())
    }

    /// Stops listening to key presses.
    pub fn close(&self) {
        let removed = KEYBOARDS.with(|k| {
            let mut k = k.borrow_mut();
            let (gone, kept) = std::mem::take(&mut *k)
                .into_iter()
                .partition(|(id, _)| *id == self.id);
            *k = kept;
            gone
        });
        // Listeners are removed here, after the registry is released.
        drop::<Vec<(u32, Vec<EventListener>)>>(removed);
    }
}

/// One `Gamepad` object: it reports the gamepad at its own index in
/// `navigator.getGamepads()`, as in rtcbot.js.
struct Pad {
    subscriber: RefCell<Option<js_sys::Function>>,
    state: RefCell<JsValue>,
}

/// A snapshot of one gamepad: buttons pressed, axes.
type Snapshot = Option<(Vec<bool>, Vec<f64>)>;

/// rtcbot.js's global gamepad loop: polls every gamepad at once while any `Gamepad`
/// object is open.
struct Handler {
    pads: Vec<Option<Rc<Pad>>>,
    prev: Vec<Snapshot>,
    interval: Option<Interval>,
    period_ms: u32,
}

thread_local! {
    static HANDLER: RefCell<Handler> = const { RefCell::new(Handler {
        pads: Vec::new(),
        prev: Vec::new(),
        interval: None,
        period_ms: 100,
    }) };
}

fn snapshot(pad: &JsValue) -> Snapshot {
    if pad.is_null() || pad.is_undefined() {
        return None;
    }
    let buttons = js_sys::Array::from(&get(pad, "buttons"))
        .iter()
        .map(|b| get(&b, "pressed").is_truthy())
        .collect();
    let axes = js_sys::Array::from(&get(pad, "axes"))
        .iter()
        .map(|a| a.as_f64().unwrap_or(0.0))
        .collect();
    Some((buttons, axes))
}

fn event(kind: String, value: JsValue) -> JsValue {
    let msg = js_sys::Object::new();
    set(&msg, "value", &value);
    set(&msg, "type", &kind.into());
    msg.into()
}

/// One poll: events for every change since the last poll, sent after the handler is
/// released so subscribers may open or close gamepads.
fn poll() {
    let Some(navigator) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    let Ok(current) = navigator.get_gamepads() else {
        return;
    };
    let current: Vec<JsValue> = current.iter().collect();
    let mut out: Vec<(Rc<Pad>, JsValue)> = Vec::new();
    HANDLER.with(|h| {
        let mut h = h.borrow_mut();
        let len = current.len().min(h.pads.len()).min(h.prev.len());
        let now: Vec<Snapshot> = current.iter().map(snapshot).collect();
        for i in 0..len {
            let (Some(pad), Some((prev_b, prev_a)), Some((cur_b, cur_a))) =
                (&h.pads[i], &h.prev[i], &now[i])
            else {
                continue;
            };
            *pad.state.borrow_mut() = current[i].clone();
            for (j, pressed) in cur_b.iter().enumerate() {
                if prev_b.get(j) != Some(pressed) {
                    out.push((Rc::clone(pad), event(format!("btn{j}"), (*pressed).into())));
                }
            }
            for (j, value) in cur_a.iter().enumerate() {
                if prev_a.get(j) != Some(value) {
                    out.push((Rc::clone(pad), event(format!("axis{j}"), (*value).into())));
                }
            }
        }
        h.prev = now;
    });
    for (pad, msg) in out {
        let callback = pad.subscriber.borrow().clone();
        call(callback.as_ref(), &msg);
    }
}

/// Starts the loop when a gamepad is open, stops it when none is.
fn init(h: &mut Handler) {
    let open = h.pads.iter().any(Option::is_some);
    if open && h.interval.is_none() {
        h.interval = Some(Interval::new(h.period_ms, poll));
    } else if !open {
        h.interval = None;
        h.prev.clear();
    }
}

/// A gamepad (Xbox controller...), polled through the browser Gamepad API at 10 Hz by
/// default (see `setGamepadRate`). Reports each change as rtcbot.js does:
/// `{type: "btn<N>", value: boolean}` and `{type: "axis<N>", value: number}`. The
/// first `Gamepad` reports the first gamepad, the second the second, and so on; press
/// a button on the gamepad for the browser to show it to the page.
#[wasm_bindgen]
pub struct Gamepad {
    pad: Rc<Pad>,
}

#[wasm_bindgen]
impl Gamepad {
    /// Starts polling (shared with every other open `Gamepad`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<Gamepad, JsValue> {
        if web_sys::window().is_none() {
            return Err(err(
                "Gamepad needs a browser window (none in this environment)",
            ));
        }
        let pad = Rc::new(Pad {
            subscriber: RefCell::new(None),
            state: RefCell::new(JsValue::NULL),
        });
        HANDLER.with(|h| {
            let mut h = h.borrow_mut();
            match h.pads.iter().position(Option::is_none) {
                Some(i) => h.pads[i] = Some(Rc::clone(&pad)),
                None => h.pads.push(Some(Rc::clone(&pad))),
            }
            init(&mut h);
        });
        Ok(Self { pad })
    }

    /// Sets the callback that receives each change (replacing the previous one; before
    /// any, events are logged to the console like rtcbot.js).
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: GamepadMessage) => void")] callback: JsValue,
    ) -> Result<(), JsValue> {
        *self.pad.subscriber.borrow_mut() = Some(function("Gamepad.subscribe", callback)?);
        Ok(())
    }

    /// The browser's last `Gamepad` snapshot for this pad, or `null` before one.
    #[wasm_bindgen(getter, unchecked_return_type = "globalThis.Gamepad | null")]
    pub fn state(&self) -> JsValue {
        self.pad.state.borrow().clone()
    }

    /// Stops reporting this gamepad (the loop stops when no `Gamepad` is open).
    pub fn close(&self) {
        HANDLER.with(|h| {
            let mut h = h.borrow_mut();
            for slot in h.pads.iter_mut() {
                if slot.as_ref().is_some_and(|p| Rc::ptr_eq(p, &self.pad)) {
                    *slot = None;
                }
            }
            init(&mut h);
        });
    }
}

/// Sets how often gamepads are polled, in Hz (default 10): the period becomes
/// `round(1000 / rate)` ms, as in rtcbot.js.
#[wasm_bindgen(js_name = setGamepadRate)]
pub fn set_gamepad_rate(
    #[wasm_bindgen(unchecked_param_type = "number")] rate: JsValue,
) -> Result<(), JsValue> {
    let hz = rate
        .as_f64()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| {
            err(format!(
                "setGamepadRate expects a positive number of Hz, got {}",
                describe(&rate)
            ))
        })?;
    let period_ms = (1000.0 / hz).round().max(1.0).min(f64::from(u32::MAX)) as u32;
    HANDLER.with(|h| {
        let mut h = h.borrow_mut();
        h.period_ms = period_ms;
        h.interval = None;
        init(&mut h);
    });
    Ok(())
}

use crate::drive::{fold_keys, Dir, DriveMixer, Source};
use gloo::events::{EventListener, EventListenerOptions};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{KeyboardEvent, VisibilityState};
use yew::prelude::*;

/// Drives with W/A/S/D and the arrow keys (Shift: half speed). Every change sends at
/// once; releasing all keys, the window losing focus or the tab being hidden sends a
/// zero state. `?` or `h` calls `on_help`, Escape calls `on_escape`.
#[hook]
pub fn use_keyboard_drive(mixer: DriveMixer, on_help: Callback<()>, on_escape: Callback<()>) {
    use_effect_with((), move |_| {
        let window = gloo::utils::window();
        let document = gloo::utils::document();
        // Held keys by `code` (or `key` when the code is empty).
        let held: Rc<RefCell<HashMap<String, Dir>>> = Rc::default();
        let update = {
            let (held, mixer) = (Rc::clone(&held), mixer.clone());
            move |shift: bool| {
                let (forward, turn) = fold_keys(held.borrow().values().copied(), shift);
                mixer.set(Source::Keys, forward, turn);
            }
        };
        let release_all = {
            let (held, mixer) = (Rc::clone(&held), mixer.clone());
            move || {
                held.borrow_mut().clear();
                mixer.stop_all();
            }
        };
        let options = EventListenerOptions::enable_prevent_default();
        let keydown = EventListener::new_with_options(&window, "keydown", options, {
            let (held, update) = (Rc::clone(&held), update.clone());
            move |event| {
                let Some(event) = event.dyn_ref::<KeyboardEvent>() else {
                    return;
                };
                if event.ctrl_key() || event.meta_key() || event.alt_key() {
                    return;
                }
                let key = event.key();
                match key.as_str() {
                    "?" | "h" | "H" if !event.repeat() => {
                        on_help.emit(());
                        return;
                    }
                    "Escape" => {
                        on_escape.emit(());
                        return;
                    }
                    _ => {}
                }
                let code = event.code();
                if let Some(dir) = Dir::of_key(&key, &code) {
                    event.prevent_default();
                    held.borrow_mut().insert(key_id(&key, code), dir);
                }
                update(event.shift_key());
            }
        });
        let keyup = EventListener::new(&window, "keyup", {
            let (held, update) = (Rc::clone(&held), update.clone());
            move |event| {
                let Some(event) = event.dyn_ref::<KeyboardEvent>() else {
                    return;
                };
                let key = event.key();
                let removed = held
                    .borrow_mut()
                    .remove(&key_id(&key, event.code()))
                    .is_some();
                if !removed {
                    // A key that went down under another name (layout switch, Shift
                    // changing `key`): drop whatever stands for the same direction.
                    if let Some(dir) = Dir::of_key(&key, &event.code()) {
                        held.borrow_mut().retain(|_, d| *d != dir);
                    }
                }
                update(event.shift_key());
            }
        });
        let blur = EventListener::new(&window, "blur", {
            let release_all = release_all.clone();
            move |_| release_all()
        });
        let visibility = EventListener::new(&document, "visibilitychange", {
            let document = document.clone();
            move |_| {
                if document.visibility_state() == VisibilityState::Hidden {
                    release_all();
                }
            }
        });
        move || drop((keydown, keyup, blur, visibility))
    });
}

/// What a held key is known by: its `code`, or its `key` in lower case when the
/// browser gives no code (drive keys are ASCII, so ASCII lower case is enough).
fn key_id(key: &str, code: String) -> String {
    if code.is_empty() {
        key.to_ascii_lowercase()
    } else {
        code
    }
}

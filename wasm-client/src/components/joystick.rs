use crate::drive::joystick_drive;
use crate::util::fixed;
use web_sys::{Element, PointerEvent};
use yew::prelude::*;

/// Full deflection is reached this far from the centre, as a fraction of the pad radius.
const REACH: f64 = 0.7;

/// Props of [`Joystick`].
#[derive(Properties, PartialEq)]
pub struct JoystickProps {
    /// Receives `(forward, turn)` on every move, and `(0, 0)` on release.
    pub on_change: Callback<(f64, f64)>,
}

/// An on-screen joystick for touch screens (works with a mouse or pen too): the knob
/// follows the pointer from the pad's centre; releasing it stops.
#[component]
pub fn Joystick(props: &JoystickProps) -> Html {
    let knob = use_state(|| (0.0f64, 0.0f64));
    let active = use_mut_ref(|| None::<i32>);
    let pad = use_node_ref();

    let update = {
        let (knob, pad, on_change) = (knob.clone(), pad.clone(), props.on_change.clone());
        move |e: &PointerEvent| {
            let Some(pad) = pad.cast::<Element>() else {
                return;
            };
            let rect = pad.get_bounding_client_rect();
            let radius = rect.width().min(rect.height()) / 2.0 * REACH;
            let dx = f64::from(e.client_x()) - (rect.left() + rect.width() / 2.0);
            let dy = f64::from(e.client_y()) - (rect.top() + rect.height() / 2.0);
            let (forward, turn) = joystick_drive(dx, dy, radius);
            knob.set((turn * radius, -forward * radius));
            on_change.emit((forward, turn));
        }
    };
    let release = {
        let (knob, active, on_change) = (knob.clone(), active.clone(), props.on_change.clone());
        Callback::from(move |e: PointerEvent| {
            if *active.borrow() == Some(e.pointer_id()) {
                *active.borrow_mut() = None;
                knob.set((0.0, 0.0));
                on_change.emit((0.0, 0.0));
            }
        })
    };
    let onpointerdown = {
        let (active, update, pad) = (active.clone(), update.clone(), pad.clone());
        Callback::from(move |e: PointerEvent| {
            e.prevent_default();
            e.stop_propagation();
            // Capture on the pad itself (Yew delegates events, so `current_target` is
            // the app root): moves outside the pad keep steering until release.
            if let Some(pad) = pad.cast::<Element>() {
                let _ = pad.set_pointer_capture(e.pointer_id());
            }
            *active.borrow_mut() = Some(e.pointer_id());
            update(&e);
        })
    };
    let onpointermove = {
        let active = active.clone();
        Callback::from(move |e: PointerEvent| {
            if *active.borrow() == Some(e.pointer_id()) {
                e.prevent_default();
                update(&e);
            }
        })
    };
    let (x, y) = *knob;
    let engaged = x != 0.0 || y != 0.0;
    html! {
        <div id="joystick" ref={pad} class={classes!("joystick", engaged.then_some("engaged"))}
            role="slider" aria-label="Drive joystick: drag to drive"
            {onpointerdown} {onpointermove}
            onpointerup={release.clone()} onpointercancel={release.clone()}
            onlostpointercapture={release}
            onclick={|e: MouseEvent| e.stop_propagation()}
            oncontextmenu={|e: MouseEvent| e.prevent_default()}>
            <div class="ring" />
            <div class="knob" style={format!("transform: translate({}px, {}px)", fixed(x, 1), fixed(y, 1))} />
        </div>
    }
}

use yew::prelude::*;

/// Props of [`Help`].
#[derive(Properties, PartialEq)]
pub struct HelpProps {
    /// Whether the panel shows.
    pub open: bool,
    /// Toggle the panel.
    pub on_toggle: Callback<()>,
}

/// The `?` button that opens [`Help`].
#[component]
pub fn HelpButton(props: &HelpProps) -> Html {
    let onclick = {
        let on_toggle = props.on_toggle.clone();
        Callback::from(move |e: MouseEvent| {
            e.stop_propagation();
            on_toggle.emit(());
        })
    };
    html! {
        <button id="help-button" class="icon-button" aria-label="Help" aria-controls="help"
            aria-expanded={props.open.to_string()} {onclick}>{ "?" }</button>
    }
}

/// The panel explaining the controls.
#[component]
pub fn Help(props: &HelpProps) -> Html {
    let toggle = {
        let on_toggle = props.on_toggle.clone();
        Callback::from(move |e: MouseEvent| {
            e.stop_propagation();
            on_toggle.emit(());
        })
    };
    html! {
        <>
            if props.open {
                <section id="help" class="panel help" onclick={|e: MouseEvent| e.stop_propagation()}>
                    <h2>{ "Driving" }</h2>
                    <dl>
                        <dt><kbd>{"W"}</kbd><kbd>{"A"}</kbd><kbd>{"S"}</kbd><kbd>{"D"}</kbd>{" / arrows"}</dt>
                        <dd>{ "Forward, left, back, right. Hold Shift for half speed." }</dd>
                        <dt>{ "Joystick" }</dt>
                        <dd>{ "Drag the pad with a finger or the mouse; let go to stop." }</dd>
                        <dt>{ "Gamepad" }</dt>
                        <dd>{ "Left stick: up/down drives, left/right turns." }</dd>
                        <dt>{ "Video" }</dt>
                        <dd>{ "Tap or click the picture for fullscreen." }</dd>
                    </dl>
                    <p class="muted">{ "The robot stops when you let go, switch tabs or lose the connection. \
                        The page reconnects by itself when the robot or network comes back." }</p>
                    <p class="muted">{ "Latency is measured from the frame's capture time painted into the picture \
                        and assumes the robot's clock agrees with this device's." }</p>
                    <button class="chip" onclick={toggle}>{ "Close" }</button>
                </section>
            }
        </>
    }
}

//! The robot's own readings (an Arduino's struct, a program's JSON) as named values.

use yew::prelude::*;

/// Props of [`RobotValues`].
#[derive(Properties, PartialEq)]
pub struct RobotValuesProps {
    /// Name and value, in the order they first came.
    pub values: Vec<(String, String)>,
}

/// A small table of the latest value of each field the robot sent.
#[component]
pub fn RobotValues(props: &RobotValuesProps) -> Html {
    if props.values.is_empty() {
        return html! {};
    }
    html! {
        <section id="robot-values" class="panel values" aria-label="Robot readings">
            <dl>
                { for props.values.iter().map(|(name, value)| html! {
                    <><dt>{ name.clone() }</dt><dd data-name={name.clone()}>{ value.clone() }</dd></>
                }) }
            </dl>
        </section>
    }
}

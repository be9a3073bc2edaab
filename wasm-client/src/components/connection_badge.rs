use crate::connection::ConnState;
use crate::session::RoomPresence;
use yew::prelude::*;

/// Props of [`ConnectionBadge`].
#[derive(Properties, PartialEq)]
pub struct ConnectionBadgeProps {
    /// The connection state.
    pub conn: ConnState,
    /// Through a relay room: whether its robot is there.
    #[prop_or_default]
    pub room: Option<RoomPresence>,
    /// Reconnect at once.
    pub on_retry: Callback<()>,
}

/// The always-visible connection state, with the reason when not live.
#[component]
pub fn ConnectionBadge(props: &ConnectionBadgeProps) -> Html {
    let (label, detail) = match &props.conn {
        ConnState::Connecting { attempt } if *attempt <= 1 => ("Connecting…".to_owned(), None),
        ConnState::Connecting { attempt } => (format!("Connecting… (try {attempt})"), None),
        ConnState::Live => ("Live".to_owned(), None),
        ConnState::Reconnecting { attempt, reason } => (
            format!("Reconnecting… (try {attempt})"),
            Some(reason.clone()),
        ),
        ConnState::Failed { reason } => ("Failed".to_owned(), Some(reason.clone())),
        ConnState::Closed => ("Closed".to_owned(), None),
    };
    let live = props.conn == ConnState::Live;
    let onclick = {
        let on_retry = props.on_retry.clone();
        Callback::from(move |e: MouseEvent| {
            e.stop_propagation();
            on_retry.emit(());
        })
    };
    html! {
        <div id="conn-badge" class={classes!("badge", props.conn.name())} role="status" aria-live="polite">
            <span class="dot" />
            <span class="label">{ label }</span>
            if let Some(detail) = detail.filter(|d| !d.is_empty()) {
                <span class="reason" title={detail.clone()}>{ detail }</span>
            }
            if let Some(room) = &props.room {
                <span id="room-presence" class={classes!("room", room.robot.then_some("present"))}
                    data-room={room.room.clone()} data-robot={if room.robot { "present" } else { "absent" }}>
                    { presence_text(room, live) }
                </span>
            }
            if !live {
                <button id="retry" class="chip" {onclick}>{ "Retry now" }</button>
            }
        </div>
    }
}

/// What the badge says of the room.
fn presence_text(room: &RoomPresence, live: bool) -> String {
    match (room.robot, live) {
        (true, _) => format!("room {}: robot connected", room.room),
        (false, false) => format!("room {}: waiting for its robot to join", room.room),
        // Media flows directly: a robot that lost the relay still streams.
        (false, true) => format!("room {}: robot away from the relay", room.room),
    }
}

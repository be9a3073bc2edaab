//! The root component: wires the hooks together and exposes state for tests.

use crate::components::{
    ConnectionBadge, Help, HelpButton, Joystick, MediaControls, Plots, RobotValues, SettingsPanel,
    TelemetryOverlay, Tools, VideoView,
};
use crate::connection::ConnState;
use crate::drive::Source;
use crate::hooks::{
    use_audio_meters, use_connection, use_drive, use_frame_stamps, use_gamepad, use_keyboard_drive,
    use_local_media, use_room_presence, use_sfu,
};
use crate::state::{Action, AppState};
use crate::util::{fixed, number, object, parse_number, query_param};
use crate::wire::{stats_object, status_object};
use gloo::timers::callback::Timeout;
use js_sys::Reflect;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use yew::prelude::*;

/// How long a robot message stays on screen.
const NOTICE_MS: u32 = 6000;

/// Renders the app into `<body>`.
pub fn mount() {
    yew::Renderer::<App>::new().render();
}

#[component]
fn App() -> Html {
    let state = use_reducer(AppState::default);
    let video_ref = use_node_ref();
    let connection = use_connection(state.dispatcher());
    let mixer = use_drive(Rc::clone(&connection), state.dispatcher());
    use_room_presence(Rc::clone(&connection), state.dispatcher());
    use_sfu(
        Rc::clone(&connection),
        state.conn == ConnState::Live,
        state.robot_stats.clone(),
        state.prefer_sfu,
        state.dispatcher(),
    );

    let toggle_help = {
        let dispatch = state.dispatcher();
        Callback::from(move |()| dispatch.dispatch(Action::ToggleHelp))
    };
    let close_help = {
        let dispatch = state.dispatcher();
        Callback::from(move |()| dispatch.dispatch(Action::CloseHelp))
    };
    use_keyboard_drive(mixer.clone(), toggle_help.clone(), close_help);
    let gamepad_hz = use_memo((), |_| {
        query_param("gamepad_hz")
            .map(|v| parse_number(&v))
            .unwrap_or(crate::hooks::DEFAULT_GAMEPAD_HZ)
    });
    use_gamepad(mixer.clone(), *gamepad_hz, state.dispatcher());
    use_frame_stamps(video_ref.clone(), state.dispatcher());
    // One audio context for the page's meters; it may start suspended (autoplay
    // rules) until a tap on the media controls resumes it.
    let audio_context = use_memo((), |_| web_sys::AudioContext::new().ok());
    use_audio_meters(
        (*audio_context).clone(),
        state.shown_audio(),
        state.mic_stream.clone(),
        state.dispatcher(),
    );
    let media = use_local_media(Rc::clone(&connection), state.dispatcher());
    let on_listen = {
        let dispatch = state.dispatcher();
        Callback::from(move |()| dispatch.dispatch(Action::ToggleListen))
    };

    // Robot messages fade after a while.
    {
        let dispatch = state.dispatcher();
        use_effect_with(state.notice.clone(), move |notice| {
            let timer = notice
                .is_some()
                .then(|| Timeout::new(NOTICE_MS, move || dispatch.dispatch(Action::ClearNotice)));
            move || drop(timer)
        });
    }
    // `window.__rtcbot` mirrors the data attributes.
    {
        use_effect_with(state.clone(), |s| publish(s));
    }

    let on_joystick = {
        let mixer = mixer.clone();
        Callback::from(move |(forward, turn): (f64, f64)| {
            mixer.set(Source::Joystick, forward, turn)
        })
    };
    let toggle_settings = {
        let dispatch = state.dispatcher();
        Callback::from(move |()| dispatch.dispatch(Action::ToggleSettings))
    };
    let on_notice = {
        let dispatch = state.dispatcher();
        Callback::from(move |text: String| dispatch.dispatch(Action::Notice(text)))
    };
    let on_apply = {
        let connection = Rc::clone(&connection);
        let dispatch = state.dispatcher();
        Callback::from(move |settings: shared_protocol::VideoSettings| {
            if !connection.send(&crate::wire::settings(&settings)) {
                dispatch.dispatch(Action::Notice("not connected: settings not sent".into()));
            }
        })
    };
    let on_prefer_sfu = {
        let dispatch = state.dispatcher();
        Callback::from(move |prefer: bool| {
            if let Some(storage) = gloo::utils::window().local_storage().ok().flatten() {
                let via = if prefer { "sfu" } else { "robot" };
                let _ = storage.set_item(crate::state::VIDEO_VIA_KEY, via);
            }
            dispatch.dispatch(Action::PreferSfu(prefer))
        })
    };
    let on_retry = {
        let connection = Rc::clone(&connection);
        Callback::from(move |()| connection.reconnect_now())
    };

    let s = &*state;
    let waiting = match &s.conn {
        ConnState::Live if s.stream.is_some() => "Waiting for video…",
        ConnState::Live => "Connected, no video track",
        ConnState::Connecting { .. } => "Connecting to the robot…",
        ConnState::Reconnecting { .. } => "Reconnecting to the robot…",
        ConnState::Failed { .. } => "Cannot reach the robot. Retrying…",
        ConnState::Closed => "Disconnected",
    };
    let waiting = match (&s.room, s.conn.reason().filter(|r| !r.is_empty())) {
        // A relay room without its robot: nothing is wrong, it has not come yet.
        (Some(room), _) if !room.robot && s.conn != ConnState::Live => format!(
            "Waiting for the robot to join room {}…\nThe page connects as soon as it does.",
            room.room
        ),
        (_, Some(reason)) => format!("{waiting}\n{reason}"),
        (_, None) => waiting.to_owned(),
    };
    let d = s.drive;
    let opt = |v: Option<f64>| v.map(|v| fixed(v, 1)).unwrap_or_default();
    html! {
        <main id="app" class={classes!("app", s.conn.name())}
            data-conn={s.conn.name()}
            data-conn-reason={s.conn.reason().unwrap_or_default().to_owned()}
            data-room-robot={s.room.as_ref().map(|r| if r.robot { "present" } else { "absent" }).unwrap_or_default()}
            data-attempt={attempt(&s.conn).to_string()}
            data-sessions={s.sessions.to_string()}
            data-frames={s.frames.to_string()}
            data-stamp-frame={s.stamp_frame.map(|f| f.to_string()).unwrap_or_default()}
            data-latency-ms={opt(s.latency_ms)}
            data-rtt-ms={opt(s.rtt_ms)}
            data-fps={fixed(s.video.fps, 1)}
            data-kbps={fixed(s.video.kbps, 0)}
            data-resolution={format!("{}x{}", s.video.width, s.video.height)}
            data-drive={format!("{},{},{}", number(d.forward), number(d.turn), d.seq)}
            data-gamepad={if s.gamepad { "1" } else { "0" }}
            data-listening={if s.listening { "1" } else { "0" }}
            data-mic={s.mic.name()}
            data-camera={s.camera.name()}
            data-renegotiations={s.renegotiations.to_string()}
            data-robot-audio-level={fixed(s.robot_level.level, 2)}
            data-robot-audio-hz={s.robot_hz.map(|hz| fixed(hz, 0)).unwrap_or_default()}
            data-mic-level={fixed(s.mic_level.level, 2)}
            data-video-source={s.sfu.source.name()}
            data-sfu={s.sfu.state}
            data-sfu-reason={s.sfu.reason.clone().unwrap_or_default()}
            data-robot-media={if s.sfu.robot_media { "on" } else { "off" }}
            data-sfu-publisher={s.robot_stats.as_ref().and_then(|r| r.sfu.as_ref()).map(|f| f.state.clone()).unwrap_or_default()}>
            <VideoView stream={s.shown_video()} source={s.sfu.source} video_ref={video_ref.clone()}
                has_frames={s.frames > 0 && s.conn == ConnState::Live} waiting={waiting} />
            <header class="hud-top">
                <div class="brand">{ "rtcbot" }</div>
                <ConnectionBadge conn={s.conn.clone()} room={s.room.clone()} {on_retry} />
                <Tools video_ref={video_ref.clone()} stream={s.shown_video()}
                    settings_open={s.settings_open} on_settings={toggle_settings.clone()}
                    on_error={on_notice} />
                <HelpButton open={s.help} on_toggle={toggle_help.clone()} />
            </header>
            <Help open={s.help} on_toggle={toggle_help} />
            if s.settings_open {
                <SettingsPanel current={s.current_settings()} {on_apply}
                    on_close={toggle_settings} prefer_sfu={s.prefer_sfu} {on_prefer_sfu} />
            }
            <aside class="side">
                <TelemetryOverlay state={state.clone()} />
                <Plots history={s.history.clone()} />
                <RobotValues values={s.values.clone()} />
            </aside>
            if let Some(notice) = &s.notice {
                <div class={classes!("toast", notice.error.then_some("error"))} role="alert">
                    { notice.text.clone() }
                </div>
            }
            <MediaControls robot_audio={s.shown_audio()} listening={s.listening}
                mic={s.mic} camera={s.camera} robot_level={s.robot_level} mic_level={s.mic_level}
                context={(*audio_context).clone()} {on_listen} on_mic={media.toggle_mic.clone()}
                on_camera={media.toggle_camera.clone()} />
            <footer class="hud-bottom">
                <Joystick on_change={on_joystick} />
            </footer>
        </main>
    }
}

fn attempt(conn: &ConnState) -> u32 {
    match conn {
        ConnState::Connecting { attempt } | ConnState::Reconnecting { attempt, .. } => *attempt,
        _ => 0,
    }
}

/// Sets `window.__rtcbot` to a plain object with the current figures.
fn publish(s: &AppState) {
    let opt = |v: Option<f64>| v.map_or(JsValue::NULL, JsValue::from);
    let drive = object(&[
        ("forward", s.drive.forward.into()),
        ("turn", s.drive.turn.into()),
        ("seq", (s.drive.seq as f64).into()),
    ]);
    let figures = object(&[
        ("conn", s.conn.name().into()),
        (
            "reason",
            s.conn.reason().map_or(JsValue::NULL, JsValue::from),
        ),
        ("attempt", attempt(&s.conn).into()),
        (
            "room",
            s.room.as_ref().map_or(JsValue::NULL, |r| {
                object(&[("name", r.room.as_str().into()), ("robot", r.robot.into())]).into()
            }),
        ),
        ("sessions", s.sessions.into()),
        ("frames", (s.frames as f64).into()),
        ("stampFrame", opt(s.stamp_frame.map(f64::from))),
        ("latencyMs", opt(s.latency_ms)),
        ("rttMs", opt(s.rtt_ms)),
        ("clockOffsetMs", opt(s.clock_offset_ms)),
        ("fps", s.video.fps.into()),
        ("kbps", s.video.kbps.into()),
        ("width", s.video.width.into()),
        ("height", s.video.height.into()),
        ("framesDecoded", (s.video.frames_decoded as f64).into()),
        ("gamepad", s.gamepad.into()),
        ("drive", drive.into()),
        ("listening", s.listening.into()),
        ("mic", s.mic.name().into()),
        ("camera", s.camera.name().into()),
        ("renegotiations", s.renegotiations.into()),
        ("robotAudio", s.robot_audio.is_some().into()),
        ("robotAudioLevel", s.robot_level.level.into()),
        ("robotAudioHz", opt(s.robot_hz)),
        ("micLevel", s.mic_level.level.into()),
        ("videoSource", s.sfu.source.name().into()),
        ("sfu", s.sfu.state.into()),
        (
            "sfuReason",
            s.sfu.reason.as_deref().map_or(JsValue::NULL, JsValue::from),
        ),
        ("robotMedia", s.sfu.robot_media.into()),
        (
            "status",
            s.status
                .as_ref()
                .map_or(JsValue::NULL, |st| status_object(st).into()),
        ),
        (
            "stats",
            s.robot_stats
                .as_ref()
                .map_or(JsValue::NULL, |st| stats_object(st).into()),
        ),
    ]);
    let _ = Reflect::set(&gloo::utils::window(), &"__rtcbot".into(), &figures);
}

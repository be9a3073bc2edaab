//! The page's microphone and camera, sent to the robot while switched on.

use crate::connection::{Connection, LocalKind};
use crate::state::{Action, AppState, Switch};
use crate::util::js_error;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{MediaStream, MediaStreamConstraints, MediaStreamTrack};
use yew::prelude::*;

/// The two toggles [`use_local_media`] returns.
pub struct LocalMedia {
    /// Switches the microphone on (asking the browser) or off.
    pub toggle_mic: Callback<()>,
    /// Switches the camera on or off.
    pub toggle_camera: Callback<()>,
}

/// One local device's track while on (or being switched on).
#[derive(Default)]
struct Device {
    track: Option<MediaStreamTrack>,
    /// A request to the browser is in flight.
    starting: bool,
}

/// Toggles that get the microphone or camera from `getUserMedia`, hand its track to
/// `connection` (which renegotiates) and stop it again; the state follows in
/// [`Action::Mic`] / [`Action::Camera`]. Tracks stop when the component goes.
#[hook]
pub fn use_local_media(
    connection: Rc<Connection>,
    dispatch: UseReducerDispatcher<AppState>,
) -> LocalMedia {
    let mic = use_mut_ref(Device::default);
    let camera = use_mut_ref(Device::default);
    {
        let (mic, camera) = (mic.clone(), camera.clone());
        use_effect_with((), move |_| {
            move || {
                for device in [mic, camera] {
                    if let Some(track) = device.borrow_mut().track.take() {
                        track.stop();
                    }
                }
            }
        });
    }
    let toggle = |kind: LocalKind, device: Rc<RefCell<Device>>| {
        let connection = Rc::clone(&connection);
        let dispatch = dispatch.clone();
        Callback::from(move |()| {
            let report = {
                let dispatch = dispatch.clone();
                move |switch: Switch, stream: Option<MediaStream>| match kind {
                    LocalKind::Audio => dispatch.dispatch(Action::Mic(switch, stream)),
                    LocalKind::Video => dispatch.dispatch(Action::Camera(switch)),
                }
            };
            let mut d = device.borrow_mut();
            if d.starting {
                return;
            }
            if let Some(track) = d.track.take() {
                track.stop();
                connection.set_local_track(kind, None);
                report(Switch::Off, None);
                return;
            }
            d.starting = true;
            drop(d);
            report(Switch::Starting, None);
            let (device, connection, dispatch) =
                (Rc::clone(&device), Rc::clone(&connection), dispatch.clone());
            spawn_local(async move {
                let got = user_media(kind).await;
                device.borrow_mut().starting = false;
                match got {
                    Ok((stream, track)) => {
                        device.borrow_mut().track = Some(track.clone());
                        connection.set_local_track(kind, Some(track));
                        report(Switch::On, Some(stream));
                    }
                    Err(why) => {
                        report(Switch::Off, None);
                        let what = match kind {
                            LocalKind::Audio => "microphone",
                            LocalKind::Video => "camera",
                        };
                        dispatch.dispatch(Action::Notice(format!("no {what}: {why}")));
                    }
                }
            });
        })
    };
    LocalMedia {
        toggle_mic: toggle(LocalKind::Audio, mic),
        toggle_camera: toggle(LocalKind::Video, camera),
    }
}

/// Asks the browser for one microphone or camera: its stream and track.
async fn user_media(kind: LocalKind) -> Result<(MediaStream, MediaStreamTrack), String> {
    let devices = gloo::utils::window()
        .navigator()
        .media_devices()
        .map_err(|_| "this page cannot use media devices (it needs HTTPS)".to_owned())?;
    let constraints = MediaStreamConstraints::new();
    match kind {
        LocalKind::Audio => constraints.set_audio_bool(true),
        LocalKind::Video => constraints.set_video_bool(true),
    }
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| js_error(&e))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map_err(|e| js_error(&e))?
        .dyn_into()
        .map_err(|_| "the browser gave no stream".to_owned())?;
    let tracks = match kind {
        LocalKind::Audio => stream.get_audio_tracks(),
        LocalKind::Video => stream.get_video_tracks(),
    };
    let track: MediaStreamTrack = tracks
        .get(0)
        .dyn_into()
        .map_err(|_| "the browser gave no track".to_owned())?;
    Ok((stream, track))
}

//! The settings panel: the video's size, frame rate and bitrate, sent to the robot as
//! `{"type":"settings",...}`. Only an admin's token may change them; anyone else is
//! told so by the robot (the page's notice shows it).

use shared_protocol::VideoSettings;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// The sizes offered.
pub const SIZES: [(u32, u32); 4] = [(320, 240), (640, 480), (1280, 720), (1920, 1080)];
/// The frame rates offered.
pub const RATES: [u32; 4] = [10, 15, 25, 30];

/// Props of [`SettingsPanel`].
#[derive(Properties, PartialEq)]
pub struct SettingsPanelProps {
    /// What is in force now, as far as the page knows.
    pub current: VideoSettings,
    /// Sends a request.
    pub on_apply: Callback<VideoSettings>,
    /// Closes the panel.
    pub on_close: Callback<()>,
    /// The page's "Video" setting: through the SFU when the robot offers one.
    pub prefer_sfu: bool,
    /// The page's setting changed (applied at once, kept by the page).
    pub on_prefer_sfu: Callback<bool>,
}

/// Size, rate and bitrate, applied together.
#[component]
pub fn SettingsPanel(props: &SettingsPanelProps) -> Html {
    let size_ref = use_node_ref();
    let fps_ref = use_node_ref();
    let kbps_ref = use_node_ref();
    let camera_ref = use_node_ref();
    let current = &props.current;
    let size_now = (current.width.unwrap_or(0), current.height.unwrap_or(0));
    let onsubmit = {
        let (size_ref, fps_ref, kbps_ref) = (size_ref.clone(), fps_ref.clone(), kbps_ref.clone());
        let camera_ref = camera_ref.clone();
        let camera_now = props.current.camera.clone();
        let on_apply = props.on_apply.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let size = size_ref.cast::<HtmlSelectElement>().and_then(|s| {
                let value = s.value();
                let (w, h) = value.split_once('x')?;
                Some((w.parse().ok()?, h.parse().ok()?))
            });
            let fps = fps_ref
                .cast::<HtmlSelectElement>()
                .and_then(|s| s.value().parse().ok());
            let kbps = kbps_ref
                .cast::<HtmlInputElement>()
                .and_then(|i| i.value().parse().ok());
            // The camera only when it changed: the same one need not reopen.
            let camera = camera_ref
                .cast::<HtmlSelectElement>()
                .map(|s| s.value())
                .filter(|c| !c.is_empty() && Some(c) != camera_now.as_ref());
            on_apply.emit(VideoSettings {
                width: size.map(|(w, _)| w),
                height: size.map(|(_, h)| h),
                fps,
                bitrate_kbps: kbps,
                camera,
                cameras: None,
            });
        })
    };
    let close = {
        let on_close = props.on_close.clone();
        Callback::from(move |_: MouseEvent| on_close.emit(()))
    };
    let on_via = {
        let on_prefer_sfu = props.on_prefer_sfu.clone();
        Callback::from(move |e: Event| {
            if let Some(select) = e.target_dyn_into::<HtmlSelectElement>() {
                on_prefer_sfu.emit(select.value() != "robot");
            }
        })
    };
    html! {
        <form id="settings" class="panel settings" {onsubmit}
            onclick={|e: MouseEvent| e.stop_propagation()}>
            <h2>{ "This page" }</h2>
            <label>{ "Video" }
                <select id="settings-video-via" onchange={on_via}>
                    <option value="sfu" selected={props.prefer_sfu}>
                        { "Through the SFU when the robot offers one" }
                    </option>
                    <option value="robot" selected={!props.prefer_sfu}>
                        { "Always from the robot" }
                    </option>
                </select>
            </label>
            <h2>{ "Video" }</h2>
            <label>{ "Size" }
                <select id="settings-size" ref={size_ref}>
                    { for SIZES.iter().map(|(w, h)| html! {
                        <option value={format!("{w}x{h}")} selected={(*w, *h) == size_now}>
                            { format!("{w} × {h}") }
                        </option>
                    }) }
                </select>
            </label>
            <label>{ "Frame rate" }
                <select id="settings-fps" ref={fps_ref}>
                    { for RATES.iter().map(|r| html! {
                        <option value={r.to_string()} selected={Some(*r) == current.fps}>
                            { format!("{r} fps") }
                        </option>
                    }) }
                </select>
            </label>
            if let Some(cameras) = current.cameras.as_ref().filter(|c| !c.is_empty()) {
                <label>{ "Camera" }
                    <select id="settings-camera" ref={camera_ref}>
                        { for cameras.iter().map(|c| html! {
                            <option value={c.clone()} selected={Some(c) == current.camera.as_ref()}>
                                { c.clone() }
                            </option>
                        }) }
                    </select>
                </label>
            }
            <label>{ "Bitrate, kbit/s" }
                <input id="settings-kbps" ref={kbps_ref} type="number" min="100" max="20000" step="50"
                    value={current.bitrate_kbps.map(|b| b.to_string()).unwrap_or_default()} />
            </label>
            <p class="muted">{ "Needs an admin's token. Viewers stay connected; the picture restarts from a keyframe." }</p>
            <div class="row">
                <button id="settings-apply" class="chip primary" type="submit">{ "Apply" }</button>
                <button class="chip" type="button" onclick={close}>{ "Close" }</button>
            </div>
        </form>
    }
}

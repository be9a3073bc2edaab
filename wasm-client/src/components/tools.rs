//! The tool buttons over the video: settings, snapshot (the current frame as PNG) and
//! record (a clip of the stream with the browser's `MediaRecorder`), each saved as a
//! download named for when it was taken.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{HtmlAnchorElement, HtmlCanvasElement, HtmlVideoElement, MediaStream};
use yew::prelude::*;

/// Props of [`Tools`].
#[derive(Properties, PartialEq)]
pub struct ToolsProps {
    /// The `<video>` element.
    pub video_ref: NodeRef,
    /// The stream being shown, for recording.
    pub stream: Option<MediaStream>,
    /// Whether the settings panel is open.
    pub settings_open: bool,
    /// Opens or closes the settings panel.
    pub on_settings: Callback<()>,
    /// Reports a problem for the page's notice.
    pub on_error: Callback<String>,
}

/// A recording in progress.
struct Recording {
    recorder: web_sys::MediaRecorder,
    _on_data: Closure<dyn FnMut(web_sys::BlobEvent)>,
    _on_stop: Closure<dyn FnMut(web_sys::Event)>,
}

/// Settings, snapshot and record buttons.
#[component]
pub fn Tools(props: &ToolsProps) -> Html {
    let recording: UseStateHandle<bool> = use_state(|| false);
    let recorder: Rc<RefCell<Option<Recording>>> = use_mut_ref(|| None).clone();
    let stop_click = |e: &MouseEvent| e.stop_propagation();

    let on_settings = {
        let cb = props.on_settings.clone();
        Callback::from(move |e: MouseEvent| {
            stop_click(&e);
            cb.emit(());
        })
    };
    let on_snapshot = {
        let video_ref = props.video_ref.clone();
        let on_error = props.on_error.clone();
        Callback::from(move |e: MouseEvent| {
            stop_click(&e);
            if let Err(why) = snapshot(&video_ref) {
                on_error.emit(format!("snapshot failed: {why}"));
            }
        })
    };
    let on_record = {
        let stream = props.stream.clone();
        let on_error = props.on_error.clone();
        let recording = recording.clone();
        Callback::from(move |e: MouseEvent| {
            stop_click(&e);
            let active = recorder.borrow_mut().take();
            if let Some(active) = active {
                let _ = active.recorder.stop();
                // The closures live until the recorder's last events ran.
                let keep = Rc::new(RefCell::new(Some(active)));
                let later = keep.clone();
                gloo::timers::callback::Timeout::new(5000, move || drop(later.borrow_mut().take()))
                    .forget();
                recording.set(false);
                return;
            }
            let Some(stream) = &stream else {
                on_error.emit("nothing to record yet: no video".into());
                return;
            };
            match start_recording(stream) {
                Ok(active) => {
                    *recorder.borrow_mut() = Some(active);
                    recording.set(true);
                }
                Err(why) => on_error.emit(format!("recording failed: {why}")),
            }
        })
    };
    html! {
        <div class="tools">
            <button id="settings-button" class="icon-button" aria-label="Settings"
                aria-expanded={props.settings_open.to_string()} onclick={on_settings}>{ "⚙" }</button>
            <button id="snapshot-button" class="icon-button" aria-label="Save a snapshot"
                onclick={on_snapshot}>
                <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" class="glyph">
                    <path d="M4 7h3l2-2h6l2 2h3v12H4z" />
                    <circle cx="12" cy="13" r="3.5" />
                </svg>
            </button>
            <button id="record-button" class={classes!("icon-button", recording.then_some("recording"))}
                aria-label={if *recording { "Stop recording" } else { "Record a clip" }}
                aria-pressed={recording.to_string()} onclick={on_record}>
                { if *recording { "■" } else { "●" } }
            </button>
        </div>
    }
}

/// `rtcbot-2026-12-03T14-05-09.<ext>`: when, in a name every file system takes.
fn file_name(ext: &str) -> String {
    let iso = String::from(js_sys::Date::new_0().to_iso_string());
    let stamp: String = iso
        .chars()
        .take(19)
        .map(|c| if c == ':' { '-' } else { c })
        .collect();
    format!("rtcbot-{stamp}.{ext}")
}

/// Makes the browser save `href` as `name`.
fn download(href: &str, name: &str) -> Result<(), JsValue> {
    let document = gloo::utils::document();
    let a: HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(href);
    a.set_download(name);
    a.set_attribute("hidden", "")?;
    let body = document.body().ok_or("no body")?;
    body.append_child(&a)?;
    a.click();
    body.remove_child(&a)?;
    Ok(())
}

fn js_text(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "unknown error".into())
}

/// Saves the video's current frame, at its own size, as a PNG.
fn snapshot(video_ref: &NodeRef) -> Result<(), String> {
    let video = video_ref
        .cast::<HtmlVideoElement>()
        .ok_or("no video element")?;
    let (w, h) = (video.video_width(), video.video_height());
    if w == 0 || h == 0 {
        return Err("no picture yet".into());
    }
    let canvas: HtmlCanvasElement = gloo::utils::document()
        .create_element("canvas")
        .map_err(js_text)?
        .dyn_into()
        .map_err(|_| "no canvas")?;
    canvas.set_width(w);
    canvas.set_height(h);
    let context: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js_text)?
        .ok_or("no 2d context")?
        .dyn_into()
        .map_err(|_| "no 2d context")?;
    context
        .draw_image_with_html_video_element(&video, 0.0, 0.0)
        .map_err(js_text)?;
    let url = canvas.to_data_url_with_type("image/png").map_err(js_text)?;
    download(&url, &file_name("png")).map_err(js_text)
}

/// Starts a `MediaRecorder` on `stream`; when stopped, the clip is saved (WebM).
fn start_recording(stream: &MediaStream) -> Result<Recording, String> {
    let recorder = web_sys::MediaRecorder::new_with_media_stream(stream).map_err(js_text)?;
    let chunks = Rc::new(RefCell::new(Vec::<web_sys::Blob>::new()));
    let on_data = {
        let chunks = chunks.clone();
        Closure::<dyn FnMut(web_sys::BlobEvent)>::new(move |event: web_sys::BlobEvent| {
            if let Some(blob) = event.data() {
                if blob.size() > 0.0 {
                    chunks.borrow_mut().push(blob);
                }
            }
        })
    };
    let on_stop = {
        let recorder = recorder.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let parts = js_sys::Array::new();
            for chunk in chunks.borrow_mut().drain(..) {
                parts.push(&chunk);
            }
            let kind = recorder.mime_type();
            let options = web_sys::BlobPropertyBag::new();
            options.set_type(if kind.is_empty() { "video/webm" } else { &kind });
            if let Ok(blob) = web_sys::Blob::new_with_blob_sequence_and_options(&parts, &options) {
                if let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) {
                    let _ = download(&url, &file_name("webm"));
                    let later = url.clone();
                    gloo::timers::callback::Timeout::new(10_000, move || {
                        let _ = web_sys::Url::revoke_object_url(&later);
                    })
                    .forget();
                }
            }
        })
    };
    recorder.set_ondataavailable(Some(on_data.as_ref().unchecked_ref()));
    recorder.set_onstop(Some(on_stop.as_ref().unchecked_ref()));
    // A chunk a second, so a long clip is not one buffer.
    recorder.start_with_time_slice(1000).map_err(js_text)?;
    Ok(Recording {
        recorder,
        _on_data: on_data,
        _on_stop: on_stop,
    })
}

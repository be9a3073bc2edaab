use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlVideoElement, MediaStream};
use yew::prelude::*;

/// Props of [`VideoView`].
#[derive(Properties, PartialEq)]
pub struct VideoViewProps {
    /// The stream to show; a new one (after a reconnection) replaces the old.
    pub stream: Option<MediaStream>,
    /// Where the picture comes from (a badge says when it is the SFU).
    pub source: crate::sfu::plan::Source,
    /// The `<video>` element, for the frame watcher.
    pub video_ref: NodeRef,
    /// Whether any frame arrived yet (hides the placeholder).
    pub has_frames: bool,
    /// Text shown while there is no picture.
    pub waiting: AttrValue,
}

/// The robot's video, filling the screen; tap or click toggles fullscreen.
#[component]
pub fn VideoView(props: &VideoViewProps) -> Html {
    {
        let video_ref = props.video_ref.clone();
        use_effect_with(props.stream.clone(), move |stream| {
            if let Some(video) = video_ref.cast::<HtmlVideoElement>() {
                video.set_muted(true);
                video.set_src_object(stream.as_ref());
                if stream.is_some() {
                    // Autoplay of muted video is allowed; a refusal is not worth reporting.
                    if let Ok(promise) = video.play() {
                        wasm_bindgen_futures::spawn_local(async move {
                            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                        });
                    }
                }
            }
        });
    }
    let onclick = {
        let video_ref = props.video_ref.clone();
        Callback::from(move |_: MouseEvent| toggle_fullscreen(&video_ref))
    };
    html! {
        <div class="stage" {onclick} data-video-source={props.source.name()}>
            if props.source == crate::sfu::plan::Source::Sfu {
                <div id="video-source" class="chip small source-badge" title="The picture comes through the robot's SFU">{ "via SFU" }</div>
            }
            <video id="video" ref={props.video_ref.clone()} autoplay=true muted=true playsinline=true
                disablepictureinpicture=true />
            if !props.has_frames {
                <div class="placeholder" aria-live="polite">
                    <div class="spinner" />
                    <p>{ props.waiting.clone() }</p>
                </div>
            }
        </div>
    }
}

/// Fullscreen for the whole app (so the controls stay visible); iPhones, which only
/// allow fullscreen video, get that instead.
fn toggle_fullscreen(video_ref: &NodeRef) {
    let document = gloo::utils::document();
    if document.fullscreen_element().is_some() {
        document.exit_fullscreen();
        return;
    }
    let root: Option<HtmlElement> = document
        .get_element_by_id("app")
        .and_then(|e| e.dyn_into().ok());
    let entered = root
        .filter(|_| document.fullscreen_enabled())
        .map(|root| root.request_fullscreen().is_ok())
        .unwrap_or(false);
    if !entered {
        if let Some(video) = video_ref.cast::<HtmlVideoElement>() {
            if let Ok(f) = js_sys::Reflect::get(&video, &"webkitEnterFullscreen".into()) {
                if let Some(f) = f.dyn_ref::<js_sys::Function>() {
                    let _ = f.call0(&video);
                }
            }
        }
    }
}

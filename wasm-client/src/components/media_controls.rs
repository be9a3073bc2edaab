//! Sound and the page's own media: the robot's audio (an `<audio>` that starts muted,
//! as autoplay rules want, and a Listen / Mute button), the microphone and camera
//! toggles, and a level meter for each direction of audio.

use crate::audio_meter::Reading;
use crate::state::Switch;
use crate::util::fixed;
use web_sys::{AudioContext, HtmlMediaElement, MediaStream};
use yew::prelude::*;

/// Props of [`MediaControls`].
#[derive(Properties, PartialEq)]
pub struct MediaControlsProps {
    /// The robot's audio, once it arrived.
    pub robot_audio: Option<MediaStream>,
    /// Whether the robot's audio plays.
    pub listening: bool,
    /// The microphone's state.
    pub mic: Switch,
    /// The camera's state.
    pub camera: Switch,
    /// The robot's audio level.
    pub robot_level: Reading,
    /// The microphone's level.
    pub mic_level: Reading,
    /// The page's audio context, resumed on a tap (autoplay rules).
    pub context: Option<AudioContext>,
    /// Listen / Mute.
    pub on_listen: Callback<()>,
    /// Microphone on / off.
    pub on_mic: Callback<()>,
    /// Camera on / off.
    pub on_camera: Callback<()>,
}

/// The audio and local-media controls (see the module doc).
#[component]
pub fn MediaControls(props: &MediaControlsProps) -> Html {
    let audio_ref = use_node_ref();
    {
        let audio_ref = audio_ref.clone();
        use_effect_with(
            (props.robot_audio.clone(), props.listening),
            move |(stream, listening)| {
                if let Some(audio) = audio_ref.cast::<HtmlMediaElement>() {
                    audio.set_muted(!*listening);
                    if audio.src_object() != *stream {
                        audio.set_src_object(stream.as_ref());
                    }
                    if stream.is_some() {
                        play(&audio);
                    }
                }
            },
        );
    }
    // Every tap may be the first gesture the audio context waited for.
    let tapped = |cb: &Callback<()>| {
        let cb = cb.clone();
        let context = props.context.clone();
        Callback::from(move |e: MouseEvent| {
            e.stop_propagation();
            if let Some(context) = &context {
                if let Ok(promise) = context.resume() {
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                    });
                }
            }
            cb.emit(());
        })
    };
    let switch_class = |s: Switch| classes!("media-button", s.name());
    html! {
        <div class="media" id="media">
            <audio id="robot-audio" ref={audio_ref} autoplay=true muted=true />
            <button id="listen-button" class={classes!("media-button", props.listening.then_some("on"))}
                aria-pressed={props.listening.to_string()} disabled={props.robot_audio.is_none()}
                title={if props.robot_audio.is_some() { "The robot's sound" } else { "The robot sends no sound" }}
                onclick={tapped(&props.on_listen)}>
                { if props.listening { "Mute" } else { "Listen" } }
            </button>
            { level_bar("robot-level", "Robot", props.robot_level) }
            <button id="mic-button" class={switch_class(props.mic)}
                aria-pressed={(props.mic == Switch::On).to_string()} onclick={tapped(&props.on_mic)}>
                { match props.mic { Switch::On => "Mic off", Switch::Starting => "Mic…", Switch::Off => "Mic" } }
            </button>
            { level_bar("mic-level", "Mic", props.mic_level) }
            <button id="camera-button" class={switch_class(props.camera)}
                aria-pressed={(props.camera == Switch::On).to_string()} onclick={tapped(&props.on_camera)}>
                { match props.camera { Switch::On => "Camera off", Switch::Starting => "Camera…", Switch::Off => "Camera" } }
            </button>
        </div>
    }
}

/// One meter: a bar as long as the level. A plain function rather than a component:
/// each component type adds its own copy of Yew's lifecycle code to the bundle.
fn level_bar(id: &'static str, label: &'static str, reading: Reading) -> Html {
    let level = fixed(reading.level, 2);
    html! {
        <div class="level" id={id} role="meter" aria-label={label}
            aria-valuemin="0" aria-valuemax="1" aria-valuenow={level.clone()}
            data-level={level}>
            <div class="level-fill" style={format!("width:{}%", fixed(reading.level * 100.0, 0))} />
        </div>
    }
}

/// Starts playback; a refusal (autoplay rules) is not worth reporting: the next tap
/// plays.
fn play(media: &HtmlMediaElement) {
    if let Ok(promise) = media.play() {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        });
    }
}

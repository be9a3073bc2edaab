//! The rtcbot.js-compatible JavaScript API (cargo feature `js-api`), published on npm
//! as `rtcbot-rs` by `scripts/build-npm.sh`.
//!
//! It mirrors rtcbot.js 0.2.5 so an existing RTCBot page moves over by changing its
//! script include:
//!
//! - [`RtcConnection`] (`RTCConnection`): `getLocalDescription`, `setRemoteDescription`,
//!   `put_nowait`, `subscribe`, `video` / `audio` (`subscribe`, `putSubscription`),
//!   `close`, with the same JSON on the wire as rtcbot.js;
//! - [`Keyboard`], [`Gamepad`] and [`set_gamepad_rate`] (`setGamepadRate`), emitting
//!   rtcbot.js's event shapes;
//! - [`Queue`], the small async queue.
//!
//! For new code it adds the typed parts of the rtcbot-rs protocol: [`DriveSender`]
//! (full drive states at 20 Hz), [`drive_message`] (`driveMessage`) and
//! [`parse_telemetry`] (`parseTelemetry`), plus `RTCConnection.connect(url)` which does
//! the offer → `POST` → answer round trip with readable errors.
//!
//! Every bad argument throws an `Error` whose message names the function and what was
//! expected.

mod connection;
mod inputs;
mod protocol;
mod queue;

pub use connection::{RtcConnection, StreamHandler};
pub use inputs::{set_gamepad_rate, Gamepad, Keyboard};
pub use protocol::{drive_message, parse_telemetry, DriveSender};
pub use queue::Queue;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A session description as exchanged with `POST /connect`: `{type, sdp}`. */
export interface SessionDescription {
  type: "offer" | "answer" | "pranswer" | "rollback";
  sdp: string;
}

/** What `Keyboard` hands to its subscriber (rtcbot.js's shape). `timestamp` is always
 * `undefined`, as in rtcbot.js (which reads the non-existent `event.timestamp`), so it
 * never appears in the JSON sent. */
export interface KeyboardMessage {
  type: "keydown" | "keyup";
  altKey: boolean;
  shiftKey: boolean;
  keyCode: number;
  key: string;
  timestamp?: undefined;
}

/** What `Gamepad` hands to its subscriber on each change (rtcbot.js's shape). */
export type GamepadMessage =
  | { type: `btn${number}`; value: boolean }
  | { type: `axis${number}`; value: number };

/** A full drive state as the robot receives it. */
export interface DriveState {
  forward: number;
  turn: number;
  seq: number;
}

/** The robot's answer to a ping. */
export interface PongMessage { type: "pong"; id: number; t: number; robot_us: number }
/** Video stream figures, sent by the robot about once a second. */
export interface StatsMessage {
  type: "stats";
  viewers: number;
  frames_encoded: number;
  /** Frames per second over the last 5 s. */
  fps: number;
  /** Frames the encoder dropped on its own since start. */
  frames_skipped: number;
  /** The longest time between two frames over the last 5 s, ms. */
  max_gap_ms: number;
  bitrate_kbps: number;
  width: number;
  height: number;
  encoder: string;
  /** The bitrate congestion control asks of the encoder, kbit/s. */
  target_kbps?: number;
  /** What the path to this page carries, kbit/s, by the robot's estimate. */
  link_kbps?: number;
  /** Video packets this page reported lost, since it connected. */
  packets_lost?: number;
  /** Retransmission requests this page sent, since it connected. */
  nacks?: number;
  /** The robot's video round trip to this page, ms. */
  rtt_ms?: number;
  /** The highest temporal layer this page gets: 1, every frame; 0, the base layer
   * only (half the frame rate), because its link is slower than the encoder's target. */
  layer?: number;
}
/** Who drives and what the motors do. */
export interface StatusMessage {
  type: "status";
  driver: boolean;
  you_drive: boolean;
  motors: "stopped" | "running";
  reason?: string;
}
/** The robot refused a message this page sent. */
export interface ErrorMessage { type: "error"; message: string }
/** A typed message from the robot. */
export type TelemetryMessage = PongMessage | StatsMessage | StatusMessage | ErrorMessage;
"#;

/// An `Error` whose message starts with the function that was misused.
pub(crate) fn err(msg: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(msg.as_ref()).into()
}

/// A short description of a JS value for error messages: `a number (3)`, `a string`...
pub(crate) fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    if let Some(s) = value.as_string() {
        let short: String = s.chars().take(40).collect();
        return format!("a string ({short:?})");
    }
    if let Some(n) = value.as_f64() {
        // JavaScript writes it: Rust's float formatting is not linked.
        return format!("a number ({})", crate::util::number(n));
    }
    if let Some(b) = value.as_bool() {
        return format!("a boolean ({b})");
    }
    if value.is_function() {
        return "a function".into();
    }
    if js_sys::Array::is_array(value) {
        return "an array".into();
    }
    match value.js_typeof().as_string().as_deref() {
        Some("object") => "an object".into(),
        Some(other) => format!("a {other}"),
        None => "a value".into(),
    }
}

/// `value` as a function, or an error naming `what`.
pub(crate) fn function(what: &str, value: JsValue) -> Result<js_sys::Function, JsValue> {
    value
        .dyn_into::<js_sys::Function>()
        .map_err(|v| err(format!("{what} expects a function, got {}", describe(&v))))
}

/// Calls a subscriber; an exception it throws is reported, not propagated into the
/// event loop of the connection.
pub(crate) fn call(callback: Option<&js_sys::Function>, value: &JsValue) {
    match callback {
        Some(f) => {
            if let Err(e) = f.call1(&JsValue::NULL, value) {
                web_sys::console::error_2(&"rtcbot: a subscriber threw".into(), &e);
            }
        }
        None => web_sys::console::log_1(value),
    }
}

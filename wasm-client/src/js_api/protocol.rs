//! The typed parts of the rtcbot-rs protocol, for new pages: drive states out,
//! telemetry in.
//!
//! Written and read by [`wire`](crate::wire), as the app does, not by shared-protocol's
//! serde code: that would link serde_json (and, through its error messages, core's
//! float formatting) into the package, a fifth of its wasm. wire's tests hold its
//! text and its checks to shared-protocol's.

use super::{describe, err, RtcConnection};
use crate::drive::REPEAT_MS;
use crate::json::Field;
use crate::util::{fields_object, protocol_error};
use crate::wire::{self, RobotMessage};
use shared_protocol::DriveState;
use wasm_bindgen::prelude::*;

fn axis(what: &str, name: &str, value: &JsValue) -> Result<f64, JsValue> {
    value.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
        err(format!(
            "{what}: {name} must be a finite number in -1..=1, got {}",
            describe(value)
        ))
    })
}

/// The wire text of a drive state, `{"type":"drive","forward":..,"turn":..,"seq":..}`,
/// for `conn.put_nowait`. Throws when an axis is outside `-1..=1` or `seq` is not a
/// non-negative integer.
#[wasm_bindgen(js_name = driveMessage)]
pub fn drive_message(
    #[wasm_bindgen(unchecked_param_type = "number")] forward: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] turn: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number | undefined")] seq: JsValue,
) -> Result<String, JsValue> {
    const WHAT: &str = "driveMessage";
    let forward = axis(WHAT, "forward", &forward)?;
    let turn = axis(WHAT, "turn", &turn)?;
    let seq = if seq.is_undefined() {
        0
    } else {
        match seq.as_f64() {
            Some(s) if s >= 0.0 && s.fract() == 0.0 && s <= 9_007_199_254_740_991.0 => s as u64,
            _ => {
                return Err(err(format!(
                    "{WHAT}: seq must be a non-negative integer, got {}",
                    describe(&seq)
                )))
            }
        }
    };
    let state = DriveState::new(forward, turn, seq)
        .map_err(|e| err(format!("{WHAT}: {}", protocol_error(&e))))?;
    Ok(wire::drive(&state))
}

/// Reads one message from the robot (what `conn.subscribe` hands over): the typed
/// telemetry object (`pong`, `stats`, `status` or `error`), or `null` for anything
/// else (plain text, other JSON). Throws when a typed message is malformed.
#[wasm_bindgen(js_name = parseTelemetry, unchecked_return_type = "TelemetryMessage | null")]
pub fn parse_telemetry(
    #[wasm_bindgen(unchecked_param_type = "string")] message: JsValue,
) -> Result<JsValue, JsValue> {
    let Some(text) = message.as_string() else {
        return Err(err(format!(
            "parseTelemetry expects the text of a message, got {}",
            describe(&message)
        )));
    };
    let message = RobotMessage::parse(&text).map_err(|e| err(format!("parseTelemetry: {e}")))?;
    // The message as shared-protocol writes it: defaults filled in, unknown fields
    // left out.
    Ok(match message {
        RobotMessage::Pong(pong) => fields_object(&[
            ("type", Field::Str("pong")),
            ("id", Field::Num(pong.id as f64)),
            ("t", Field::Num(pong.t)),
            ("robot_us", Field::Num(pong.robot_us as f64)),
        ])
        .into(),
        RobotMessage::Stats(stats) => wire::stats_object(&stats).into(),
        RobotMessage::Status(status) => wire::status_object(&status).into(),
        RobotMessage::Error(message) => fields_object(&[
            ("type", Field::Str("error")),
            ("message", Field::Str(&message)),
        ])
        .into(),
        RobotMessage::Settings(settings) => {
            let object = js_sys::JSON::parse(&wire::settings(&settings))?;
            if let Some(cameras) = &settings.cameras {
                let list: js_sys::Array = cameras.iter().map(|c| JsValue::from_str(c)).collect();
                js_sys::Reflect::set(&object, &"cameras".into(), &list)?;
            }
            object
        }
        RobotMessage::Negotiate(description) => {
            js_sys::JSON::parse(&wire::negotiate(description.kind, &description.sdp))?
        }
        RobotMessage::Other(_) => JsValue::NULL,
    })
}

/// Drives the robot the recommended way: full drive states, sent at once when they
/// change and repeated at 20 Hz while non-zero, each with a new `seq` (a zero state is
/// sent once). `new DriveSender(conn)`, then `set(forward, turn)` and `stop()`.
#[wasm_bindgen]
pub struct DriveSender {
    sender: crate::drive::DriveSender,
}

#[wasm_bindgen]
impl DriveSender {
    /// A sender on `conn`'s drive channel (unordered, no retransmission; the default
    /// channel until it opens). Before any channel opens only the newest state is kept.
    #[wasm_bindgen(constructor)]
    pub fn new(conn: &RtcConnection) -> DriveSender {
        let inner = conn.inner();
        let sender = crate::drive::DriveSender::new(REPEAT_MS, {
            move |state: &DriveState| {
                // A closed connection refuses; the repeat stops with `stop()`/`close()`.
                let _ = inner.send_drive(wire::drive(state), state.is_stopped());
            }
        });
        Self { sender }
    }

    /// Sets the wanted drive: `forward` (+ ahead) and `turn` (+ right), each clamped to
    /// `-1..=1`. Throws on a non-number or NaN.
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] forward: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] turn: JsValue,
    ) -> Result<(), JsValue> {
        let forward = axis("DriveSender.set", "forward", &forward)?;
        let turn = axis("DriveSender.set", "turn", &turn)?;
        self.sender.set(forward, turn);
        Ok(())
    }

    /// Stops the robot: sends a zero state if the current one is not zero.
    pub fn stop(&self) {
        self.sender.stop();
    }

    /// The last state sent, `{forward, turn, seq}`.
    #[wasm_bindgen(getter, unchecked_return_type = "DriveState")]
    pub fn state(&self) -> JsValue {
        let s = self.sender.current();
        let obj = js_sys::Object::new();
        for (k, v) in [
            ("forward", s.forward),
            ("turn", s.turn),
            ("seq", s.seq as f64),
        ] {
            let _ = js_sys::Reflect::set(&obj, &k.into(), &v.into());
        }
        obj.into()
    }
}

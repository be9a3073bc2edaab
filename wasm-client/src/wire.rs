//! The wire messages the client writes and reads, through the browser's own JSON.
//!
//! shared-protocol defines every message, and its serde code is what the robot runs.
//! The client needs only a handful of them; in the browser, `JSON.parse`,
//! `JSON.stringify` and a few field reads do that job without linking serde_json's
//! parser, printer and float formatting into the bundle.
//!
//! The text written is shared-protocol's JSON with the fields in the same order;
//! numbers are written the way JavaScript writes them (`1` where serde_json writes
//! `1.0`, the same JSON number). Messages read are checked as shared-protocol checks
//! them: a typed message with a missing or mistyped field is an error, not a zero.

use crate::util::object;
use js_sys::{Object, Reflect, JSON};
use shared_protocol::signaling::MAX_DESCRIPTION_BYTES;
use shared_protocol::{
    DriveState, MotorState, Ping, Pong, ProtocolError, RobotStatus, SdpType, SessionDescription,
    StreamStats, MAX_MESSAGE_BYTES,
};
use wasm_bindgen::JsValue;

/// The largest integer a JavaScript number holds exactly, 2^53 - 1.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The signaling body of an offer: `{"type":"offer","sdp":"..."}`.
pub fn offer(sdp: &str) -> String {
    stringify(&[("type", "offer".into()), ("sdp", sdp.into())])
}

/// Reads the robot's session description, checked like
/// [`SessionDescription::from_json`]; the error is a sentence for the page.
pub fn description(text: &str) -> Result<SessionDescription, String> {
    const WHAT: &str = "session description";
    if text.len() > MAX_DESCRIPTION_BYTES {
        return Err(format!(
            "{WHAT} is {} bytes, larger than the {MAX_DESCRIPTION_BYTES}-byte limit",
            text.len()
        ));
    }
    let value = JSON::parse(text).map_err(|_| format!("malformed {WHAT}: not JSON"))?;
    let fields = Fields::of(&value, WHAT)?;
    let kind = match fields.string("type")?.as_str() {
        "offer" => SdpType::Offer,
        "answer" => SdpType::Answer,
        _ => return Err(fields.wrong("type", "\"offer\" or \"answer\"")),
    };
    let description = SessionDescription {
        kind,
        sdp: fields.string("sdp")?,
    };
    match description.validate() {
        Ok(()) => Ok(description),
        Err(ProtocolError::InvalidSdp(why)) => Err(format!("invalid SDP: {why}")),
        Err(_) => Err("invalid SDP".to_owned()),
    }
}

/// The text of a drive state: `{"forward":..,"seq":..,"turn":..,"type":"drive"}`.
pub fn drive(state: &DriveState) -> String {
    stringify(&[
        ("forward", state.forward.into()),
        ("seq", (state.seq as f64).into()),
        ("turn", state.turn.into()),
        ("type", "drive".into()),
    ])
}

/// The text of a ping: `{"id":..,"t":..,"type":"ping"}`.
pub fn ping(ping: &Ping) -> String {
    stringify(&[
        ("id", (ping.id as f64).into()),
        ("t", ping.t.into()),
        ("type", "ping".into()),
    ])
}

/// One message from the robot, as the client reads it (shared-protocol's
/// [`Telemetry`](shared_protocol::Telemetry) without serde_json's `Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum RobotMessage {
    /// The answer to a ping.
    Pong(Pong),
    /// The robot's video stream figures.
    Stats(StreamStats),
    /// Who drives and what the motors do.
    Status(RobotStatus),
    /// The robot refused something this page sent.
    Error(String),
    /// Any other message, JSON (written compactly) or plain text, for a person to read.
    Other(String),
}

impl RobotMessage {
    /// Reads one data-channel message like [`Telemetry::parse`](shared_protocol::Telemetry::parse):
    /// `pong`, `stats`, `status` and `error` must have their fields; anything else
    /// passes through as [`RobotMessage::Other`].
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message is {} bytes, larger than the {MAX_MESSAGE_BYTES}-byte limit",
                text.len()
            ));
        }
        let Ok(value) = JSON::parse(text) else {
            return Ok(Self::Other(text.to_owned()));
        };
        let kind = value
            .is_object()
            .then(|| Reflect::get(&value, &"type".into()).ok()?.as_string())
            .flatten();
        let fields = |what| Fields {
            value: &value,
            what,
        };
        let message = match kind.as_deref() {
            Some("pong") => Self::pong(&fields("pong")),
            Some("stats") => Self::stats(&fields("stats")),
            Some("status") => Self::status(&fields("status")),
            Some("error") => fields("error").string("message").map(Self::Error),
            _ => Ok(Self::Other(
                JSON::stringify(&value).map_or_else(|_| text.to_owned(), String::from),
            )),
        };
        message.map_err(|e| format!("malformed telemetry: {e}"))
    }

    fn pong(f: &Fields) -> Result<Self, String> {
        Ok(Self::Pong(Pong {
            id: f.count("id")?,
            t: f.number("t")?,
            robot_us: f.count("robot_us")?,
        }))
    }

    fn stats(f: &Fields) -> Result<Self, String> {
        Ok(Self::Stats(StreamStats {
            viewers: f.count("viewers")?,
            frames_encoded: f.count("frames_encoded")?,
            fps: f.number("fps")?,
            bitrate_kbps: f.number("bitrate_kbps")?,
            width: f.count("width")?,
            height: f.count("height")?,
            encoder: f.string("encoder")?,
        }))
    }

    fn status(f: &Fields) -> Result<Self, String> {
        let motors = match f.string("motors")?.as_str() {
            "stopped" => MotorState::Stopped,
            "running" => MotorState::Running,
            _ => return Err(f.wrong("motors", "\"stopped\" or \"running\"")),
        };
        Ok(Self::Status(RobotStatus {
            driver: f.boolean("driver")?,
            you_drive: f.optional("you_drive", Fields::boolean)?.unwrap_or(false),
            motors,
            reason: f.optional("reason", Fields::string)?,
        }))
    }
}

/// A status message as the object `JSON.parse` makes of its text (`reason` left
/// out when there is none).
pub fn status_object(status: &RobotStatus) -> Object {
    let motors = match status.motors {
        MotorState::Stopped => "stopped",
        MotorState::Running => "running",
    };
    let mut fields = vec![
        ("type", "status".into()),
        ("driver", status.driver.into()),
        ("you_drive", status.you_drive.into()),
        ("motors", motors.into()),
    ];
    if let Some(reason) = &status.reason {
        fields.push(("reason", reason.into()));
    }
    object(&fields)
}

/// A stats message as the object `JSON.parse` makes of its text.
pub fn stats_object(stats: &StreamStats) -> Object {
    object(&[
        ("type", "stats".into()),
        ("viewers", stats.viewers.into()),
        ("frames_encoded", (stats.frames_encoded as f64).into()),
        ("fps", stats.fps.into()),
        ("bitrate_kbps", stats.bitrate_kbps.into()),
        ("width", stats.width.into()),
        ("height", stats.height.into()),
        ("encoder", (&stats.encoder).into()),
    ])
}

/// `JSON.stringify` of an object with these fields, in this order.
fn stringify(fields: &[(&str, JsValue)]) -> String {
    // A plain object of strings and numbers always serialises.
    JSON::stringify(&object(fields)).map_or_else(|_| String::new(), String::from)
}

/// The fields of one parsed JSON object, read with the message's name in errors.
struct Fields<'a> {
    value: &'a JsValue,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a JsValue, what: &'static str) -> Result<Self, String> {
        if value.is_object() {
            Ok(Self { value, what })
        } else {
            Err(format!("{what} must be a JSON object"))
        }
    }

    fn get(&self, key: &str) -> JsValue {
        Reflect::get(self.value, &key.into()).unwrap_or(JsValue::UNDEFINED)
    }

    fn wrong(&self, key: &str, expected: &str) -> String {
        format!("{} field {key} must be {expected}", self.what)
    }

    fn number(&self, key: &str) -> Result<f64, String> {
        self.get(key)
            .as_f64()
            .ok_or_else(|| self.wrong(key, "a number"))
    }

    /// A non-negative integer that fits `T` (and that JavaScript holds exactly).
    fn count<T: TryFrom<u64>>(&self, key: &str) -> Result<T, String> {
        self.get(key)
            .as_f64()
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= MAX_SAFE_INTEGER)
            .and_then(|n| T::try_from(n as u64).ok())
            .ok_or_else(|| self.wrong(key, "a non-negative integer"))
    }

    fn boolean(&self, key: &str) -> Result<bool, String> {
        self.get(key)
            .as_bool()
            .ok_or_else(|| self.wrong(key, "true or false"))
    }

    fn string(&self, key: &str) -> Result<String, String> {
        self.get(key)
            .as_string()
            .ok_or_else(|| self.wrong(key, "a string"))
    }

    /// `None` when the field is missing or `null`, else what `read` makes of it.
    fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            Ok(None)
        } else {
            read(self, key).map(Some)
        }
    }
}

//! The wire messages the client writes and reads, without serde_json in the bundle.
//!
//! shared-protocol defines every message, and its serde code is what the robot runs.
//! The client needs only a handful of them; [`json`](crate::json) writes them in plain
//! Rust and reads them through the browser's `JSON.parse` and a few field reads, which
//! does the job without linking serde_json's parser, printer and float formatting into
//! the bundle. Off the browser (native builds, tests) the same readers look into a
//! serde_json value instead.
//!
//! The text written is shared-protocol's JSON with the fields in the same order;
//! numbers are written the way JavaScript writes them (`1` where serde_json writes
//! `1.0`, the same JSON number). Messages read are checked as shared-protocol checks
//! them: a typed message with a missing or mistyped field is an error, not a zero.
//! The tests in `wire/tests.rs` hold both to shared-protocol's own serialisation.

use crate::json::{self, Field, Parsed, Value};
use shared_protocol::signaling::{MAX_DESCRIPTION_BYTES, NEGOTIATE_TYPE};
use shared_protocol::{
    DriveState, MotorState, Ping, Pong, ProtocolError, RobotStatus, SdpType, SessionDescription,
    SfuStats, StreamStats, VideoSettings, MAX_MESSAGE_BYTES,
};

/// The largest integer a JavaScript number holds exactly, 2^53 - 1.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The signaling body of an offer: `{"type":"offer","sdp":"..."}`.
pub fn offer(sdp: &str) -> String {
    json::object(&[("type", Field::Str("offer")), ("sdp", Field::Str(sdp))])
}

/// A renegotiation message carrying `description`:
/// `{"type":"negotiate","description":{"type":"offer","sdp":"..."}}` (see
/// [`SessionDescription::to_message`]).
pub fn negotiate(kind: SdpType, sdp: &str) -> String {
    let kind = match kind {
        SdpType::Offer => "offer",
        SdpType::Answer => "answer",
    };
    let description = json::object(&[("type", Field::Str(kind)), ("sdp", Field::Str(sdp))]);
    // `{"type":"negotiate"` + `,"description":{...}}`
    let mut text = json::object(&[("type", Field::Str(NEGOTIATE_TYPE))]);
    text.pop();
    text.push_str(",\"description\":");
    text.push_str(&description);
    text.push('}');
    text
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
    let value = Value::parse(text).ok_or_else(|| format!("malformed {WHAT}: not JSON"))?;
    description_of(&value, WHAT)
}

/// The description in a parsed `{type, sdp}` object, checked.
fn description_of<V: Parsed>(value: &V, what: &'static str) -> Result<SessionDescription, String> {
    let fields = Fields::of(value, what)?;
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
    json::object(&[
        ("forward", Field::Num(state.forward)),
        ("seq", Field::Num(state.seq as f64)),
        ("turn", Field::Num(state.turn)),
        ("type", Field::Str("drive")),
    ])
}

/// The text of a ping: `{"id":..,"t":..,"type":"ping"}`.
pub fn ping(ping: &Ping) -> String {
    json::object(&[
        ("id", Field::Num(ping.id as f64)),
        ("t", Field::Num(ping.t)),
        ("type", Field::Str("ping")),
    ])
}

/// The text of a settings request, `{"bitrate_kbps":..,"camera":..,"fps":..,
/// "height":..,"type":"settings","width":..}` with the fields that are set.
pub fn settings(s: &VideoSettings) -> String {
    let num = |v: Option<u32>| v.map(|v| Field::Num(f64::from(v)));
    let fields = [
        ("bitrate_kbps", num(s.bitrate_kbps)),
        ("camera", s.camera.as_deref().map(Field::Str)),
        ("fps", num(s.fps)),
        ("height", num(s.height)),
        ("type", Some(Field::Str("settings"))),
        ("width", num(s.width)),
    ];
    let set: Vec<_> = fields
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    json::object(&set)
}

/// The robot's own readings in a message, each as a person reads it: the fields of
/// a JSON object without a `type` (a program's `{"battery": 11.9}`), the struct an
/// Arduino sent (`{"type":"serial","message":{...}}`), or the serial link's state
/// (`serial`: `connected`...); `None` for anything else (a serial error among them,
/// which is a notice).
pub fn named_values(text: &str) -> Option<Vec<(String, String)>> {
    let value = Value::parse(text)?;
    let value = match value.field("type").and_then(|t| t.as_string()).as_deref() {
        None if value.field("type").is_none() => value,
        Some("serial") => {
            if let Some(state) = value.field("state").and_then(|s| s.as_string()) {
                return Some(vec![("serial".to_owned(), state)]);
            }
            value.field("message").filter(|m| !m.entries().is_empty())?
        }
        _ => return None,
    };
    let entries = value.entries();
    if entries.is_empty() {
        return None;
    }
    Some(
        entries
            .into_iter()
            .map(|(k, v)| (k, json::display(&v)))
            .collect(),
    )
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
    /// A renegotiation description (the answer to the page's offer, or an offer).
    Negotiate(SessionDescription),
    /// The video settings in force (after an admin changed them).
    Settings(VideoSettings),
    /// Any other message, JSON (written compactly) or plain text, for a person to read.
    Other(String),
}

impl RobotMessage {
    /// Reads one data-channel message like [`Telemetry::parse`](shared_protocol::Telemetry::parse):
    /// `pong`, `stats`, `status` and `error` must have their fields; anything else
    /// passes through as [`RobotMessage::Other`].
    pub fn parse(text: &str) -> Result<Self, String> {
        // A renegotiation may be as long as a session description; the rest not.
        let limit = if text.len() > MAX_MESSAGE_BYTES && text.contains(NEGOTIATE_TYPE) {
            MAX_DESCRIPTION_BYTES
        } else {
            MAX_MESSAGE_BYTES
        };
        let too_long = |limit: usize| {
            format!(
                "message is {} bytes, larger than the {limit}-byte limit",
                text.len()
            )
        };
        if text.len() > limit {
            return Err(too_long(limit));
        }
        let Some(value) = Value::parse(text) else {
            if text.len() > MAX_MESSAGE_BYTES {
                return Err(too_long(MAX_MESSAGE_BYTES));
            }
            return Ok(Self::Other(text.to_owned()));
        };
        let kind = value.field("type").and_then(|kind| kind.as_string());
        if kind.as_deref() != Some(NEGOTIATE_TYPE) && text.len() > MAX_MESSAGE_BYTES {
            return Err(too_long(MAX_MESSAGE_BYTES));
        }
        let fields = |what| Fields {
            value: &value,
            what,
        };
        let message = match kind.as_deref() {
            Some("pong") => Self::pong(&fields("pong")),
            Some("stats") => Self::stats(&fields("stats")),
            Some("status") => Self::status(&fields("status")),
            Some("error") => fields("error").string("message").map(Self::Error),
            Some("settings") => Self::settings(&fields("settings")),
            Some(NEGOTIATE_TYPE) => match value.field("description") {
                Some(description) => description_of(&description, "negotiate message description")
                    .map(Self::Negotiate),
                None => Err("negotiate message field description is missing".to_owned()),
            },
            _ => Ok(Self::Other(
                value.to_text().unwrap_or_else(|| text.to_owned()),
            )),
        };
        message.map_err(|e| format!("malformed telemetry: {e}"))
    }

    fn pong(f: &Fields<Value>) -> Result<Self, String> {
        Ok(Self::Pong(Pong {
            id: f.integer("id")?,
            t: f.number("t")?,
            robot_us: f.count("robot_us")?,
        }))
    }

    fn stats(f: &Fields<Value>) -> Result<Self, String> {
        Ok(Self::Stats(StreamStats {
            viewers: f.count("viewers")?,
            frames_encoded: f.count("frames_encoded")?,
            fps: f.number("fps")?,
            frames_skipped: f.optional("frames_skipped", Fields::count)?.unwrap_or(0),
            max_gap_ms: f.optional("max_gap_ms", Fields::number)?.unwrap_or(0.0),
            bitrate_kbps: f.number("bitrate_kbps")?,
            width: f.count("width")?,
            height: f.count("height")?,
            encoder: f.string("encoder")?,
            target_kbps: f.optional("target_kbps", Fields::count)?,
            link_kbps: f.optional("link_kbps", Fields::count)?,
            packets_lost: f.optional("packets_lost", Fields::count)?,
            nacks: f.optional("nacks", Fields::count)?,
            rtt_ms: f.optional("rtt_ms", Fields::number)?,
            layer: f.optional("layer", Fields::count)?,
            sfu: f.optional("sfu", Self::sfu)?,
        }))
    }

    /// The SFU publisher's state in the stats, with where pages watch.
    fn sfu(f: &Fields<Value>, key: &str) -> Result<SfuStats, String> {
        let value = f.get(key).ok_or_else(|| f.wrong(key, "an object"))?;
        let s = Fields::of(&value, "stats field sfu")?;
        let watch = match s.get("watch").filter(|w| !w.is_null()) {
            None => None,
            Some(watch) => {
                let w = Fields::of(&watch, "stats field sfu.watch")?;
                Some(shared_protocol::SfuWatch {
                    url: w.string("url")?,
                    room: w.count("room")?,
                    feed: w.count("feed")?,
                    pin: w.optional("pin", Fields::string)?,
                })
            }
        };
        Ok(SfuStats {
            state: s.string("state")?,
            publishes: s.count("publishes")?,
            error: s.optional("error", Fields::string)?,
            watch,
        })
    }

    fn settings(f: &Fields<Value>) -> Result<Self, String> {
        Ok(Self::Settings(VideoSettings {
            width: f.optional("width", Fields::count)?,
            height: f.optional("height", Fields::count)?,
            fps: f.optional("fps", Fields::count)?,
            bitrate_kbps: f.optional("bitrate_kbps", Fields::count)?,
            camera: f.optional("camera", Fields::string)?,
            cameras: f.optional("cameras", Fields::strings)?,
        }))
    }

    fn status(f: &Fields<Value>) -> Result<Self, String> {
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

/// The fields of a status message, in shared-protocol's order (`reason` left out
/// when there is none).
pub fn status_fields(status: &RobotStatus) -> Vec<(&'static str, Field<'_>)> {
    let motors = match status.motors {
        MotorState::Stopped => "stopped",
        MotorState::Running => "running",
    };
    let mut fields = vec![
        ("type", Field::Str("status")),
        ("driver", Field::Bool(status.driver)),
        ("you_drive", Field::Bool(status.you_drive)),
        ("motors", Field::Str(motors)),
    ];
    if let Some(reason) = &status.reason {
        fields.push(("reason", Field::Str(reason)));
    }
    fields
}

/// The fields of a stats message, in shared-protocol's order (the link's left out
/// when absent).
pub fn stats_fields(stats: &StreamStats) -> Vec<(&'static str, Field<'_>)> {
    let optional = [
        ("target_kbps", stats.target_kbps.map(f64::from)),
        ("link_kbps", stats.link_kbps.map(f64::from)),
        ("packets_lost", stats.packets_lost.map(|n| n as f64)),
        ("nacks", stats.nacks.map(|n| n as f64)),
        ("rtt_ms", stats.rtt_ms),
        ("layer", stats.layer.map(f64::from)),
    ];
    let mut fields = vec![
        ("type", Field::Str("stats")),
        ("viewers", Field::Num(f64::from(stats.viewers))),
        ("frames_encoded", Field::Num(stats.frames_encoded as f64)),
        ("fps", Field::Num(stats.fps)),
        ("frames_skipped", Field::Num(stats.frames_skipped as f64)),
        ("max_gap_ms", Field::Num(stats.max_gap_ms)),
        ("bitrate_kbps", Field::Num(stats.bitrate_kbps)),
        ("width", Field::Num(f64::from(stats.width))),
        ("height", Field::Num(f64::from(stats.height))),
        ("encoder", Field::Str(&stats.encoder)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            fields.push((name, Field::Num(value)));
        }
    }
    fields
}

/// A status message as the object `JSON.parse` makes of its text.
#[cfg(target_arch = "wasm32")]
pub fn status_object(status: &RobotStatus) -> js_sys::Object {
    crate::util::fields_object(&status_fields(status))
}

/// A stats message as the object `JSON.parse` makes of its text (the SFU's state
/// as `sfu: {state, publishes, error, watch: {url, room, feed}}`).
#[cfg(target_arch = "wasm32")]
pub fn stats_object(stats: &StreamStats) -> js_sys::Object {
    let object = crate::util::fields_object(&stats_fields(stats));
    if let Some(sfu) = &stats.sfu {
        let mut fields = vec![
            ("state", Field::Str(&sfu.state)),
            ("publishes", Field::Num(sfu.publishes as f64)),
        ];
        if let Some(error) = &sfu.error {
            fields.push(("error", Field::Str(error)));
        }
        let sfu_object = crate::util::fields_object(&fields);
        if let Some(watch) = &sfu.watch {
            let watch = crate::util::fields_object(&[
                ("url", Field::Str(&watch.url)),
                ("room", Field::Num(watch.room as f64)),
                ("feed", Field::Num(watch.feed as f64)),
            ]);
            let _ = js_sys::Reflect::set(&sfu_object, &"watch".into(), &watch);
        }
        let _ = js_sys::Reflect::set(&object, &"sfu".into(), &sfu_object);
    }
    object
}

/// The fields of one parsed JSON object, read with the message's name in errors.
struct Fields<'a, V> {
    value: &'a V,
    what: &'static str,
}

impl<'a, V: Parsed> Fields<'a, V> {
    fn of(value: &'a V, what: &'static str) -> Result<Self, String> {
        if value.is_object() {
            Ok(Self { value, what })
        } else {
            Err(format!("{what} must be a JSON object"))
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.value.field(key)
    }

    fn wrong(&self, key: &str, expected: &str) -> String {
        format!("{} field {key} must be {expected}", self.what)
    }

    fn number(&self, key: &str) -> Result<f64, String> {
        self.get(key)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| self.wrong(key, "a number"))
    }

    /// A non-negative integer that fits `T` (and that JavaScript holds exactly).
    fn count<T: TryFrom<u64>>(&self, key: &str) -> Result<T, String> {
        self.get(key)
            .and_then(|v| v.as_f64())
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= MAX_SAFE_INTEGER)
            .and_then(|n| T::try_from(n as u64).ok())
            .ok_or_else(|| self.wrong(key, "a non-negative integer"))
    }

    /// Any integer JSON numbers hold exactly (a ping id may be negative).
    fn integer(&self, key: &str) -> Result<i128, String> {
        self.get(key)
            .and_then(|v| v.as_f64())
            .filter(|n| n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER)
            .map(|n| n as i128)
            .ok_or_else(|| self.wrong(key, "an integer"))
    }

    fn boolean(&self, key: &str) -> Result<bool, String> {
        self.get(key)
            .and_then(|v| v.as_bool())
            .ok_or_else(|| self.wrong(key, "true or false"))
    }

    fn string(&self, key: &str) -> Result<String, String> {
        self.get(key)
            .and_then(|v| v.as_string())
            .ok_or_else(|| self.wrong(key, "a string"))
    }

    /// An array of strings.
    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        self.get(key)
            .and_then(|v| v.items())
            .and_then(|items| items.iter().map(Parsed::as_string).collect())
            .ok_or_else(|| self.wrong(key, "an array of strings"))
    }

    /// `None` when the field is missing or `null`, else what `read` makes of it.
    fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        if self.get(key).is_none_or(|v| v.is_null()) {
            Ok(None)
        } else {
            read(self, key).map(Some)
        }
    }
}

#[cfg(test)]
mod tests;

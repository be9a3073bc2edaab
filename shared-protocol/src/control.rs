//! Messages from a driver (browser, rtcbot.js page, Rust client) to the robot.
//!
//! Text on the `default` data channel is read as follows, the way RTCBot does:
//! - JSON objects whose `type` this protocol defines become typed messages and are
//!   validated strictly ([`Control::Drive`], [`Control::Key`], [`Control::Gamepad`],
//!   [`Control::Ping`]);
//! - an object whose `type` is a string this protocol does not define is refused with
//!   [`ProtocolError::UnknownType`], so a typo never silently does nothing;
//! - any other JSON value (objects without `type`, arrays, numbers...) is passed through
//!   untouched as [`Control::Json`];
//! - text that is not JSON at all is passed through as [`Control::Text`], since
//!   rtcbot.js sends strings as they are. Text that starts like a JSON object or array
//!   but does not parse is an error.

use crate::error::{check_len, ProtocolError};
use crate::MAX_MESSAGE_BYTES;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The highest gamepad axis or button index accepted (the Gamepad API reports far fewer).
pub const MAX_GAMEPAD_INDEX: u32 = 63;

/// The longest `key` string accepted in a keyboard event.
pub const MAX_KEY_LEN: usize = 64;

/// One message from a driver to the robot.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// The full drive state; the recommended way to drive.
    Drive(DriveState),
    /// A keyboard event in rtcbot.js's shape.
    Key(KeyEvent),
    /// A gamepad axis or button change in rtcbot.js's shape.
    Gamepad(GamepadEvent),
    /// A round-trip probe; the robot answers with a pong.
    Ping(Ping),
    /// Live video settings (an admin's token only).
    Settings(crate::VideoSettings),
    /// A renegotiation offer (or an answer to the robot's) during the session: media
    /// turned on or off without reconnecting (see
    /// [`SessionDescription::to_message`](crate::SessionDescription::to_message)).
    Negotiate(crate::SessionDescription),
    /// Any other JSON value, untouched.
    Json(Value),
    /// Text that is not JSON, untouched.
    Text(String),
}

/// Where the driver wants the robot to go. Both axes are in `[-1, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DriveState {
    /// Forward (+) or backward (-) speed.
    pub forward: f64,
    /// Turn right (+) or left (-).
    pub turn: f64,
    /// Increases with every state a driver sends; lets the robot drop stale states.
    #[serde(default)]
    pub seq: u64,
}

impl DriveState {
    /// Motors off.
    pub const STOP: Self = Self {
        forward: 0.0,
        turn: 0.0,
        seq: 0,
    };

    /// A checked drive state: both axes finite and within `[-1, 1]`.
    pub fn new(forward: f64, turn: f64, seq: u64) -> Result<Self, ProtocolError> {
        Ok(Self {
            forward: ProtocolError::check_range("forward", forward, -1.0, 1.0, "-1..=1")?,
            turn: ProtocolError::check_range("turn", turn, -1.0, 1.0, "-1..=1")?,
            seq,
        })
    }

    /// True when both axes are zero.
    pub fn is_stopped(&self) -> bool {
        self.forward == 0.0 && self.turn == 0.0
    }
}

/// Whether a key went down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEventKind {
    /// `keydown`
    KeyDown,
    /// `keyup`
    KeyUp,
}

/// A keyboard event exactly as rtcbot.js's `Keyboard` emits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyEvent {
    /// `keydown` or `keyup`.
    #[serde(rename = "type")]
    pub kind: KeyEventKind,
    /// The DOM `key` value (`"w"`, `"ArrowUp"`...).
    pub key: String,
    /// The DOM `keyCode`.
    #[serde(default)]
    pub key_code: u32,
    /// Alt was held.
    #[serde(default)]
    pub alt_key: bool,
    /// Shift was held.
    #[serde(default)]
    pub shift_key: bool,
    /// The sender's clock in milliseconds, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

/// A gamepad change as rtcbot.js's `Gamepad` emits it: `{"type":"axis0","value":0.5}`
/// or `{"type":"btn3","value":true}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GamepadEvent {
    /// Axis `index` moved to `value` in `[-1, 1]`.
    Axis {
        /// The Gamepad API axis index.
        index: u32,
        /// The new position.
        value: f64,
    },
    /// Button `index` was pressed (`true`) or released.
    Button {
        /// The Gamepad API button index.
        index: u32,
        /// Pressed.
        pressed: bool,
    },
}

/// A round-trip probe: the robot echoes `id` and `t` back in a pong.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// The sender's number for this ping: any JSON integer, negative included (from
    /// `i64::MIN` to `u64::MAX`), echoed back exactly; see [`ping_id`].
    #[serde(with = "ping_id")]
    pub id: i128,
    /// The sender's clock when sent, in milliseconds; echoed untouched.
    #[serde(default)]
    pub t: f64,
}

/// Reads and writes ping and pong ids: any JSON integer from `i64::MIN` to `u64::MAX`
/// (what JSON parsers hold exactly), written back as it was read. A fraction or a
/// string is refused with a clear error. An id outside that range, which no message
/// can carry, is written clamped to it.
pub mod ping_id {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    /// The smallest id.
    pub const MIN: i128 = i64::MIN as i128;
    /// The largest id.
    pub const MAX: i128 = u64::MAX as i128;

    /// Writes `id` as a JSON integer (clamped to [`MIN`]..=[`MAX`]).
    pub fn serialize<S: Serializer>(id: &i128, serializer: S) -> Result<S::Ok, S::Error> {
        let id = (*id).clamp(MIN, MAX);
        match u64::try_from(id) {
            Ok(id) => serializer.serialize_u64(id),
            // Negative and at least MIN: fits.
            Err(_) => serializer.serialize_i64(id as i64),
        }
    }

    /// `id` as a JSON number (clamped to [`MIN`]..=[`MAX`]).
    pub fn to_value(id: i128) -> serde_json::Value {
        let id = id.clamp(MIN, MAX);
        match u64::try_from(id) {
            Ok(id) => id.into(),
            // Negative and at least MIN: fits.
            Err(_) => (id as i64).into(),
        }
    }

    /// Reads any JSON integer, negative included.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }

    struct IdVisitor;

    impl Visitor<'_> for IdVisitor {
        type Value = i128;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer id")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            Ok(v.into())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            Ok(v.into())
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
            Err(E::custom(format_args!(
                "the id must be an integer from -2^63 to 2^64-1, not {v}"
            )))
        }
    }
}

impl Control {
    /// Parses one data-channel text message; see the module docs for the rules.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        // Only a session description may be longer than a message: anything else that
        // long is refused before it is parsed.
        if !text.contains(r#""negotiate""#) {
            check_len(text, MAX_MESSAGE_BYTES)?;
        }
        check_len(text, crate::signaling::MAX_DESCRIPTION_BYTES)?;
        let value = match serde_json::from_str::<Value>(text) {
            Ok(value) => value,
            Err(err) => {
                check_len(text, MAX_MESSAGE_BYTES)?;
                let start = text.trim_start();
                return if start.starts_with('{') || start.starts_with('[') {
                    Err(ProtocolError::malformed("JSON message", err))
                } else {
                    Ok(Self::Text(text.to_owned()))
                };
            }
        };
        let Some(kind) = value.get("type") else {
            check_len(text, MAX_MESSAGE_BYTES)?;
            return Ok(Self::Json(value));
        };
        let Some(kind) = kind.as_str() else {
            return Err(ProtocolError::malformed(
                "message",
                "the \"type\" field must be a string",
            ));
        };
        if kind != crate::signaling::NEGOTIATE_TYPE {
            check_len(text, MAX_MESSAGE_BYTES)?;
        }
        match kind {
            crate::signaling::NEGOTIATE_TYPE => {
                crate::SessionDescription::from_message(value).map(Self::Negotiate)
            }
            "drive" => {
                let s: DriveState = serde_json::from_value(value)
                    .map_err(|e| ProtocolError::malformed("drive message", e))?;
                DriveState::new(s.forward, s.turn, s.seq).map(Self::Drive)
            }
            "keydown" | "keyup" => {
                let key: KeyEvent = serde_json::from_value(value)
                    .map_err(|e| ProtocolError::malformed("keyboard event", e))?;
                if key.key.len() > MAX_KEY_LEN {
                    return Err(ProtocolError::malformed(
                        "keyboard event",
                        format!("key is longer than {MAX_KEY_LEN} bytes"),
                    ));
                }
                if let Some(t) = key.timestamp {
                    ProtocolError::check_range("timestamp", t, f64::MIN, f64::MAX, "finite")?;
                }
                Ok(Self::Key(key))
            }
            "settings" => crate::VideoSettings::from_message(value).map(Self::Settings),
            "ping" => {
                let ping: Ping = serde_json::from_value(value)
                    .map_err(|e| ProtocolError::malformed("ping", e))?;
                ProtocolError::check_range("t", ping.t, f64::MIN, f64::MAX, "finite")?;
                Ok(Self::Ping(ping))
            }
            other => match GamepadEvent::parse(other, &value) {
                Some(event) => event.map(Self::Gamepad),
                None => Err(ProtocolError::UnknownType(other.chars().take(64).collect())),
            },
        }
    }

    /// The text sent on the wire for this message.
    pub fn to_text(&self) -> String {
        match self {
            Self::Drive(s) => {
                json!({"type": "drive", "forward": s.forward, "turn": s.turn, "seq": s.seq})
                    .to_string()
            }
            Self::Key(k) => serde_json::to_string(k).expect("key events serialise"),
            Self::Gamepad(g) => g.to_value().to_string(),
            Self::Ping(p) => {
                json!({"type": "ping", "id": ping_id::to_value(p.id), "t": p.t}).to_string()
            }
            Self::Settings(s) => s.to_message().to_string(),
            Self::Negotiate(d) => d.to_message().to_string(),
            Self::Json(v) => v.to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

impl GamepadEvent {
    /// `None` when `kind` is not `axis<N>` / `btn<N>`; otherwise the checked event.
    fn parse(kind: &str, value: &Value) -> Option<Result<Self, ProtocolError>> {
        let (is_axis, digits) = if let Some(d) = kind.strip_prefix("axis") {
            (true, d)
        } else {
            (false, kind.strip_prefix("btn")?)
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self::checked(is_axis, digits, value.get("value")))
    }

    fn checked(is_axis: bool, digits: &str, value: Option<&Value>) -> Result<Self, ProtocolError> {
        let index = digits
            .parse::<u32>()
            .ok()
            .filter(|i| *i <= MAX_GAMEPAD_INDEX)
            .ok_or(ProtocolError::OutOfRange {
                field: "gamepad index",
                value: digits.parse::<f64>().unwrap_or(f64::INFINITY),
                range: "0..=63",
            })?;
        if is_axis {
            let value = value.and_then(Value::as_f64).ok_or_else(|| {
                ProtocolError::malformed("gamepad axis event", "\"value\" must be a number")
            })?;
            let value = ProtocolError::check_range("axis value", value, -1.0, 1.0, "-1..=1")?;
            Ok(Self::Axis { index, value })
        } else {
            let pressed = value.and_then(Value::as_bool).ok_or_else(|| {
                ProtocolError::malformed("gamepad button event", "\"value\" must be true or false")
            })?;
            Ok(Self::Button { index, pressed })
        }
    }

    fn to_value(self) -> Value {
        match self {
            Self::Axis { index, value } => json!({"type": format!("axis{index}"), "value": value}),
            Self::Button { index, pressed } => {
                json!({"type": format!("btn{index}"), "value": pressed})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: Control) {
        let text = msg.to_text();
        assert_eq!(Control::parse(&text).unwrap(), msg, "via {text}");
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Control::Drive(DriveState::new(0.5, -1.0, 7).unwrap()));
        round_trip(Control::Key(KeyEvent {
            kind: KeyEventKind::KeyDown,
            key: "w".into(),
            key_code: 87,
            alt_key: false,
            shift_key: true,
            timestamp: Some(12.5),
        }));
        round_trip(Control::Gamepad(GamepadEvent::Axis {
            index: 1,
            value: -0.25,
        }));
        round_trip(Control::Gamepad(GamepadEvent::Button {
            index: 3,
            pressed: true,
        }));
        round_trip(Control::Ping(Ping { id: 9, t: 1234.5 }));
        round_trip(Control::Settings(crate::VideoSettings {
            width: Some(1280),
            height: Some(720),
            ..crate::VideoSettings::default()
        }));
        round_trip(Control::Json(json!({"hello": [1, 2, {"x": null}]})));
        round_trip(Control::Json(json!(42)));
        round_trip(Control::Text("plain words".into()));
    }

    #[test]
    fn reads_rtcbot_js_shapes() {
        let key = Control::parse(
            r#"{"type":"keyup","altKey":false,"shiftKey":false,"keyCode":38,"key":"ArrowUp","timestamp":99}"#,
        )
        .unwrap();
        assert!(matches!(
            key,
            Control::Key(KeyEvent {
                kind: KeyEventKind::KeyUp,
                key_code: 38,
                ..
            })
        ));
        assert_eq!(
            Control::parse(r#"{"type":"axis0","value":0.75}"#).unwrap(),
            Control::Gamepad(GamepadEvent::Axis {
                index: 0,
                value: 0.75
            })
        );
        assert_eq!(
            Control::parse(r#"{"type":"btn12","value":false}"#).unwrap(),
            Control::Gamepad(GamepadEvent::Button {
                index: 12,
                pressed: false
            })
        );
        // A drive state without seq is accepted: seq defaults to 0.
        assert_eq!(
            Control::parse(r#"{"type":"drive","forward":1,"turn":0}"#).unwrap(),
            Control::Drive(DriveState::new(1.0, 0.0, 0).unwrap())
        );
    }

    #[test]
    fn refuses_bad_messages_with_clear_errors() {
        let cases = [
            (
                r#"{"type":"drive","forward":1.5,"turn":0}"#,
                "forward = 1.5 is out of range",
            ),
            (
                r#"{"type":"drive","forward":0,"turn":-2}"#,
                "turn = -2 is out of range",
            ),
            (r#"{"type":"drive","forward":1e999,"turn":0}"#, "malformed"),
            (
                r#"{"type":"drive","forward":"fast","turn":0}"#,
                "malformed drive message",
            ),
            (r#"{"type":"drive","turn":0}"#, "missing field `forward`"),
            (
                r#"{"type":"axis0","value":3}"#,
                "axis value = 3 is out of range",
            ),
            (r#"{"type":"axis0","value":"x"}"#, "must be a number"),
            (r#"{"type":"btn1","value":1}"#, "must be true or false"),
            (r#"{"type":"axis99","value":0}"#, "gamepad index = 99"),
            (
                r#"{"type":"axis99999999999999","value":0}"#,
                "gamepad index",
            ),
            (
                r#"{"type":"teleport"}"#,
                "unknown message type \"teleport\"",
            ),
            (r#"{"type":7}"#, "must be a string"),
            (r#"{"type":"keydown"}"#, "missing field `key`"),
            (
                r#"{"type":"ping","id":1.5}"#,
                "malformed ping: the id must be an integer",
            ),
            (r#"{"type":"ping","id":"7"}"#, "malformed ping"),
            (r#"{"type":"ping","id":1e30}"#, "must be an integer"),
            (r#"{"type":"drive", forward: 1}"#, "malformed JSON message"),
            ("[1, 2", "malformed JSON message"),
        ];
        for (input, expected) in cases {
            let err = Control::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{input:?} gave {err:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn pings_take_any_integer_id_and_echo_it_exactly() {
        // RTCBot's clients number pings as they like: negative, zero, huge.
        for (text, id) in [
            (r#"{"type":"ping","id":-1,"t":5.5}"#, -1),
            (r#"{"type":"ping","id":0,"t":5.5}"#, 0),
            (
                r#"{"type":"ping","id":-9223372036854775808,"t":5.5}"#,
                i128::from(i64::MIN),
            ),
            (
                r#"{"type":"ping","id":18446744073709551615,"t":5.5}"#,
                i128::from(u64::MAX),
            ),
        ] {
            let ping = Control::parse(text).unwrap();
            assert_eq!(ping, Control::Ping(Ping { id, t: 5.5 }), "{text}");
            let sent: Value = serde_json::from_str(&ping.to_text()).unwrap();
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(sent, want, "{text} written back");
        }
        // An id no JSON message can carry is written clamped, never a panic.
        let text = Control::Ping(Ping {
            id: i128::MIN,
            t: 0.0,
        })
        .to_text();
        assert!(text.contains("-9223372036854775808"), "{text}");
    }

    #[test]
    fn refuses_oversize_messages_before_parsing() {
        let text = format!(r#"{{"blob":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(
            Control::parse(&text),
            Err(ProtocolError::TooLarge { .. })
        ));
        // Naming a negotiation does not make another message long enough.
        let sneaky = format!(
            r#"{{"note":"negotiate","blob":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(matches!(
            Control::parse(&sneaky),
            Err(ProtocolError::TooLarge { .. })
        ));
        let sneaky = format!(
            r#"{{"type":"ping","id":1,"x":"negotiate{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(matches!(
            Control::parse(&sneaky),
            Err(ProtocolError::TooLarge { .. })
        ));
        let text_blob = format!("\"negotiate\" {}", "x".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(
            Control::parse(&text_blob),
            Err(ProtocolError::TooLarge { .. })
        ));
        let long_key = format!(r#"{{"type":"keydown","key":"{}"}}"#, "k".repeat(100));
        assert!(Control::parse(&long_key).is_err());
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "",
            " ",
            "null",
            "\"str\"",
            "{}",
            "[]",
            "{\"type\":null}",
            "\u{0}",
            "axis0",
            "{\"type\":\"axis\"}",
            "{\"type\":\"btn-1\",\"value\":true}",
        ] {
            let _ = Control::parse(input);
        }
        assert!(matches!(
            Control::parse("{\"type\":\"axis\"}"),
            Err(ProtocolError::UnknownType(_))
        ));
    }

    /// Each message type against JSON written by hand, both ways: parsing the text
    /// gives the message, and the message serialises to the same JSON value.
    #[test]
    fn every_message_matches_hand_written_json() {
        let cases = [
            (
                r#"{"type":"drive","forward":0.5,"turn":-1.0,"seq":7}"#,
                Control::Drive(DriveState {
                    forward: 0.5,
                    turn: -1.0,
                    seq: 7,
                }),
            ),
            (
                r#"{"type":"keydown","key":"w","keyCode":87,"altKey":false,"shiftKey":true,"timestamp":12.5}"#,
                Control::Key(KeyEvent {
                    kind: KeyEventKind::KeyDown,
                    key: "w".into(),
                    key_code: 87,
                    alt_key: false,
                    shift_key: true,
                    timestamp: Some(12.5),
                }),
            ),
            (
                r#"{"type":"keyup","key":"ArrowUp","keyCode":38,"altKey":true,"shiftKey":false}"#,
                Control::Key(KeyEvent {
                    kind: KeyEventKind::KeyUp,
                    key: "ArrowUp".into(),
                    key_code: 38,
                    alt_key: true,
                    shift_key: false,
                    timestamp: None,
                }),
            ),
            (
                r#"{"type":"axis1","value":-0.25}"#,
                Control::Gamepad(GamepadEvent::Axis {
                    index: 1,
                    value: -0.25,
                }),
            ),
            (
                r#"{"type":"btn3","value":true}"#,
                Control::Gamepad(GamepadEvent::Button {
                    index: 3,
                    pressed: true,
                }),
            ),
            (
                r#"{"type":"ping","id":9,"t":1234.5}"#,
                Control::Ping(Ping { id: 9, t: 1234.5 }),
            ),
            (
                r#"{"hello":[1,2,{"x":null}]}"#,
                Control::Json(json!({"hello": [1, 2, {"x": null}]})),
            ),
        ];
        for (text, msg) in cases {
            assert_eq!(Control::parse(text).unwrap(), msg, "parsing {text}");
            let sent: Value = serde_json::from_str(&msg.to_text()).unwrap();
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(sent, want, "{msg:?} serialised");
        }
        // Plain text is sent and read as it is.
        assert_eq!(
            Control::parse("plain words").unwrap(),
            Control::Text("plain words".into())
        );
        assert_eq!(Control::Text("plain words".into()).to_text(), "plain words");
    }

    #[test]
    fn a_renegotiation_offer_may_be_longer_than_a_message() {
        let sdp = format!(
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=x:{}\r\n",
            "y".repeat(20_000)
        );
        let offer = crate::SessionDescription::offer(sdp);
        let text = Control::Negotiate(offer.clone()).to_text();
        assert!(text.len() > MAX_MESSAGE_BYTES);
        assert_eq!(Control::parse(&text).unwrap(), Control::Negotiate(offer));
        // Any other message of that length is still refused.
        let long = format!(
            r#"{{"type":"drive","forward":0,"turn":0,"pad":"{}"}}"#,
            "y".repeat(20_000)
        );
        assert!(matches!(
            Control::parse(&long),
            Err(ProtocolError::TooLarge { .. })
        ));
        let bad = [
            r#"{"type":"negotiate"}"#,
            r#"{"type":"negotiate","description":{"type":"offer","sdp":""}}"#,
            r#"{"type":"negotiate","description":{"type":"rollback","sdp":"v=0"}}"#,
            r#"{"type":"negotiate","description":{"type":"offer","sdp":"v=0\r\n"}}"#,
        ];
        for text in bad {
            let err = Control::parse(text).unwrap_err().to_string();
            assert!(!err.is_empty(), "{text} refused");
        }
    }
}

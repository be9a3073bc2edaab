//! Messages from the robot to its peers.
//!
//! Typed messages carry a `type` of `pong`, `stats`, `status` or `error`; anything
//! else the robot's code sends (any JSON value or plain text) passes through as
//! [`Telemetry::Json`] / [`Telemetry::Text`], like RTCBot's `put_nowait`.

use crate::error::{check_len, ProtocolError};
use crate::MAX_MESSAGE_BYTES;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message from the robot.
#[derive(Debug, Clone, PartialEq)]
pub enum Telemetry {
    /// The answer to a [`crate::Ping`].
    Pong(Pong),
    /// Video stream and connection figures.
    Stats(StreamStats),
    /// Who drives and what the motors do.
    Status(RobotStatus),
    /// The video settings now in force, after an admin changed them.
    Settings(crate::VideoSettings),
    /// The robot's answer to a renegotiation offer (or its own offer), on the data
    /// channel (see [`crate::SessionDescription::to_message`]).
    Negotiate(crate::SessionDescription),
    /// The robot refused something this peer sent.
    Error {
        /// What was wrong, for a person.
        message: String,
    },
    /// Any other JSON the robot's code sends.
    Json(Value),
    /// Plain text the robot's code sends.
    Text(String),
}

/// The answer to a ping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's `id`, exactly as it came (see [`crate::control::ping_id`]).
    #[serde(with = "crate::control::ping_id")]
    pub id: i128,
    /// The ping's `t`, untouched: the sender subtracts it from its clock for the RTT.
    pub t: f64,
    /// The robot's clock when it answered, microseconds since the Unix epoch.
    pub robot_us: u64,
}

/// Figures about the robot's video stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamStats {
    /// Peers currently receiving video.
    pub viewers: u32,
    /// Frames the encoder produced since start.
    pub frames_encoded: u64,
    /// Encoded frames per second over the last few seconds (5).
    pub fps: f64,
    /// Frames the encoder dropped on its own since start (0 with openh264 at the
    /// robot's settings; absent from robots before it, read as 0).
    #[serde(default)]
    pub frames_skipped: u64,
    /// The longest time between two encoded frames over the last few seconds (5), in
    /// milliseconds: a held picture shows here, not in `fps`.
    #[serde(default)]
    pub max_gap_ms: f64,
    /// Encoded bitrate over the last interval, kbit/s.
    pub bitrate_kbps: f64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Which source and encoder produce the stream.
    pub encoder: String,
    /// The bitrate congestion control asks of the encoder, kbit/s (absent without
    /// congestion control, or before its first estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_kbps: Option<u32>,
    /// What the path to the peer receiving this message carries, kbit/s, by the
    /// robot's estimate from its feedback (absent when it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_kbps: Option<u32>,
    /// Video packets the receiving peer reported lost, since it connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_lost: Option<u64>,
    /// Retransmission requests (NACKs) the receiving peer sent, since it connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nacks: Option<u64>,
    /// The video round trip to the receiving peer (RTCP), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The highest temporal layer the receiving peer gets: 1, every frame; 0, the base
    /// layer only (half the frame rate), because its link carries clearly less than
    /// the encoder's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u8>,
    /// The robot's publication to an SFU (Janus), when it has one configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfu: Option<SfuStats>,
}

/// What the robot's SFU publisher is doing (`[sfu]` in its config), and where a page
/// may watch through the SFU instead of taking video from the robot.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SfuStats {
    /// `connecting`, `publishing`, `retrying`, or `conflict` (another publisher
    /// holds the robot's id in the room: two robots configured alike).
    pub state: String,
    /// Times it published since it started.
    pub publishes: u64,
    /// Why the last try failed or the last publication ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where pages watch, while the robot publishes and its config offers it: pages
    /// then take video and sound from the SFU and keep only their data channels to
    /// the robot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<SfuWatch>,
}

/// A Janus VideoRoom feed to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfuWatch {
    /// Janus's HTTP API as pages reach it, e.g. `https://sfu.example.org/janus`.
    pub url: String,
    /// The VideoRoom room.
    pub room: u64,
    /// The robot's feed (its publisher id) in the room.
    pub feed: u64,
    /// The room's PIN, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// What the motors are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MotorState {
    /// Stopped (no driver, silence, or a zero drive state).
    Stopped,
    /// Following a driver's non-zero drive state.
    Running,
}

/// Who drives the robot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotStatus {
    /// Some peer holds the drive.
    pub driver: bool,
    /// The peer receiving this message holds the drive.
    #[serde(default)]
    pub you_drive: bool,
    /// Motor state.
    pub motors: MotorState,
    /// Why the state changed, for a person (`"control went silent"`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Typed {
    Pong(Pong),
    Stats(Box<StreamStats>),
    Status(RobotStatus),
    Error { message: String },
}

impl Telemetry {
    /// Parses one message received from a robot.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        // Only a session description may be longer than a message.
        if !text.contains(r#""negotiate""#) {
            check_len(text, MAX_MESSAGE_BYTES)?;
        }
        check_len(text, crate::signaling::MAX_DESCRIPTION_BYTES)?;
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            check_len(text, MAX_MESSAGE_BYTES)?;
            return Ok(Self::Text(text.to_owned()));
        };
        let kind = value.get("type").and_then(Value::as_str);
        if kind != Some(crate::signaling::NEGOTIATE_TYPE) {
            check_len(text, MAX_MESSAGE_BYTES)?;
        }
        match kind {
            Some(crate::signaling::NEGOTIATE_TYPE) => {
                crate::SessionDescription::from_message(value).map(Self::Negotiate)
            }
            Some("pong" | "stats" | "status" | "error") => {
                let typed: Typed = serde_json::from_value(value)
                    .map_err(|e| ProtocolError::malformed("telemetry", e))?;
                Ok(match typed {
                    Typed::Pong(p) => Self::Pong(p),
                    Typed::Stats(s) => Self::Stats(*s),
                    Typed::Status(s) => Self::Status(s),
                    Typed::Error { message } => Self::Error { message },
                })
            }
            Some("settings") => crate::VideoSettings::from_message(value).map(Self::Settings),
            _ => Ok(Self::Json(value)),
        }
    }

    /// The text sent on the wire.
    pub fn to_text(&self) -> String {
        let typed = match self {
            Self::Pong(p) => Typed::Pong(*p),
            Self::Stats(s) => Typed::Stats(Box::new(s.clone())),
            Self::Status(s) => Typed::Status(s.clone()),
            Self::Error { message } => Typed::Error {
                message: message.clone(),
            },
            Self::Settings(s) => return s.to_message().to_string(),
            Self::Negotiate(d) => return d.to_message().to_string(),
            Self::Json(v) => return v.to_string(),
            Self::Text(t) => return t.clone(),
        };
        serde_json::to_string(&typed).expect("telemetry serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            Telemetry::Pong(Pong {
                id: 3,
                t: 17.25,
                robot_us: 1_700_000_000_000_000,
            }),
            Telemetry::Stats(StreamStats {
                viewers: 2,
                frames_encoded: 900,
                fps: 30.0,
                frames_skipped: 2,
                max_gap_ms: 66.5,
                bitrate_kbps: 812.5,
                width: 640,
                height: 480,
                encoder: "test-pattern/openh264".into(),
                target_kbps: Some(780),
                link_kbps: Some(812),
                packets_lost: Some(3),
                nacks: Some(2),
                rtt_ms: Some(1.5),
                layer: Some(0),
                sfu: Some(SfuStats {
                    state: "publishing".into(),
                    publishes: 2,
                    error: None,
                    watch: Some(SfuWatch {
                        url: "https://sfu.example.org/janus".into(),
                        room: 1234,
                        feed: 1,
                        pin: None,
                    }),
                }),
            }),
            Telemetry::Status(RobotStatus {
                driver: true,
                you_drive: false,
                motors: MotorState::Running,
                reason: None,
            }),
            Telemetry::Error {
                message: "nope".into(),
            },
            Telemetry::Settings(crate::VideoSettings {
                width: Some(320),
                height: Some(240),
                fps: Some(15),
                bitrate_kbps: Some(500),
                camera: Some("test-pattern".into()),
                cameras: None,
            }),
            Telemetry::Json(json!({"battery": 11.9})),
            Telemetry::Text("hello".into()),
        ];
        for msg in msgs {
            let text = msg.to_text();
            assert_eq!(Telemetry::parse(&text).unwrap(), msg, "via {text}");
        }
    }

    #[test]
    fn wire_shapes_are_stable() {
        let text = Telemetry::Pong(Pong {
            id: 1,
            t: 2.5,
            robot_us: 3,
        })
        .to_text();
        assert_eq!(text, r#"{"type":"pong","id":1,"t":2.5,"robot_us":3}"#);
        let text = Telemetry::Error {
            message: "m".into(),
        }
        .to_text();
        assert_eq!(text, r#"{"type":"error","message":"m"}"#);
    }

    #[test]
    fn refuses_a_typed_message_with_the_wrong_shape() {
        let err = Telemetry::parse(r#"{"type":"pong","id":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("malformed telemetry"), "{err}");
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(
            Telemetry::parse(&big),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    /// Each message type against JSON written by hand, both ways.
    #[test]
    fn every_message_matches_hand_written_json() {
        let cases = [
            (
                r#"{"type":"pong","id":3,"t":17.25,"robot_us":1700000000000000}"#,
                Telemetry::Pong(Pong {
                    id: 3,
                    t: 17.25,
                    robot_us: 1_700_000_000_000_000,
                }),
            ),
            (
                r#"{"type":"stats","viewers":2,"frames_encoded":900,"fps":30.0,"frames_skipped":0,"max_gap_ms":0.0,"bitrate_kbps":812.5,"width":640,"height":480,"encoder":"test-pattern/openh264"}"#,
                Telemetry::Stats(StreamStats {
                    viewers: 2,
                    frames_encoded: 900,
                    fps: 30.0,
                    frames_skipped: 0,
                    max_gap_ms: 0.0,
                    bitrate_kbps: 812.5,
                    width: 640,
                    height: 480,
                    encoder: "test-pattern/openh264".into(),
                    ..StreamStats::default()
                }),
            ),
            (
                r#"{"type":"status","driver":true,"you_drive":false,"motors":"running"}"#,
                Telemetry::Status(RobotStatus {
                    driver: true,
                    you_drive: false,
                    motors: MotorState::Running,
                    reason: None,
                }),
            ),
            (
                r#"{"type":"status","driver":false,"you_drive":false,"motors":"stopped","reason":"control went silent"}"#,
                Telemetry::Status(RobotStatus {
                    driver: false,
                    you_drive: false,
                    motors: MotorState::Stopped,
                    reason: Some("control went silent".into()),
                }),
            ),
            (
                r#"{"type":"error","message":"nope"}"#,
                Telemetry::Error {
                    message: "nope".into(),
                },
            ),
            (
                r#"{"type":"serial","state":"connected"}"#,
                Telemetry::Json(json!({"type": "serial", "state": "connected"})),
            ),
        ];
        for (text, msg) in cases {
            assert_eq!(Telemetry::parse(text).unwrap(), msg, "parsing {text}");
            let sent: Value = serde_json::from_str(&msg.to_text()).unwrap();
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(sent, want, "{msg:?} serialised");
        }
        // A robot from before `frames_skipped` and `max_gap_ms` reads as zeros.
        let old = r#"{"type":"stats","viewers":1,"frames_encoded":9,"fps":30.0,"bitrate_kbps":1.0,"width":640,"height":480,"encoder":"e"}"#;
        match Telemetry::parse(old).unwrap() {
            Telemetry::Stats(s) => assert_eq!((s.frames_skipped, s.max_gap_ms), (0, 0.0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Telemetry::parse("hello").unwrap(),
            Telemetry::Text("hello".into())
        );
        assert_eq!(Telemetry::Text("hello".into()).to_text(), "hello");
    }
}

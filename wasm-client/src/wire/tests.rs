//! wire.rs held to shared-protocol's serde serialisation, natively.
//!
//! Writing: every text wire.rs writes (offers, drive states, pings, and the status and
//! stats fields the app publishes) is compared with shared-protocol's text for the same
//! message as parsed JSON trees that keep the field order and read every number as an
//! f64. So the two must be the same JSON, field by field and in the same order; the
//! one thing allowed to differ is how an integral number is spelt (`1` as JavaScript
//! writes it, `1.0` as serde_json does), which is the same JSON number. The exact text
//! is pinned too for a few messages, and the robot's parser must read each text back
//! to the message it came from.
//!
//! Reading: wire.rs must read what shared-protocol writes (pong, stats, status, error,
//! other JSON, text, session descriptions) into the same values, and refuse what
//! shared-protocol refuses.

use super::*;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use shared_protocol::{Control, Telemetry, VideoSettings};
use std::fmt;

/// A JSON value with object fields in text order and numbers as f64.
#[derive(Debug, PartialEq)]
enum Tree {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Tree>),
    Obj(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
        Ok(Tree::Num(n as f64))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Num(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Tree, E> {
        Ok(Tree::Num(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
        Ok(Tree::Str(s.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut fields = Vec::new();
        while let Some(field) = map.next_entry::<String, Tree>()? {
            fields.push(field);
        }
        Ok(Tree::Obj(fields))
    }
}

fn tree(text: &str) -> Tree {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

#[track_caller]
fn assert_same_json(ours: &str, theirs: &str) {
    assert_eq!(
        tree(ours),
        tree(theirs),
        "\n          wire.rs wrote {ours}\nshared-protocol writes {theirs}"
    );
}

const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                   a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
                   a=ice-ufrag:\"q\\u\"\r\na=candidate:1 1 udp 2122260223 192.168.1.5 \
                   54321 typ host générat\u{1}ion 0\r\n";

fn drive_states() -> Vec<DriveState> {
    let axes = [0.0, 1.0, -1.0, 0.5, -0.25, 0.001, -0.333, 0.707, 0.1 + 0.2];
    let seqs = [0, 1, 7, 1 << 32, (1 << 53) - 1];
    let mut states = Vec::new();
    for (i, forward) in axes.iter().enumerate() {
        for (j, turn) in axes.iter().enumerate() {
            let seq = seqs[(i + j) % seqs.len()];
            states.push(DriveState::new(*forward, *turn, seq).unwrap());
        }
    }
    states
}

#[test]
fn drive_states_are_written_as_shared_protocol_writes_them() {
    for state in drive_states() {
        let ours = drive(&state);
        assert_same_json(&ours, &Control::Drive(state).to_text());
        assert_eq!(Control::parse(&ours), Ok(Control::Drive(state)), "{ours}");
    }
    let state = DriveState::new(1.0, -0.5, 7).unwrap();
    assert_eq!(
        drive(&state),
        r#"{"forward":1,"seq":7,"turn":-0.5,"type":"drive"}"#
    );
}

#[test]
fn pings_are_written_as_shared_protocol_writes_them() {
    let times = [0.0, 1.0, 1234.567, 86_400_000.125, 1e-7, 3.0e21];
    for (id, t) in [
        0,
        1,
        42,
        i128::from(u32::MAX),
        (1 << 53) - 1,
        -1,
        -(1 << 53) + 1,
    ]
    .into_iter()
    .zip(times.iter().cycle())
    {
        let ping_msg = Ping { id, t: *t };
        let ours = ping(&ping_msg);
        assert_same_json(&ours, &Control::Ping(ping_msg).to_text());
        assert_eq!(Control::parse(&ours), Ok(Control::Ping(ping_msg)), "{ours}");
    }
    assert_eq!(
        ping(&Ping { id: 3, t: 1234.5 }),
        r#"{"id":3,"t":1234.5,"type":"ping"}"#
    );
}

#[test]
fn offers_are_written_exactly_as_shared_protocol_writes_them() {
    for sdp in [SDP, "v=0\r\n", ""] {
        let ours = offer(sdp);
        let theirs = SessionDescription::offer(sdp).to_json();
        // No numbers: the texts themselves must be equal, escapes included.
        assert_eq!(ours, theirs);
    }
    assert_eq!(
        SessionDescription::from_json(&offer(SDP)),
        Ok(SessionDescription::offer(SDP))
    );
}

fn statuses() -> Vec<RobotStatus> {
    vec![
        RobotStatus {
            driver: false,
            you_drive: false,
            motors: MotorState::Stopped,
            reason: None,
        },
        RobotStatus {
            driver: true,
            you_drive: true,
            motors: MotorState::Running,
            reason: None,
        },
        RobotStatus {
            driver: true,
            you_drive: false,
            motors: MotorState::Stopped,
            reason: Some("control went \"silent\"\nfor 500 ms".into()),
        },
    ]
}

fn stats() -> Vec<StreamStats> {
    vec![
        StreamStats::default(),
        StreamStats {
            viewers: 2,
            frames_encoded: 90_000,
            fps: 30.0,
            frames_skipped: 3,
            max_gap_ms: 66.7,
            bitrate_kbps: 812.5,
            width: 640,
            height: 480,
            encoder: "test-pattern/openh264".into(),
            ..StreamStats::default()
        },
        StreamStats {
            viewers: u32::MAX,
            frames_encoded: (1 << 53) - 1,
            fps: 29.97,
            frames_skipped: (1 << 53) - 1,
            max_gap_ms: 0.1 + 0.2,
            bitrate_kbps: 0.1 + 0.2,
            width: 1920,
            height: 1080,
            encoder: "v4l2 \u{e9}\u{1f}".into(),
            target_kbps: Some(780),
            link_kbps: Some(u32::MAX),
            packets_lost: Some((1 << 53) - 1),
            nacks: Some(0),
            rtt_ms: Some(0.1 + 0.2),
            layer: Some(1),
            sfu: None,
        },
    ]
}

/// Stats with the SFU publisher's state (read, not published flat).
fn sfu_stats() -> Vec<StreamStats> {
    let watch = shared_protocol::SfuWatch {
        url: "https://sfu.example.org/janus".into(),
        room: 1234,
        feed: (1 << 53) - 1,
        pin: Some("p\"1".into()),
    };
    let sfu = |state: &str, error: Option<&str>, watch: Option<shared_protocol::SfuWatch>| {
        Some(shared_protocol::SfuStats {
            state: state.into(),
            publishes: 3,
            error: error.map(Into::into),
            watch,
        })
    };
    vec![
        StreamStats {
            sfu: sfu("publishing", None, Some(watch.clone())),
            ..stats()[1].clone()
        },
        StreamStats {
            sfu: sfu("retrying", Some("cannot reach Janus"), None),
            ..stats()[1].clone()
        },
        StreamStats {
            sfu: sfu(
                "publishing",
                None,
                Some(shared_protocol::SfuWatch { pin: None, ..watch }),
            ),
            ..StreamStats::default()
        },
    ]
}

#[test]
fn published_status_and_stats_have_shared_protocols_fields() {
    for status in statuses() {
        let ours = json::object(&status_fields(&status));
        assert_same_json(&ours, &Telemetry::Status(status.clone()).to_text());
    }
    for stats in stats() {
        let ours = json::object(&stats_fields(&stats));
        assert_same_json(&ours, &Telemetry::Stats(stats.clone()).to_text());
    }
}

#[test]
fn reads_the_telemetry_shared_protocol_writes() {
    let mut cases = vec![
        (
            Telemetry::Pong(Pong {
                id: 3,
                t: 17.25,
                robot_us: 1_700_000_000_123_456,
            }),
            RobotMessage::Pong(Pong {
                id: 3,
                t: 17.25,
                robot_us: 1_700_000_000_123_456,
            }),
        ),
        (
            Telemetry::Pong(Pong {
                id: 0,
                t: 0.0,
                robot_us: 0,
            }),
            RobotMessage::Pong(Pong {
                id: 0,
                t: 0.0,
                robot_us: 0,
            }),
        ),
        (
            Telemetry::Pong(Pong {
                id: -7,
                t: 1.5,
                robot_us: 2,
            }),
            RobotMessage::Pong(Pong {
                id: -7,
                t: 1.5,
                robot_us: 2,
            }),
        ),
        (
            Telemetry::Error {
                message: "drive refused: \"forward\" = 2 is out of range".into(),
            },
            RobotMessage::Error("drive refused: \"forward\" = 2 is out of range".into()),
        ),
        (
            Telemetry::Text("plain words".into()),
            RobotMessage::Other("plain words".into()),
        ),
        (
            Telemetry::Settings(announced()),
            RobotMessage::Settings(announced()),
        ),
    ];
    for status in statuses() {
        cases.push((
            Telemetry::Status(status.clone()),
            RobotMessage::Status(status),
        ));
    }
    for stats in stats().into_iter().chain(sfu_stats()) {
        cases.push((Telemetry::Stats(stats.clone()), RobotMessage::Stats(stats)));
    }
    for (sent, expected) in cases {
        let text = sent.to_text();
        assert_eq!(RobotMessage::parse(&text), Ok(expected), "{text}");
    }
    // Any other JSON passes through, written compactly.
    let other = Telemetry::parse(r#"{ "battery" : 11.9, "cells": [3.9, 4] }"#).unwrap();
    assert_eq!(
        RobotMessage::parse(&other.to_text()),
        Ok(RobotMessage::Other(
            r#"{"battery":11.9,"cells":[3.9,4]}"#.into()
        ))
    );
}

#[test]
fn refuses_the_telemetry_shared_protocol_refuses() {
    let oversize = format!(
        r#"{{"type":"error","message":"{}"}}"#,
        "x".repeat(16 * 1024)
    );
    let refused = [
        r#"{"type":"pong","id":"x","t":0,"robot_us":0}"#,
        r#"{"type":"pong","id":1,"t":2}"#,
        r#"{"type":"pong","id":1.5,"t":0,"robot_us":0}"#,
        r#"{"type":"pong","id":1,"t":"now","robot_us":0}"#,
        r#"{"type":"stats","viewers":1,"frames_encoded":1,"fps":1,"bitrate_kbps":1,"width":1,"height":1}"#,
        r#"{"type":"stats","viewers":4294967296,"frames_encoded":1,"fps":1,"bitrate_kbps":1,"width":1,"height":1,"encoder":"e"}"#,
        r#"{"type":"stats","viewers":1,"frames_encoded":1,"fps":1,"bitrate_kbps":1,"width":1,"height":1,"encoder":"e","sfu":{"state":"publishing"}}"#,
        r#"{"type":"stats","viewers":1,"frames_encoded":1,"fps":1,"bitrate_kbps":1,"width":1,"height":1,"encoder":"e","sfu":{"state":"publishing","publishes":1,"watch":{"url":"u","room":1}}}"#,
        r#"{"type":"status","driver":true,"motors":"flying"}"#,
        r#"{"type":"status","motors":"running"}"#,
        r#"{"type":"settings","cameras":"auto"}"#,
        r#"{"type":"settings","cameras":[1]}"#,
        r#"{"type":"status","driver":"yes","motors":"running"}"#,
        r#"{"type":"status","driver":true,"you_drive":1,"motors":"running"}"#,
        r#"{"type":"status","driver":true,"motors":"running","reason":5}"#,
        r#"{"type":"error"}"#,
        r#"{"type":"error","message":5}"#,
        &oversize,
    ];
    for text in refused {
        assert!(
            Telemetry::parse(text).is_err(),
            "shared-protocol reads {text}"
        );
        assert!(RobotMessage::parse(text).is_err(), "wire.rs reads {text}");
    }
}

#[test]
fn reads_the_descriptions_shared_protocol_writes_and_refuses_what_it_refuses() {
    for description in [
        SessionDescription::answer(SDP),
        SessionDescription::offer(SDP),
    ] {
        assert_eq!(
            super::description(&description.to_json()),
            Ok(description.clone())
        );
    }
    let oversize = SessionDescription::answer(format!("{SDP}{}", "a".repeat(64 * 1024))).to_json();
    for text in [
        "not json",
        "[]",
        r#""v=0""#,
        r#"{"type":"answer"}"#,
        r#"{"sdp":"v=0\r\nm=video 9\r\n"}"#,
        r#"{"type":"rollback","sdp":"v=0\r\nm=video 9\r\n"}"#,
        r#"{"type":"answer","sdp":""}"#,
        r#"{"type":"answer","sdp":"hello"}"#,
        r#"{"type":"answer","sdp":"v=0\r\ns=-\r\n"}"#,
        r#"{"type":"answer","sdp":7}"#,
        &oversize,
    ] {
        assert!(
            SessionDescription::from_json(text).is_err(),
            "shared-protocol reads {text}"
        );
        assert!(super::description(text).is_err(), "wire.rs reads {text}");
    }
}

#[test]
fn a_settings_request_is_shared_protocols_text() {
    let requests = [
        VideoSettings::default(),
        VideoSettings {
            width: Some(1280),
            height: Some(720),
            ..VideoSettings::default()
        },
        VideoSettings {
            width: Some(320),
            height: Some(240),
            fps: Some(15),
            bitrate_kbps: Some(400),
            camera: Some("/dev/video0".into()),
            cameras: None,
        },
    ];
    for request in requests {
        let ours = settings(&request);
        assert_eq!(
            ours,
            shared_protocol::Control::Settings(request.clone()).to_text()
        );
        assert_eq!(
            shared_protocol::Control::parse(&ours).unwrap(),
            shared_protocol::Control::Settings(request)
        );
    }
}

#[test]
fn a_robot_object_reads_as_named_values() {
    // In the browser the fields come in the robot's order; serde_json sorts them.
    let mut values =
        named_values(r#"{"battery":11.9,"state":"docked","bumper":false,"cells":[3.9,4]}"#)
            .unwrap();
    values.sort();
    assert_eq!(
        values,
        vec![
            ("battery".to_owned(), "11.9".to_owned()),
            ("bumper".into(), "false".into()),
            ("cells".into(), "[3.9,4]".into()),
            ("state".into(), "docked".into()),
        ]
    );
    assert_eq!(named_values(r#"{"type":"custom","x":1}"#), None);
    // An Arduino's struct and the serial link's state, from the robot's reporter.
    let mut arduino =
        named_values(r#"{"type":"serial","message":{"bumper":1,"battery_mv":11822}}"#).unwrap();
    arduino.sort();
    assert_eq!(
        arduino,
        vec![
            ("battery_mv".to_owned(), "11822".to_owned()),
            ("bumper".into(), "1".into())
        ]
    );
    assert_eq!(
        named_values(r#"{"type":"serial","state":"connected"}"#),
        Some(vec![("serial".into(), "connected".into())])
    );
    assert_eq!(
        named_values(r#"{"type":"serial","error":"skipped 3 bytes"}"#),
        None
    );
    assert_eq!(named_values("[1,2]"), None);
    assert_eq!(named_values("{}"), None);
    assert_eq!(named_values("plain words"), None);
}

/// Settings as the robot announces them, every field set.
fn announced() -> VideoSettings {
    VideoSettings {
        width: Some(320),
        height: Some(240),
        fps: Some(30),
        bitrate_kbps: Some(1000),
        camera: Some("test-pattern".into()),
        cameras: Some(vec!["auto".into(), "/dev/video0".into()]),
    }
}

#[test]
fn renegotiation_messages_are_shared_protocols_both_ways() {
    for (kind, description) in [
        (SdpType::Offer, SessionDescription::offer(SDP)),
        (SdpType::Answer, SessionDescription::answer(SDP)),
    ] {
        let ours = super::negotiate(kind, SDP);
        assert_eq!(
            ours,
            format!(
                r#"{{"type":"negotiate","description":{{"type":"{}","sdp":{}}}}}"#,
                if kind == SdpType::Offer {
                    "offer"
                } else {
                    "answer"
                },
                serde_json::to_string(SDP).unwrap()
            )
        );
        assert_eq!(
            Control::parse(&ours).unwrap(),
            Control::Negotiate(description.clone()),
            "the robot reads {ours}"
        );
        let theirs = Telemetry::Negotiate(description.clone()).to_text();
        assert_eq!(
            RobotMessage::parse(&theirs),
            Ok(RobotMessage::Negotiate(description))
        );
    }
}

#[test]
fn a_renegotiation_may_be_longer_than_a_message_and_is_checked() {
    let long_sdp = format!("{SDP}{}", "a=x\r\n".repeat(4000));
    let long = Telemetry::Negotiate(SessionDescription::answer(long_sdp.clone())).to_text();
    assert!(long.len() > MAX_MESSAGE_BYTES);
    assert_eq!(
        RobotMessage::parse(&long),
        Ok(RobotMessage::Negotiate(SessionDescription::answer(
            long_sdp
        )))
    );
    let long_other = format!(
        r#"{{"type":"error","message":"{}"}}"#,
        "negotiate ".repeat(2000)
    );
    assert!(
        RobotMessage::parse(&long_other).is_err(),
        "only negotiate may be long"
    );
    for text in [
        r#"{"type":"negotiate"}"#,
        r#"{"type":"negotiate","description":{"type":"offer","sdp":""}}"#,
        r#"{"type":"negotiate","description":{"type":"rollback","sdp":"v=0\r\nm=video 9\r\n"}}"#,
        r#"{"type":"negotiate","description":"v=0"}"#,
    ] {
        assert!(
            Telemetry::parse(text).is_err(),
            "shared-protocol reads {text}"
        );
        assert!(RobotMessage::parse(text).is_err(), "wire.rs reads {text}");
    }
}

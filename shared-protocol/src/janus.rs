//! Janus's HTTP API (its VideoRoom plugin), as messages: the requests a publisher
//! (the robot) and a subscriber (the robot's Rust viewer, the browser app watching
//! through the SFU) send, and what Janus's replies and events mean. Pure: the robot's
//! `sfu::api` and the app's `sfu` module do the I/O over these.
//!
//! The flow (VideoRoom plugin): `create` a session, `attach` a handle to
//! `janus.plugin.videoroom`, send a `message` whose body is a VideoRoom request (with
//! a `jsep` offer or answer), and read the asynchronous answer from the session's
//! long poll (`GET /janus/<session>?maxev=1`), matched by its `transaction`.

use serde_json::{json, Value};
use std::fmt;

/// The VideoRoom plugin's package name.
pub const VIDEOROOM: &str = "janus.plugin.videoroom";

/// VideoRoom: no such room.
pub const NO_SUCH_ROOM: i64 = 426;
/// VideoRoom: no such feed (a subscriber asked for a publisher that is not there).
pub const NO_SUCH_FEED: i64 = 428;
/// VideoRoom: the room has as many publishers as it takes.
pub const PUBLISHERS_FULL: i64 = 432;
/// VideoRoom: a wrong secret or PIN.
pub const UNAUTHORIZED: i64 = 433;
/// VideoRoom: a participant with that id is in the room already.
pub const ID_EXISTS: i64 = 436;
/// Janus core: the session is gone (timed out, or Janus restarted).
pub const NO_SUCH_SESSION: i64 = 458;
/// Janus core: the handle is gone.
pub const NO_SUCH_HANDLE: i64 = 459;

/// An error Janus (its core or the plugin) returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JanusError {
    /// Janus's code (`error.code`, or the plugin's `error_code`).
    pub code: i64,
    /// Janus's own words.
    pub reason: String,
}

impl JanusError {
    /// A slot of ours is taken: the robot's id is still in the room (a session from
    /// before a restart), or the room is full.
    pub fn slot_taken(&self) -> bool {
        matches!(self.code, ID_EXISTS | PUBLISHERS_FULL)
    }

    /// The session or handle is gone: start over with a new session.
    pub fn session_gone(&self) -> bool {
        matches!(self.code, NO_SUCH_SESSION | NO_SUCH_HANDLE)
    }
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.code {
            NO_SUCH_ROOM => "the room does not exist (create it in Janus's videoroom config)",
            UNAUTHORIZED => "wrong secret or PIN for the room ([sfu] secret, pin)",
            ID_EXISTS => "the robot's publisher id is already in the room",
            PUBLISHERS_FULL => "the room has as many publishers as it takes",
            NO_SUCH_FEED => "no such publisher in the room",
            NO_SUCH_SESSION => "Janus no longer knows the session (restarted or timed out)",
            NO_SUCH_HANDLE => "Janus no longer knows the handle",
            403 => "Janus refused the request (its API secret or token)",
            _ => "Janus refused the request",
        };
        write!(f, "{what}: Janus error {} \"{}\"", self.code, self.reason)
    }
}

/// What a reply or event says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `success` with `data.id`: a new session or handle.
    Created(u64),
    /// `ack`: the request is being handled; its answer comes as an event.
    Ack,
    /// `success` with a plugin's synchronous answer (`plugindata.data`).
    Success(Value),
    /// `event` from the plugin: its `data`, and a `jsep` offer or answer.
    Event {
        /// `plugindata.data`.
        data: Value,
        /// `jsep.type` and `jsep.sdp`, when there is one.
        jsep: Option<(String, String)>,
    },
    /// The PeerConnection went away (`hangup`) or the handle was detached.
    Hangup(String),
    /// `keepalive`, `webrtcup`, `media`, `slowlink`...: nothing to do.
    Notice(String),
}

/// Reads one reply or event; a core `error` or a plugin `error_code` is an error.
pub fn parse(reply: &Value) -> Result<Reply, JanusError> {
    let kind = reply["janus"].as_str().unwrap_or("");
    let plugin = &reply["plugindata"]["data"];
    if let Some(code) = plugin["error_code"].as_i64() {
        return Err(JanusError {
            code,
            reason: plugin["error"].as_str().unwrap_or("").to_owned(),
        });
    }
    match kind {
        "error" => Err(JanusError {
            code: reply["error"]["code"].as_i64().unwrap_or(0),
            reason: reply["error"]["reason"].as_str().unwrap_or("").to_owned(),
        }),
        "success" if plugin.is_object() => Ok(Reply::Success(plugin.clone())),
        "success" => match reply["data"]["id"].as_u64() {
            Some(id) => Ok(Reply::Created(id)),
            None => Ok(Reply::Success(Value::Null)),
        },
        "ack" => Ok(Reply::Ack),
        "event" => Ok(Reply::Event {
            data: plugin.clone(),
            jsep: jsep(reply),
        }),
        "hangup" | "detached" => Ok(Reply::Hangup(
            reply["reason"].as_str().unwrap_or(kind).to_owned(),
        )),
        other => Ok(Reply::Notice(other.to_owned())),
    }
}

/// Whether a VideoRoom event's `data` tells a participant it was kicked out of the
/// room (`"leaving": "ok", "reason": "kicked"`).
pub fn kicked(data: &Value) -> bool {
    data["leaving"] == "ok" && data["reason"] == "kicked"
}

fn jsep(reply: &Value) -> Option<(String, String)> {
    let jsep = &reply["jsep"];
    Some((
        jsep["type"].as_str()?.to_owned(),
        jsep["sdp"].as_str()?.to_owned(),
    ))
}

/// The transaction a reply or event answers, when it says.
pub fn transaction(reply: &Value) -> Option<&str> {
    reply["transaction"].as_str()
}

/// `create`: a new session.
pub fn create(transaction: &str) -> Value {
    json!({"janus": "create", "transaction": transaction})
}

/// `attach`: a handle to the VideoRoom plugin.
pub fn attach(transaction: &str) -> Value {
    json!({"janus": "attach", "plugin": VIDEOROOM, "transaction": transaction})
}

/// `keepalive`: the session stays (Janus drops one silent for its `session_timeout`).
pub fn keepalive(transaction: &str) -> Value {
    json!({"janus": "keepalive", "transaction": transaction})
}

/// `destroy`: ends the session (its handles and PeerConnections).
pub fn destroy(transaction: &str) -> Value {
    json!({"janus": "destroy", "transaction": transaction})
}

fn message(transaction: &str, body: Value, jsep: Option<(&str, &str)>) -> Value {
    let mut msg = json!({"janus": "message", "transaction": transaction, "body": body});
    if let Some((kind, sdp)) = jsep {
        msg["jsep"] = json!({"type": kind, "sdp": sdp});
    }
    msg
}

/// Who publishes, where: a room, a fixed publisher id, the name the room shows, the
/// room's PIN when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publisher<'a> {
    /// The VideoRoom room.
    pub room: u64,
    /// The publisher's id in the room (its feed, to subscribers).
    pub id: u64,
    /// The name the room shows.
    pub display: &'a str,
    /// The room's PIN.
    pub pin: Option<&'a str>,
}

/// `joinandconfigure` as `publisher`, with its offer.
pub fn publish(transaction: &str, publisher: &Publisher<'_>, offer_sdp: &str) -> Value {
    let mut body = json!({
        "request": "joinandconfigure",
        "ptype": "publisher",
        "room": publisher.room,
        "id": publisher.id,
        "display": publisher.display,
    });
    if let Some(pin) = publisher.pin {
        body["pin"] = json!(pin);
    }
    message(transaction, body, Some(("offer", offer_sdp)))
}

/// `kick` of publisher `id` from `room` (a stale session of the robot's own id), with
/// the room's secret.
pub fn kick(transaction: &str, room: u64, id: u64, secret: Option<&str>) -> Value {
    let mut body = json!({"request": "kick", "room": room, "id": id});
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    message(transaction, body, None)
}

/// `join` as a subscriber to `feed`: Janus answers with its offer.
pub fn subscribe(transaction: &str, room: u64, feed: u64, pin: Option<&str>) -> Value {
    let mut body = json!({
        "request": "join",
        "ptype": "subscriber",
        "room": room,
        "streams": [{"feed": feed}],
    });
    if let Some(pin) = pin {
        body["pin"] = json!(pin);
    }
    message(transaction, body, None)
}

/// `start`: a subscriber's answer to Janus's offer.
pub fn start(transaction: &str, room: u64, answer_sdp: &str) -> Value {
    message(
        transaction,
        json!({"request": "start", "room": room}),
        Some(("answer", answer_sdp)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_what_videoroom_needs() {
        let publisher = Publisher {
            room: 1234,
            id: 77,
            display: "robot",
            pin: Some("p1n"),
        };
        let m = publish("t1", &publisher, "v=0...");
        assert_eq!(m["janus"], "message");
        assert_eq!(m["transaction"], "t1");
        assert_eq!(m["body"]["request"], "joinandconfigure");
        assert_eq!(m["body"]["ptype"], "publisher");
        assert_eq!(m["body"]["room"], 1234);
        assert_eq!(m["body"]["id"], 77);
        assert_eq!(m["body"]["display"], "robot");
        assert_eq!(m["body"]["pin"], "p1n");
        assert_eq!(m["jsep"], json!({"type": "offer", "sdp": "v=0..."}));
        let k = kick("t2", 1234, 77, Some("s3cret"));
        assert_eq!(
            k["body"],
            json!({"request": "kick", "room": 1234, "id": 77, "secret": "s3cret"})
        );
        assert!(k.get("jsep").is_none());
        assert_eq!(attach("t3")["plugin"], VIDEOROOM);
        assert_eq!(
            create("t4"),
            json!({"janus": "create", "transaction": "t4"})
        );
        let s = subscribe("t5", 1234, 77, None);
        assert_eq!(s["body"]["streams"], json!([{"feed": 77}]));
        assert!(s["body"].get("pin").is_none());
        assert_eq!(start("t6", 1234, "v=1")["jsep"]["type"], "answer");
    }

    #[test]
    fn replies_and_events_are_read() {
        let created = json!({"janus": "success", "transaction": "a", "data": {"id": 42}});
        assert_eq!(parse(&created), Ok(Reply::Created(42)));
        assert_eq!(transaction(&created), Some("a"));
        assert_eq!(parse(&json!({"janus": "ack"})), Ok(Reply::Ack));
        let joined = json!({
            "janus": "event", "sender": 9, "transaction": "b",
            "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "joined", "id": 77}},
            "jsep": {"type": "answer", "sdp": "v=0"},
        });
        let Ok(Reply::Event { data, jsep }) = parse(&joined) else {
            panic!("{joined}");
        };
        assert_eq!(data["videoroom"], "joined");
        assert_eq!(jsep, Some(("answer".into(), "v=0".into())));
        assert!(kicked(
            &json!({"videoroom": "event", "room": 1, "leaving": "ok", "reason": "kicked"})
        ));
        assert!(!kicked(&json!({"videoroom": "event", "leaving": 5})));
        let kicked = json!({"janus": "success", "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "success"}}});
        assert!(matches!(parse(&kicked), Ok(Reply::Success(_))));
        assert_eq!(
            parse(&json!({"janus": "hangup", "reason": "DTLS alert"})),
            Ok(Reply::Hangup("DTLS alert".into()))
        );
        assert_eq!(
            parse(&json!({"janus": "webrtcup"})),
            Ok(Reply::Notice("webrtcup".into()))
        );
    }

    #[test]
    fn errors_say_what_to_fix() {
        let no_room = json!({"janus": "event", "plugindata": {"plugin": VIDEOROOM,
            "data": {"videoroom": "event", "error_code": 426, "error": "No such room (1234)"}}});
        let err = parse(&no_room).unwrap_err();
        assert_eq!(err.code, NO_SUCH_ROOM);
        assert!(err.to_string().contains("the room does not exist"), "{err}");
        assert!(err.to_string().contains("No such room (1234)"), "{err}");
        let pin = json!({"janus": "success", "plugindata": {"plugin": VIDEOROOM,
            "data": {"videoroom": "event", "error_code": 433, "error": "Unauthorized (wrong pin)"}}});
        let err = parse(&pin).unwrap_err();
        assert!(err.to_string().contains("wrong secret or PIN"), "{err}");
        let taken = JanusError {
            code: ID_EXISTS,
            reason: String::new(),
        };
        assert!(taken.slot_taken() && !taken.session_gone());
        assert!(JanusError {
            code: PUBLISHERS_FULL,
            reason: String::new()
        }
        .slot_taken());
        let gone = json!({"janus": "error", "error": {"code": 458, "reason": "No such session 5"}});
        let err = parse(&gone).unwrap_err();
        assert!(err.session_gone(), "{err}");
    }
}

//! Janus's VideoRoom messages for a subscriber, without serde_json in the bundle:
//! [`shared_protocol::janus`] is the contract (the robot runs it), and this module
//! writes the same requests with [`json`](crate::json) and reads Janus's replies
//! through [`Parsed`] (`JSON.parse` in the browser). Its tests hold both to
//! shared-protocol's messages and reading.

use crate::json::{self, Field, Parsed};
use shared_protocol::janus::{JanusError, VIDEOROOM};

/// What a reply or event says (shared-protocol's [`Reply`](shared_protocol::janus::Reply),
/// over this target's parsed JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<V> {
    /// `success` with `data.id`: a new session or handle.
    Created(u64),
    /// `ack`: the answer comes as an event.
    Ack,
    /// `success` with a plugin's synchronous answer (`plugindata.data`).
    Success(Option<V>),
    /// `event` from the plugin: its `data`, and a `jsep` offer or answer.
    Event {
        /// `plugindata.data`.
        data: Option<V>,
        /// `jsep.type` and `jsep.sdp`, when there is one.
        jsep: Option<(String, String)>,
    },
    /// The PeerConnection went away (`hangup`) or the handle was detached.
    Hangup(String),
    /// `keepalive`, `webrtcup`, `media`, `slowlink`...: nothing to do.
    Notice(String),
}

fn path<V: Parsed>(value: &V, keys: &[&str]) -> Option<V> {
    let mut at = value.field(keys[0])?;
    for key in &keys[1..] {
        at = at.field(key)?;
    }
    Some(at)
}

fn text<V: Parsed>(value: &V, keys: &[&str]) -> Option<String> {
    path(value, keys)?.as_string()
}

/// An integer field, as `serde_json`'s `as_i64` reads it (integral numbers only).
fn int<V: Parsed>(value: &V, keys: &[&str]) -> Option<i64> {
    let n = path(value, keys)?.as_f64()?;
    (n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0).then_some(n as i64)
}

/// Reads one reply or event like [`shared_protocol::janus::parse`]: a core `error`
/// or a plugin `error_code` is an error.
pub fn parse<V: Parsed>(reply: &V) -> Result<Reply<V>, JanusError> {
    let kind = text(reply, &["janus"]).unwrap_or_default();
    let plugin = path(reply, &["plugindata", "data"]);
    if let Some(code) = plugin.as_ref().and_then(|p| int(p, &["error_code"])) {
        return Err(JanusError {
            code,
            reason: plugin
                .as_ref()
                .and_then(|p| text(p, &["error"]))
                .unwrap_or_default(),
        });
    }
    let plugin = plugin.filter(|p| p.is_object() && p.items().is_none());
    match kind.as_str() {
        "error" => Err(JanusError {
            code: int(reply, &["error", "code"]).unwrap_or(0),
            reason: text(reply, &["error", "reason"]).unwrap_or_default(),
        }),
        "success" if plugin.is_some() => Ok(Reply::Success(plugin)),
        "success" => match int(reply, &["data", "id"]).filter(|id| *id >= 0) {
            Some(id) => Ok(Reply::Created(id as u64)),
            None => Ok(Reply::Success(None)),
        },
        "ack" => Ok(Reply::Ack),
        "event" => Ok(Reply::Event {
            data: plugin,
            jsep: text(reply, &["jsep", "type"]).zip(text(reply, &["jsep", "sdp"])),
        }),
        "hangup" | "detached" => Ok(Reply::Hangup(text(reply, &["reason"]).unwrap_or(kind))),
        _ => Ok(Reply::Notice(kind)),
    }
}

/// The transaction a reply or event answers, when it says.
pub fn transaction<V: Parsed>(reply: &V) -> Option<String> {
    text(reply, &["transaction"])
}

/// Whether a VideoRoom event says the robot's `feed` left the room or stopped
/// publishing (`leaving` / `unpublished`), which ends the subscription.
pub fn feed_gone<V: Parsed>(data: &V, feed: u64) -> bool {
    ["leaving", "unpublished"].iter().any(|key| {
        data.field(key)
            .and_then(|v| v.as_f64())
            .is_some_and(|id| id == feed as f64)
    })
}

fn core(kind: &str, transaction: &str) -> String {
    json::object(&[
        ("janus", Field::Str(kind)),
        ("transaction", Field::Str(transaction)),
    ])
}

/// `create`: a new session.
pub fn create(transaction: &str) -> String {
    core("create", transaction)
}

/// `attach`: a handle to the VideoRoom plugin.
pub fn attach(transaction: &str) -> String {
    json::object(&[
        ("janus", Field::Str("attach")),
        ("plugin", Field::Str(VIDEOROOM)),
        ("transaction", Field::Str(transaction)),
    ])
}

/// `keepalive`: the session stays.
pub fn keepalive(transaction: &str) -> String {
    core("keepalive", transaction)
}

/// `destroy`: ends the session (its handles and PeerConnections).
pub fn destroy(transaction: &str) -> String {
    core("destroy", transaction)
}

/// Appends `"key":raw` (raw JSON) to the object text `object`.
fn with(mut object: String, key: &str, raw: &str) -> String {
    object.pop();
    if object.len() > 1 {
        object.push(',');
    }
    object.push_str(&json::object(&[(key, Field::Str(""))])[1..]);
    // `"key":""}` → `"key":raw}`
    object.truncate(object.len() - 3);
    object.push_str(raw);
    object.push('}');
    object
}

fn message(transaction: &str, body: &str, jsep: Option<(&str, &str)>) -> String {
    let mut text = with(core("message", transaction), "body", body);
    if let Some((kind, sdp)) = jsep {
        let jsep = json::object(&[("type", Field::Str(kind)), ("sdp", Field::Str(sdp))]);
        text = with(text, "jsep", &jsep);
    }
    text
}

/// `join` as a subscriber to `feed`: Janus answers with its offer.
pub fn subscribe(transaction: &str, room: u64, feed: u64, pin: Option<&str>) -> String {
    let mut fields = vec![
        ("request", Field::Str("join")),
        ("ptype", Field::Str("subscriber")),
        ("room", Field::Num(room as f64)),
    ];
    if let Some(pin) = pin {
        fields.push(("pin", Field::Str(pin)));
    }
    let streams = format!("[{}]", json::object(&[("feed", Field::Num(feed as f64))]));
    message(
        transaction,
        &with(json::object(&fields), "streams", &streams),
        None,
    )
}

/// `start`: a subscriber's answer to Janus's offer.
pub fn start(transaction: &str, room: u64, answer_sdp: &str) -> String {
    let body = json::object(&[
        ("request", Field::Str("start")),
        ("room", Field::Num(room as f64)),
    ]);
    message(transaction, &body, Some(("answer", answer_sdp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use shared_protocol::janus as contract;

    fn read(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn requests_are_shared_protocols() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n\"quoted\"";
        let cases = [
            (create("t1"), contract::create("t1")),
            (attach("t2"), contract::attach("t2")),
            (keepalive("t3"), contract::keepalive("t3")),
            (destroy("t4"), contract::destroy("t4")),
            (
                subscribe("t5", 1234, 77, None),
                contract::subscribe("t5", 1234, 77, None),
            ),
            (
                subscribe("t6", 1, 9_007_199_254_740_991, Some("p\"in")),
                contract::subscribe("t6", 1, 9_007_199_254_740_991, Some("p\"in")),
            ),
            (start("t7", 1234, sdp), contract::start("t7", 1234, sdp)),
        ];
        for (ours, theirs) in cases {
            assert_eq!(read(&ours), theirs, "{ours}");
        }
    }

    /// Our reading of `reply`, in shared-protocol's terms.
    fn ours(reply: &Value) -> Result<contract::Reply, JanusError> {
        Ok(match parse(reply)? {
            Reply::Created(id) => contract::Reply::Created(id),
            Reply::Ack => contract::Reply::Ack,
            Reply::Success(data) => contract::Reply::Success(data.unwrap_or(Value::Null)),
            Reply::Event { data, jsep } => contract::Reply::Event {
                data: data.unwrap_or(Value::Null),
                jsep,
            },
            Reply::Hangup(why) => contract::Reply::Hangup(why),
            Reply::Notice(what) => contract::Reply::Notice(what),
        })
    }

    #[test]
    fn replies_are_read_as_shared_protocol_reads_them() {
        let replies = [
            json!({"janus": "success", "transaction": "a", "data": {"id": 4_503_599_627_370_495_u64}}),
            json!({"janus": "success", "transaction": "a"}),
            json!({"janus": "ack", "transaction": "b"}),
            json!({"janus": "event", "sender": 9, "transaction": "c",
                "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "attached", "id": 77}},
                "jsep": {"type": "offer", "sdp": "v=0"}}),
            json!({"janus": "event", "plugindata": {"plugin": VIDEOROOM, "data": {"videoroom": "event", "started": "ok"}}}),
            json!({"janus": "event", "plugindata": {"plugin": VIDEOROOM,
                "data": {"videoroom": "event", "error_code": 428, "error": "No such feed (77)"}}}),
            json!({"janus": "success", "plugindata": {"plugin": VIDEOROOM,
                "data": {"videoroom": "event", "error_code": 433, "error": "Unauthorized"}}}),
            json!({"janus": "error", "error": {"code": 458, "reason": "No such session 5"}}),
            json!({"janus": "hangup", "reason": "DTLS alert"}),
            json!({"janus": "detached"}),
            json!({"janus": "keepalive"}),
            json!({"janus": "webrtcup"}),
        ];
        for reply in replies {
            assert_eq!(ours(&reply), contract::parse(&reply), "{reply}");
            assert_eq!(
                transaction(&reply).as_deref(),
                contract::transaction(&reply),
                "{reply}"
            );
        }
        let err = parse(&json!({"janus": "error", "error": {"code": 458, "reason": "gone"}}))
            .unwrap_err();
        assert!(err.session_gone(), "{err}");
    }

    #[test]
    fn the_feed_leaving_or_unpublishing_ends_the_subscription() {
        assert!(feed_gone(&json!({"videoroom": "event", "leaving": 77}), 77));
        assert!(feed_gone(
            &json!({"videoroom": "event", "unpublished": 77}),
            77
        ));
        assert!(!feed_gone(
            &json!({"videoroom": "event", "leaving": 78}),
            77
        ));
        assert!(!feed_gone(
            &json!({"videoroom": "event", "started": "ok"}),
            77
        ));
        assert!(!feed_gone(
            &json!({"videoroom": "event", "leaving": "ok"}),
            77
        ));
    }
}

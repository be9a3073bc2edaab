//! What relays say to each other through Redis, apart from any I/O (unit-tested): the
//! keys' names, the messages on each relay's channel, the hash a claim is kept as, and
//! the Lua scripts that read and write a room's keys in one step.

use crate::rooms::ForwardError;
use serde::{Deserialize, Serialize};

/// Every key and channel the relays use starts with this.
pub const PREFIX: &str = "rtcbot";

/// `rtcbot:room:<room>`: the instance id of the relay its robot is connected to.
pub fn presence_key(room: &str) -> String {
    format!("{PREFIX}:room:{room}")
}

/// `rtcbot:claim:<room>`: the hash of the key that claims the room ([`claim_hash`]).
pub fn claim_key(room: &str) -> String {
    format!("{PREFIX}:claim:{room}")
}

/// `rtcbot:relay:<instance>`: the pub/sub channel a relay listens on.
pub fn channel(instance: &str) -> String {
    format!("{PREFIX}:relay:{instance}")
}

/// What Redis keeps of a robot's key for `room`: hex SHA-256 of the room and the key,
/// so neither the key nor the reuse of one key across rooms shows in Redis.
pub fn claim_hash(room: &str, key: &str) -> String {
    let mut input = Vec::with_capacity(room.len() + key.len() + 1);
    input.extend_from_slice(room.as_bytes());
    input.push(0);
    input.extend_from_slice(key.as_bytes());
    hex(ring::digest::digest(&ring::digest::SHA256, &input).as_ref())
}

/// A new relay instance's id: 16 random hex digits.
pub fn new_instance_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // No system randomness: the clock and the process tell instances apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ u64::from(std::process::id()).rotate_left(40)).to_be_bytes();
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One message on a relay's channel (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A browser's offer for a robot of this relay, from relay `reply_to`.
    Offer {
        /// The asking relay's number for it.
        id: u64,
        /// The room.
        room: String,
        /// The asking relay's instance id (its channel).
        reply_to: String,
        /// The offer as the browser sent it.
        offer: String,
    },
    /// The outcome of the offer `id` this relay sent.
    Reply {
        /// The number the offer had.
        id: u64,
        /// The answer, or why none.
        outcome: Outcome,
    },
    /// A robot on another relay took `room`: the one here, if any, goes (as a newer
    /// robot replaces an older one on one relay).
    Taken {
        /// The room.
        room: String,
    },
}

/// An offer's outcome as it crosses relays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The robot's answer (JSON text).
    Answer {
        /// The answer.
        answer: String,
    },
    /// No robot is in the room there (any more).
    NoRobot,
    /// The room is over its offers per second.
    TooMany,
    /// Too many offers wait for the robot.
    Busy,
    /// The robot did not answer within `timeout_s`.
    Timeout {
        /// The robot's relay's offer timeout, seconds.
        timeout_s: f64,
    },
    /// The robot left before it answered.
    Left,
    /// Anything else (the robot's relay says why).
    Failed {
        /// Why.
        message: String,
    },
}

impl Outcome {
    /// What a forward on the robot's relay came to.
    pub fn of(result: Result<String, ForwardError>) -> Self {
        match result {
            Ok(answer) => Self::Answer { answer },
            Err(ForwardError::NoRobot(_)) => Self::NoRobot,
            Err(ForwardError::TooMany(_)) => Self::TooMany,
            Err(ForwardError::Busy(_)) => Self::Busy,
            Err(ForwardError::Timeout(_, timeout_s)) => Self::Timeout { timeout_s },
            Err(ForwardError::Left(_)) => Self::Left,
            Err(err @ (ForwardError::Room(_) | ForwardError::Shared(_))) => Self::Failed {
                message: err.to_string(),
            },
        }
    }

    /// Back to the result a local forward to `room` would have given.
    pub fn into_result(self, room: &str) -> Result<String, ForwardError> {
        let room = room.to_owned();
        match self {
            Self::Answer { answer } => Ok(answer),
            Self::NoRobot => Err(ForwardError::NoRobot(room)),
            Self::TooMany => Err(ForwardError::TooMany(room)),
            Self::Busy => Err(ForwardError::Busy(room)),
            Self::Timeout { timeout_s } => Err(ForwardError::Timeout(room, timeout_s)),
            Self::Left => Err(ForwardError::Left(room)),
            Self::Failed { message } => Err(ForwardError::Shared(message)),
        }
    }
}

impl Message {
    /// The JSON text published.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }

    /// A published text, or why it is not one of ours.
    pub fn decode(text: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(text).map_err(|e| format!("not a relay message: {e}"))
    }
}

/// Admits a robot to a room across relays. KEYS: claim key. ARGV: the robot's claim
/// hash ("" for no key), the claim's expiry (s). Returns 1 (admitted: a key claims a
/// room no key claims yet, and refreshes its claim), or 0 (another key claims it).
pub const ADMIT: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
";

/// A robot of relay `ARGV[1]` is now the room's. KEYS: presence key. ARGV: instance id,
/// expiry (s). Returns the relay that held the room before ("" for none).
pub const ARRIVE: &str = r"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return old or ''
";

/// Refreshes relay `ARGV[1]`'s presence in a room, unless another relay's robot took
/// it. KEYS: presence key. ARGV: instance id, expiry (s). Returns 1 (still ours, or
/// ours again after the key expired or Redis restarted empty) or 0 (another's).
pub const REFRESH: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
";

/// Deletes a room's presence only if it still names relay `ARGV[1]`. KEYS: presence
/// key. Returns 1 when deleted.
pub const LEAVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_channels_are_named_under_one_prefix() {
        assert_eq!(presence_key("bot-7"), "rtcbot:room:bot-7");
        assert_eq!(claim_key("bot-7"), "rtcbot:claim:bot-7");
        assert_eq!(channel("00ff"), "rtcbot:relay:00ff");
    }

    #[test]
    fn a_claim_is_kept_as_a_hash_of_room_and_key() {
        let h = claim_hash("room", "secret");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("secret"));
        assert_eq!(h, claim_hash("room", "secret"), "stable");
        assert_ne!(h, claim_hash("room", "secret2"));
        assert_ne!(h, claim_hash("room2", "secret"), "one key, two rooms");
        assert_ne!(claim_hash("ab", "c"), claim_hash("a", "bc"), "no ambiguity");
    }

    #[test]
    fn instance_ids_are_16_hex_digits_and_differ() {
        let (a, b) = (new_instance_id(), new_instance_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn messages_round_trip_and_garbage_is_refused_with_a_reason() {
        let messages = [
            Message::Offer {
                id: 7,
                room: "r".into(),
                reply_to: "abc".into(),
                offer: r#"{"type":"offer","sdp":"v=0"}"#.into(),
            },
            Message::Reply {
                id: 7,
                outcome: Outcome::Timeout { timeout_s: 10.0 },
            },
            Message::Reply {
                id: 8,
                outcome: Outcome::Answer {
                    answer: "{}".into(),
                },
            },
            Message::Taken { room: "r".into() },
        ];
        for message in messages {
            let text = message.encode();
            assert_eq!(Message::decode(text.as_bytes()), Ok(message), "{text}");
        }
        let err = Message::decode(b"{\"type\":\"launch\"}").unwrap_err();
        assert!(err.starts_with("not a relay message"), "{err}");
        assert!(Message::decode(b"\xff").is_err());
    }

    #[test]
    fn every_outcome_maps_back_to_the_local_error() {
        let room = "r";
        let errors = [
            ForwardError::NoRobot(room.into()),
            ForwardError::TooMany(room.into()),
            ForwardError::Busy(room.into()),
            ForwardError::Timeout(room.into(), 2.5),
            ForwardError::Left(room.into()),
        ];
        for err in errors {
            assert_eq!(Outcome::of(Err(err.clone())).into_result(room), Err(err));
        }
        assert_eq!(
            Outcome::of(Ok("a".into())).into_result(room),
            Ok("a".into())
        );
    }
}

//! A room's rules, apart from any I/O (unit-tested): what a room's name may be, who may
//! hold a room once it is claimed, and how many offers a second a room takes.

use std::time::Instant;
use thiserror::Error;

/// The longest room name.
pub const MAX_NAME: usize = 64;

/// Paths of the relay's own that no room may take.
pub const RESERVED: &[&str] = &["health"];

/// Why a room turned a robot or an offer away.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomError {
    /// A name the relay does not take.
    #[error(
        "a room's name is 1 to {MAX_NAME} letters, digits, '-', '_' or '.', and not {RESERVED:?}: {0:?} is not"
    )]
    BadName(String),
    /// A claimed room, and a robot without its key.
    #[error("room {0:?} is claimed by another robot's key: connect with its key (?key=...)")]
    WrongKey(String),
}

/// Checks a room's name.
pub fn check_name(name: &str) -> Result<(), RoomError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !RESERVED.contains(&name)
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RoomError::BadName(
            name.chars().take(MAX_NAME + 1).collect(),
        ))
    }
}

/// Whether a room is held by a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Claim {
    /// Any robot may take it, as on rtcbot.dev (the newest one answers).
    #[default]
    Open,
    /// Only a robot with this key may take it.
    Key(String),
}

impl Claim {
    /// Lets a robot with `key` (or none) into the room: an open room a robot enters
    /// with a key becomes claimed by that key; a claimed room takes only its key.
    pub fn admit(&mut self, room: &str, key: Option<&str>) -> Result<(), RoomError> {
        match (&*self, key) {
            (Claim::Open, None) => Ok(()),
            (Claim::Open, Some(key)) => {
                *self = Claim::Key(key.to_owned());
                Ok(())
            }
            (Claim::Key(expected), Some(key)) if same(expected, key) => Ok(()),
            (Claim::Key(_), _) => Err(RoomError::WrongKey(room.to_owned())),
        }
    }

    /// Whether the room is claimed.
    pub fn claimed(&self) -> bool {
        matches!(self, Claim::Key(_))
    }
}

/// Compares two keys in time that depends on their lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A token bucket: `per_second` offers a second on average, `burst` at once.
#[derive(Debug, Clone)]
pub struct OfferRate {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl OfferRate {
    /// A full bucket.
    pub fn new(per_second: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            per_second: per_second.max(0.0),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes one offer at `now`; false when the room is over its rate.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.per_second).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_are_short_plain_and_not_the_relays_own() {
        for good in [
            "myRandomSequence11",
            "a",
            "robot-1_b.x",
            &"x".repeat(MAX_NAME),
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "health",
            ".hidden",
            "a/b",
            "a b",
            "é",
            &"x".repeat(MAX_NAME + 1),
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.to_string().contains("1 to 64 letters"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_open_room_takes_any_robot_and_a_key_claims_it() {
        let mut claim = Claim::default();
        assert_eq!(claim.admit("r", None), Ok(()));
        assert!(!claim.claimed());
        assert_eq!(claim.admit("r", Some("k1")), Ok(()));
        assert!(claim.claimed());
        assert_eq!(claim.admit("r", Some("k1")), Ok(()));
        assert_eq!(claim.admit("r", None), Err(RoomError::WrongKey("r".into())));
        let err = claim.admit("r", Some("k2")).unwrap_err();
        assert!(err.to_string().contains("claimed"), "{err}");
        assert_eq!(
            claim,
            Claim::Key("k1".into()),
            "a wrong key changes nothing"
        );
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }

    #[test]
    fn offers_beyond_the_burst_wait_for_the_rate() {
        let t = Instant::now();
        let mut rate = OfferRate::new(2.0, 3.0);
        assert!((0..3).all(|_| rate.take(t)), "the burst");
        assert!(!rate.take(t), "over the burst");
        assert!(!rate.take(t + Duration::from_millis(400)));
        assert!(
            rate.take(t + Duration::from_millis(900)),
            "one more after half a second"
        );
        assert!(!rate.take(t + Duration::from_millis(900)));
        // Idle time refills only up to the burst.
        let later = t + Duration::from_secs(60);
        assert!((0..3).all(|_| rate.take(later)));
        assert!(!rate.take(later));
    }
}

//! What a peer's incoming messages mean, and what it is told back: pure, no I/O.
//!
//! [`read`] turns the bytes of one data-channel message into an [`Action`]: a reply
//! for the sender alone (a pong, or an error saying why the message was refused) or a
//! [`Control`] for the hub. [`RefusalThrottle`] keeps a refused driver, which sends
//! at 20 Hz, from being told so more than once a second.

use shared_protocol::{Control, Pong, Telemetry};
use std::time::{Duration, Instant};

/// How often a peer whose drive states are refused is told so.
pub const REFUSAL_REPEAT: Duration = Duration::from_secs(1);

/// What to do with one incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer the sender with this, now.
    Reply(Telemetry),
    /// Hand this to the control hub.
    Control(Control),
}

/// Reads one data-channel message; `robot_us` is the robot's clock for pongs.
pub fn read(data: &[u8], robot_us: u64) -> Action {
    let Ok(text) = std::str::from_utf8(data) else {
        return Action::Reply(Telemetry::Error {
            message: "binary messages are not supported: send UTF-8 JSON or text".into(),
        });
    };
    match Control::parse(text) {
        Ok(Control::Ping(ping)) => Action::Reply(Telemetry::Pong(Pong {
            id: ping.id,
            t: ping.t,
            robot_us,
        })),
        Ok(control) => Action::Control(control),
        Err(err) => Action::Reply(Telemetry::Error {
            message: err.to_string(),
        }),
    }
}

/// Says when a refused peer is due to be told again.
#[derive(Debug, Clone)]
pub struct RefusalThrottle {
    every: Duration,
    last: Option<Instant>,
}

impl Default for RefusalThrottle {
    fn default() -> Self {
        Self::new(REFUSAL_REPEAT)
    }
}

impl RefusalThrottle {
    /// Tells at most once per `every`.
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// True when a refusal at `now` should be told (and remembers it).
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::DriveState;

    fn error_text(action: Action) -> String {
        match action {
            Action::Reply(Telemetry::Error { message }) => message,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    #[test]
    fn pings_are_answered_with_the_robot_clock() {
        let action = read(br#"{"type":"ping","id":7,"t":12.5}"#, 99);
        assert_eq!(
            action,
            Action::Reply(Telemetry::Pong(Pong {
                id: 7,
                t: 12.5,
                robot_us: 99
            }))
        );
    }

    #[test]
    fn pings_with_any_integer_id_get_their_pong() {
        // A negative id (RTCBot clients number pings as they like) is echoed exactly.
        let action = read(br#"{"type":"ping","id":-3,"t":1}"#, 5);
        let Action::Reply(pong) = action else {
            panic!("expected a pong, got {action:?}");
        };
        assert_eq!(
            pong.to_text(),
            r#"{"type":"pong","id":-3,"t":1.0,"robot_us":5}"#
        );
        // A fraction is refused with a clear error, not ignored.
        let text = error_text(read(br#"{"type":"ping","id":2.5}"#, 0));
        assert!(text.contains("the id must be an integer"), "{text}");
    }

    #[test]
    fn controls_go_to_the_hub_and_text_passes_through() {
        assert_eq!(
            read(br#"{"type":"drive","forward":0.5,"turn":0,"seq":3}"#, 0),
            Action::Control(Control::Drive(DriveState::new(0.5, 0.0, 3).unwrap()))
        );
        assert_eq!(
            read(b"hello robot", 0),
            Action::Control(Control::Text("hello robot".into()))
        );
    }

    #[test]
    fn bad_messages_get_an_error_saying_why() {
        assert!(error_text(read(&[0xff, 0xfe], 0)).contains("binary messages"));
        let text = error_text(read(br#"{"type":"drive","forward":7,"turn":0}"#, 0));
        assert!(text.contains("forward"), "{text}");
        let text = error_text(read(br#"{"type":"warp"}"#, 0));
        assert!(text.contains("warp"), "{text}");
    }

    #[test]
    fn refusals_are_told_once_per_period() {
        let start = Instant::now();
        let mut throttle = RefusalThrottle::new(Duration::from_secs(1));
        assert!(throttle.due(start));
        assert!(!throttle.due(start + Duration::from_millis(50)));
        assert!(!throttle.due(start + Duration::from_millis(999)));
        assert!(throttle.due(start + Duration::from_millis(1000)));
        assert!(!throttle.due(start + Duration::from_millis(1500)));
        assert!(throttle.due(start + Duration::from_millis(2100)));
    }
}

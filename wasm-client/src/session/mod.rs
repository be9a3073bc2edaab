//! One browser WebRTC session: the part of connecting to a robot that the app's
//! reconnecting [`Connection`](crate::connection::Connection) and the npm package's
//! `RTCConnection` share.
//!
//! It owns exactly this: building the `RTCPeerConnection` from an `RTCConfiguration`,
//! creating the ordered or unordered `default` data channel, making the offer or the
//! answer and waiting for ICE gathering (non-trickle, as RTCBot does), applying the
//! remote description, `POST`ing the offer as JSON with one set of error rules
//! ([`PostError`], [`HttpError`]), wrapping an incoming track into a `MediaStream`,
//! and renegotiating the live session over its data channel as the polite peer
//! ([`negotiation`] decides, `Renegotiator` does it).
//! Reconnection and watching the session stay with the app, rtcbot.js's API and its
//! data channels with the npm package; each words the errors for its own readers.
//!
//! The functions that touch the browser are wasm32 only; the error rules and the
//! negotiation decisions are pure and tested natively.

#[cfg(target_arch = "wasm32")]
mod browser;
pub mod negotiation;
#[cfg(target_arch = "wasm32")]
mod renegotiate;
#[cfg(target_arch = "wasm32")]
pub use browser::*;
#[cfg(target_arch = "wasm32")]
pub use renegotiate::{Handled, Renegotiation, Renegotiator};

use thiserror::Error;

/// The longest part of an error reply's body kept in a message, in characters.
pub const MAX_DETAIL_CHARS: usize = 160;

/// Which local description a session makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The first description of a negotiation.
    Offer,
    /// The reply to the remote peer's offer.
    Answer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
        })
    }
}

pub use shared_protocol::room::{may_be_room, room_url};

/// Whether a relay room has its robot (`GET /<room>/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPresence {
    /// The room's name.
    pub room: String,
    /// A robot is connected to it.
    pub robot: bool,
}

impl RoomPresence {
    /// Whether this reading says the room's robot has just arrived after `before`
    /// said it was away: the moment to skip a backoff and connect. The first reading
    /// never is (the first try is already under way).
    pub fn arrived_since(&self, before: Option<&RoomPresence>) -> bool {
        self.robot && before.is_some_and(|b| !b.robot && b.room == self.room)
    }
}

/// Why a step of the negotiation failed; the `String`s are the browser's messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    /// `new RTCPeerConnection(config)` threw (a malformed ICE server URL...).
    #[error("the browser refused the configuration: {0}")]
    Configuration(String),
    /// `createOffer` / `createAnswer` failed.
    #[error("could not create an {0}: {1}")]
    Create(Role, String),
    /// `setLocalDescription` failed.
    #[error("could not set the {0}: {1}")]
    SetLocal(Role, String),
    /// The peer connection has no local description after setting one.
    #[error("the browser produced no description")]
    NoLocalDescription,
    /// `setRemoteDescription` failed.
    #[error("the browser refused the description: {0}")]
    SetRemote(String),
}

/// Why `POST`ing the offer brought no answer; the `String`s are the browser's messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PostError {
    /// Not in a page (no `window` to fetch with).
    #[error("no browser window")]
    NoWindow,
    /// The request could not be built (a malformed URL).
    #[error("bad request: {0}")]
    Request(String),
    /// `fetch` failed: no server, a network error, a refused CORS request.
    #[error("cannot reach the server ({0})")]
    Unreachable(String),
    /// The reply started but its body did not arrive.
    #[error("the reply broke off ({0})")]
    BrokeOff(String),
    /// The server answered with an HTTP error.
    #[error("{0}")]
    Status(HttpError),
    /// No reply within the time allowed.
    #[error("no answer in time")]
    TimedOut,
}

/// An HTTP error reply to the offer, reduced to what a message shows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("HTTP {status} {}", self.detail())]
pub struct HttpError {
    /// The status code.
    pub status: u16,
    /// The status line's text (`Not Found`).
    pub status_text: String,
    /// The body on one line: whitespace runs as single spaces, at most
    /// [`MAX_DETAIL_CHARS`] characters.
    pub body: String,
}

impl HttpError {
    /// The error for a reply with this status, status text and body.
    pub fn new(status: u16, status_text: String, body: &str) -> Self {
        let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
        Self {
            status,
            status_text,
            body: line.chars().take(MAX_DETAIL_CHARS).collect(),
        }
    }

    /// A 4xx: the robot refused the offer (trying the same again will not help). Not
    /// 408 or 429: those say "later", and a later try may well work.
    pub fn refused(&self) -> bool {
        (400..500).contains(&self.status) && !matches!(self.status, 408 | 429)
    }

    /// True when the body is an HTML page (a proxy's or server's error page), which
    /// gives way to the status text.
    pub fn body_is_html(&self) -> bool {
        self.body.starts_with('<')
    }

    /// What to show after the status: the body, or the status text when the body is
    /// empty or an HTML page.
    pub fn detail(&self) -> &str {
        if self.body.is_empty() || self.body_is_html() {
            &self.status_text
        } else {
            &self.body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_robot_arrives_only_after_it_was_seen_away() {
        let at = |robot| RoomPresence {
            room: "r".into(),
            robot,
        };
        assert!(at(true).arrived_since(Some(&at(false))));
        assert!(!at(true).arrived_since(None), "the first reading");
        assert!(!at(true).arrived_since(Some(&at(true))), "still there");
        assert!(!at(false).arrived_since(Some(&at(false))), "still away");
        assert!(!at(false).arrived_since(Some(&at(true))), "it left");
    }

    fn reply(status: u16, body: &str) -> HttpError {
        HttpError::new(status, "Not Found".into(), body)
    }

    #[test]
    fn an_error_reply_becomes_one_readable_line() {
        let e = reply(404, "  no such\n\trobot  here \r\n");
        assert_eq!(e.body, "no such robot here");
        assert_eq!(e.detail(), "no such robot here");
        assert_eq!(e.to_string(), "HTTP 404 no such robot here");
        let long = reply(500, &"é".repeat(400));
        assert_eq!(long.body.chars().count(), MAX_DETAIL_CHARS);
    }

    #[test]
    fn html_pages_and_empty_bodies_give_way_to_the_status_text() {
        let html = reply(502, "<html>\n<body>Bad gateway</body></html>");
        assert!(html.body_is_html());
        assert_eq!(html.detail(), "Not Found");
        let empty = reply(404, " \n ");
        assert_eq!(empty.body, "");
        assert!(!empty.body_is_html());
        assert_eq!(empty.detail(), "Not Found");
    }

    #[test]
    fn only_4xx_is_a_refusal() {
        assert!(reply(400, "").refused());
        assert!(reply(499, "").refused());
        assert!(!reply(500, "").refused());
        assert!(!reply(399, "").refused());
        assert!(!reply(429, "").refused(), "too many connecting: later");
        assert!(!reply(408, "").refused(), "timed out: later");
    }

    #[test]
    fn errors_read_as_the_owners_quote_them() {
        assert_eq!(
            SessionError::Create(Role::Offer, "x".into()).to_string(),
            "could not create an offer: x"
        );
        assert_eq!(
            SessionError::SetLocal(Role::Answer, "y".into()).to_string(),
            "could not set the answer: y"
        );
        assert_eq!(
            SessionError::SetRemote("z".into()).to_string(),
            "the browser refused the description: z"
        );
    }
}

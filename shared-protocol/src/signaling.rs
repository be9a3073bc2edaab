//! Offer/answer exchange, wire-compatible with RTCBot.
//!
//! RTCBot uses non-trickle ICE: each side gathers all candidates, then sends one
//! JSON object `{"type": "offer" | "answer", "sdp": "..."}`. The browser offers by
//! `POST /connect`; the robot answers in the response body.

use crate::error::{check_len, ProtocolError};
use serde::{Deserialize, Serialize};

/// The largest session description accepted, in bytes of JSON.
pub const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;

/// Whether a description is an offer or an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// The first description of a negotiation.
    Offer,
    /// The reply to an offer.
    Answer,
}

/// One side's session description, as RTCBot and browsers serialise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpType,
    /// The SDP text.
    pub sdp: String,
}

/// The `type` of a renegotiation message on the data channel, both ways.
pub const NEGOTIATE_TYPE: &str = "negotiate";

impl SessionDescription {
    /// An offer carrying `sdp`.
    pub fn offer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpType::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer carrying `sdp`.
    pub fn answer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpType::Answer,
            sdp: sdp.into(),
        }
    }

    /// Parses and checks a description received as JSON.
    ///
    /// Refuses oversize input, malformed JSON, a missing or unknown `type`, and SDP
    /// that does not start with a version line or has no media section.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        check_len(text, MAX_DESCRIPTION_BYTES)?;
        let desc: Self = serde_json::from_str(text)
            .map_err(|e| ProtocolError::malformed("session description", e))?;
        desc.validate()?;
        Ok(desc)
    }

    /// The data-channel message that carries this description during a session:
    /// `{"type":"negotiate","description":{"type":"offer","sdp":"..."}}`. Turning media
    /// on or off mid-session goes this way (the browser polite, the robot impolite, as
    /// in the perfect-negotiation pattern); the first offer still goes by `POST
    /// /connect`. Such messages may be up to [`MAX_DESCRIPTION_BYTES`] long.
    pub fn to_message(&self) -> serde_json::Value {
        serde_json::json!({"type": NEGOTIATE_TYPE, "description": self})
    }

    /// Reads the description out of a `negotiate` message (see
    /// [`SessionDescription::to_message`]) and checks it.
    pub fn from_message(value: serde_json::Value) -> Result<Self, ProtocolError> {
        let Some(description) = value.get("description") else {
            return Err(ProtocolError::malformed(
                "negotiate message",
                "the \"description\" field is missing",
            ));
        };
        let desc: Self = serde_json::from_value(description.clone())
            .map_err(|e| ProtocolError::malformed("negotiate message", e))?;
        desc.validate()?;
        Ok(desc)
    }

    /// Checks the SDP text enough to give a clear error before a WebRTC stack sees it.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let sdp = self.sdp.trim_start();
        if sdp.is_empty() {
            return Err(ProtocolError::InvalidSdp("the sdp field is empty".into()));
        }
        if !sdp.starts_with("v=0") {
            return Err(ProtocolError::InvalidSdp(
                "SDP must start with the version line \"v=0\"".into(),
            ));
        }
        if !sdp.lines().any(|l| l.starts_with("m=")) {
            return Err(ProtocolError::InvalidSdp(
                "SDP has no media section (m= line): offer a data channel or a video transceiver"
                    .into(),
            ));
        }
        if sdp.contains('\0') {
            return Err(ProtocolError::InvalidSdp("SDP contains a NUL byte".into()));
        }
        Ok(())
    }

    /// The JSON text RTCBot expects.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a description always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn serialises_exactly_like_rtcbot() {
        let json = SessionDescription::offer("v=0\r\n").to_json();
        assert_eq!(json, r#"{"type":"offer","sdp":"v=0\r\n"}"#);
        let json = SessionDescription::answer("x").to_json();
        assert_eq!(json, r#"{"type":"answer","sdp":"x"}"#);
    }

    #[test]
    fn round_trips_rtcbot_json_in_either_field_order() {
        let text = format!(
            r#"{{"sdp": {}, "type": "offer"}}"#,
            serde_json::to_string(SDP).unwrap()
        );
        let desc = SessionDescription::from_json(&text).unwrap();
        assert_eq!(desc.kind, SdpType::Offer);
        assert_eq!(desc.sdp, SDP);
        assert_eq!(
            SessionDescription::from_json(&desc.to_json()).unwrap(),
            desc
        );
    }

    #[test]
    fn refuses_bad_descriptions_with_clear_errors() {
        let cases = [
            ("not json", "malformed session description"),
            (r#"{"type":"offer"}"#, "missing field `sdp`"),
            (
                r#"{"type":"rollback","sdp":"v=0"}"#,
                "unknown variant `rollback`",
            ),
            (r#"{"type":"offer","sdp":""}"#, "empty"),
            (r#"{"type":"offer","sdp":"hello"}"#, "v=0"),
            (
                r#"{"type":"offer","sdp":"v=0\r\ns=-\r\n"}"#,
                "no media section",
            ),
        ];
        for (input, expected) in cases {
            let err = SessionDescription::from_json(input)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{input:?} gave {err:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn refuses_oversize_descriptions() {
        let big = format!(
            r#"{{"type":"offer","sdp":"v=0{}"}}"#,
            "a".repeat(MAX_DESCRIPTION_BYTES)
        );
        assert!(matches!(
            SessionDescription::from_json(&big),
            Err(ProtocolError::TooLarge { .. })
        ));
    }
}

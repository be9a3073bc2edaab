//! The one error type of the protocol crate.

use thiserror::Error;

/// Why a message or description was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProtocolError {
    /// The message is larger than the protocol allows.
    #[error("message is {len} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Size of the refused message.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The text is not valid JSON, or does not have the shape its `type` requires.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// serde's explanation.
        detail: String,
    },
    /// The message names a `type` this protocol does not define.
    #[error("unknown message type {0:?} (plain JSON without a \"type\" field is passed through)")]
    UnknownType(String),
    /// A number is NaN, infinite or outside the range its field allows.
    #[error("{field} = {value} is out of range (expected {range})")]
    OutOfRange {
        /// The field name.
        field: &'static str,
        /// The refused value.
        value: f64,
        /// The allowed range, for the message.
        range: &'static str,
    },
    /// A session description is not usable SDP.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
}

impl ProtocolError {
    pub(crate) fn malformed(what: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            detail: err.to_string(),
        }
    }

    /// Checks that `value` is finite and within `[min, max]`.
    pub(crate) fn check_range(
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
        range: &'static str,
    ) -> Result<f64, Self> {
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(Self::OutOfRange {
                field,
                value,
                range,
            })
        }
    }
}

/// Refuses text longer than [`crate::MAX_MESSAGE_BYTES`].
pub(crate) fn check_len(text: &str, max: usize) -> Result<(), ProtocolError> {
    if text.len() > max {
        Err(ProtocolError::TooLarge {
            len: text.len(),
            max,
        })
    } else {
        Ok(())
    }
}

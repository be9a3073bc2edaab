//! The serial link to a microcontroller: RTCBot's `SerialConnection`, done properly.
//!
//! - [`config`]: the `[serial]` settings ([`SerialConfig`]) and their errors;
//! - [`framer`]: bytes in, messages out (lines, raw chunks, C structs with an optional
//!   start byte); pure, unit-tested;
//! - [`structs`]: C-struct packing with Python `struct` format strings, as RTCBot's
//!   Arduino examples use;
//! - [`link`]: the running port ([`SerialConnection`]): threads, reopening with
//!   backoff after an unplug, the link state.
//!
//! Bad input is never fatal: a garbled or short frame, bytes before a start byte, a
//! line that is not UTF-8 or too long are reported as [`SerialEvent::Garbled`] and
//! skipped.

pub mod config;
pub mod framer;
pub mod link;
pub mod structs;

pub use config::{ReadMode, SerialConfig, SerialError};
pub use framer::{Framer, Framing, Incoming, SerialEvent, MAX_LINE};
pub use link::{LinkState, SerialConnection};
pub use structs::{StructCodec, StructError};

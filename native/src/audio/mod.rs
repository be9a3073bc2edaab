//! Sound both ways: the robot's microphone to every peer, encoded once, and the
//! browsers' microphones to the robot's speaker and program.
//!
//! Data flows one way in each direction:
//!
//! - out: [`source`] (the test tone, a WAV file, an ALSA capture device, yours) →
//!   [`stream`] (Opus, [`codec`], once for every listener) → each peer's audio track;
//! - in: each peer's audio track → Opus decoding (in the peer) → [`incoming`] (the
//!   program's subscribers, and the [`sink`]: an ALSA playback device or a WAV file).
//!
//! Both directions are 48 kHz mono in 20 ms blocks ([`FRAME_SAMPLES`]). [`tone`] is
//! the pure test tone (its bursts carry their send time) and the Goertzel filter
//! that finds it again; [`config`] is `[audio]`; `alsa` holds the devices.
//!
//! Opus goes through libopus (the `opus` crate: the reference codec, which browsers
//! use too); devices through libasound (the `alsa` crate, the `alsa` feature, on by
//! default); WAV through `hound`.

pub mod alsa;
pub mod codec;
pub mod config;
pub mod incoming;
pub mod sink;
pub mod source;
pub mod stream;
pub mod tone;

pub use config::{AudioConfig, AudioSinkSpec, AudioSourceSpec, PlayFrom};
pub use incoming::{HeardAudio, Incoming, IncomingCounters};
pub use sink::AudioSink;
pub use source::{AudioBlock, AudioSource};
pub use stream::{AudioCounters, AudioStream, EncodedAudio, Listener};

/// Samples per second, both ways.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per block: 20 ms.
pub const FRAME_SAMPLES: usize = 960;

/// What went wrong with sound, for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    /// An ALSA device could not be opened or used.
    #[error("{0}")]
    Device(String),
    /// A WAV file could not be read or written.
    #[error("{0}")]
    File(String),
    /// The Opus codec refused.
    #[error("{0}")]
    Codec(String),
    /// A received packet did not decode.
    #[error("{0}")]
    Decode(String),
}

//! The crate's one error: every module's error, with its sources kept.

use thiserror::Error;

/// `err` and each of its causes on one line, `a: b: c`, as the binary prints them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// Anything the library can fail with. Each variant wraps one module's error, so
/// `std::error::Error::source` walks down to the cause (an I/O error, the kernel's
/// answer, the WebRTC stack's error); print it with `{:#}` through `anyhow`, or walk
/// the chain, to see every cause on one line.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The video source or encoder could not be set up.
    #[error(transparent)]
    Video(#[from] crate::video::PipelineError),
    /// A video source failed.
    #[error(transparent)]
    Source(#[from] crate::video::SourceError),
    /// A sound source or speaker could not be opened.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// The serial link failed.
    #[error(transparent)]
    Serial(#[from] crate::serial::SerialError),
    /// The drive mapping is unusable or its write failed.
    #[error(transparent)]
    Drive(#[from] crate::control::DriveError),
    /// A peer could not be made.
    #[error(transparent)]
    Peer(#[from] crate::rtc::PeerError),
    /// The client could not connect or send.
    #[error(transparent)]
    Client(#[from] crate::rtc::ClientError),
    /// An I/O error (binding or serving HTTP...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

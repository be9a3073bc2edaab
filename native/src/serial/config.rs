//! The `[serial]` settings: port, speed, and how bytes become messages.

use super::framer::Framing;
use super::structs::{StructCodec, StructError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use thiserror::Error;

/// How incoming bytes are split into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// Text lines ended by `delimiter` (RTCBot's default).
    Lines,
    /// Bytes as they arrive (RTCBot's `readFormat=None`).
    Raw,
    /// C structs of `read_format` (RTCBot's `readFormat="<BH"`).
    Struct,
}

/// The `[serial]` config section.
///
/// ```toml
/// [serial]
/// path = "/dev/ttyACM0"
/// baud = 115200
/// write_format = "<hh"          # what the robot sends: an Arduino packed struct
/// write_keys = ["left", "right"]
/// read_format = "<BH"           # what the Arduino sends back (read mode "struct")
/// read_keys = ["sensorID", "measurement"]
/// start_byte = 0xAA             # optional framing byte before every struct, both ways
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialConfig {
    /// The device, e.g. `/dev/ttyACM0`, `/dev/ttyUSB0`, `/dev/serial0`.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// How to split incoming bytes; default `struct` when `read_format` is set, else
    /// `lines`.
    pub read: Option<ReadMode>,
    /// Line delimiter for `lines` (read), and appended to text writes unless reading
    /// `raw`. A trailing `\r` is also removed when the delimiter is `\n`.
    pub delimiter: String,
    /// Python-struct format of incoming structs.
    pub read_format: Option<String>,
    /// Key names of incoming struct fields (they become a JSON object).
    pub read_keys: Option<Vec<String>>,
    /// Python-struct format of outgoing structs; JSON messages are packed with it.
    pub write_format: Option<String>,
    /// Key names of outgoing struct fields (messages are JSON objects with them).
    pub write_keys: Option<Vec<String>>,
    /// A byte written before every outgoing struct and searched for before every
    /// incoming one, so the reader can resynchronise after garbage.
    pub start_byte: Option<u8>,
    /// A partial struct with no new byte for this long is reported as short and dropped.
    pub frame_timeout_ms: u64,
    /// First reconnect delay after the port closes or cannot be opened.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay (the delay doubles up to it).
    pub reconnect_max_ms: u64,
}

impl Default for SerialConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/dev/ttyACM0"),
            baud: 115_200,
            read: None,
            delimiter: "\n".into(),
            read_format: None,
            read_keys: None,
            write_format: None,
            write_keys: None,
            start_byte: None,
            frame_timeout_ms: 100,
            reconnect_min_ms: 100,
            reconnect_max_ms: 2000,
        }
    }
}

/// Why the serial link refused a setting or a message.
#[derive(Debug, Error)]
pub enum SerialError {
    /// A `[serial]` setting is unusable.
    #[error("invalid serial setting {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A message could not be packed into the write struct.
    #[error(transparent)]
    Struct(#[from] StructError),
    /// The port is not open right now (unplugged, or not yet opened).
    #[error("serial port {0} is not connected")]
    NotConnected(String),
    /// Too many writes are waiting.
    #[error("serial write queue is full ({} messages)", super::link::WRITE_QUEUE)]
    Busy,
    /// The port failed while writing.
    #[error("serial write failed: {0}")]
    Write(String),
    /// The connection was closed.
    #[error("the serial connection is closed")]
    Closed,
}

impl SerialConfig {
    /// The read mode in force.
    pub fn read_mode(&self) -> ReadMode {
        self.read.unwrap_or(if self.read_format.is_some() {
            ReadMode::Struct
        } else {
            ReadMode::Lines
        })
    }

    /// The outgoing struct codec, if `write_format` is set.
    pub fn write_codec(&self) -> Result<Option<StructCodec>, SerialError> {
        self.write_format
            .as_deref()
            .map(|f| StructCodec::new(f, self.write_keys.clone()))
            .transpose()
            .map_err(SerialError::from)
    }

    /// Checks every setting; formats are parsed so errors show at start-up.
    pub fn validate(&self) -> Result<(), SerialError> {
        let err = |field, reason: String| Err(SerialError::Config { field, reason });
        if self.path.as_os_str().is_empty() {
            return err("serial.path", "must name a device".into());
        }
        if !(50..=4_000_000).contains(&self.baud) {
            return err(
                "serial.baud",
                format!("{} must be in 50..=4000000", self.baud),
            );
        }
        if self.delimiter.is_empty() {
            return err("serial.delimiter", "must not be empty".into());
        }
        if !(1..=10_000).contains(&self.frame_timeout_ms) {
            return err(
                "serial.frame_timeout_ms",
                format!("{} must be in 1..=10000", self.frame_timeout_ms),
            );
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return err(
                "serial.reconnect_min_ms",
                format!(
                    "{} must be at least 1 and at most reconnect_max_ms ({})",
                    self.reconnect_min_ms, self.reconnect_max_ms
                ),
            );
        }
        if self.write_keys.is_some() && self.write_format.is_none() {
            return err("serial.write_keys", "needs write_format".into());
        }
        if self.read_keys.is_some() && self.read_format.is_none() {
            return err("serial.read_keys", "needs read_format".into());
        }
        match (self.read_mode(), &self.read_format) {
            (ReadMode::Struct, None) => {
                return err("serial.read", "\"struct\" needs read_format".into())
            }
            (ReadMode::Lines | ReadMode::Raw, Some(_)) => {
                return err(
                    "serial.read_format",
                    "is only used with read = \"struct\"".into(),
                )
            }
            _ => {}
        }
        self.write_codec()?;
        self.framing()?;
        Ok(())
    }

    /// How incoming bytes are cut, checked ([`Framing::check`]).
    pub(crate) fn framing(&self) -> Result<Framing, SerialError> {
        let framing = match self.read_mode() {
            ReadMode::Lines => Framing::Lines {
                delimiter: self.delimiter.as_bytes().to_vec(),
            },
            ReadMode::Raw => Framing::Raw,
            ReadMode::Struct => {
                let format = self.read_format.as_deref().unwrap_or_default();
                let codec = StructCodec::new(format, self.read_keys.clone())?;
                if codec.size() == 0 {
                    return Err(SerialError::Config {
                        field: "serial.read_format",
                        reason: format!("{format:?} describes an empty struct"),
                    });
                }
                Framing::Struct {
                    codec,
                    start_byte: self.start_byte,
                }
            }
        };
        framing.check()?;
        Ok(framing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_get_clear_errors() {
        let base = SerialConfig::default();
        base.validate().unwrap();
        let cases: Vec<(SerialConfig, &str)> = vec![
            (
                SerialConfig {
                    baud: 0,
                    ..base.clone()
                },
                "serial.baud",
            ),
            (
                SerialConfig {
                    delimiter: String::new(),
                    ..base.clone()
                },
                "serial.delimiter",
            ),
            (
                SerialConfig {
                    read: Some(ReadMode::Struct),
                    ..base.clone()
                },
                "needs read_format",
            ),
            (
                SerialConfig {
                    read: Some(ReadMode::Raw),
                    read_format: Some("<B".into()),
                    ..base.clone()
                },
                "serial.read_format",
            ),
            (
                SerialConfig {
                    read_format: Some("<Z".into()),
                    ..base.clone()
                },
                "unknown code 'Z'",
            ),
            (
                SerialConfig {
                    read_format: Some("<0h".into()),
                    ..base.clone()
                },
                "empty struct",
            ),
            (
                SerialConfig {
                    write_format: Some("<hB".into()),
                    write_keys: Some(vec!["a".into()]),
                    ..base.clone()
                },
                "1 keys for 2 fields",
            ),
            (
                SerialConfig {
                    write_keys: Some(vec!["a".into()]),
                    ..base.clone()
                },
                "needs write_format",
            ),
            (
                SerialConfig {
                    reconnect_min_ms: 5000,
                    ..base.clone()
                },
                "reconnect_min_ms",
            ),
        ];
        for (config, expected) in cases {
            let err = match config.validate() {
                Ok(()) => panic!("{config:?} was accepted, wanted {expected}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn the_framing_itself_refuses_an_empty_delimiter() {
        // Even without validate(), an empty delimiter never reaches the framer (where
        // it used to panic on the first byte).
        let config = SerialConfig {
            delimiter: String::new(),
            ..SerialConfig::default()
        };
        let err = config.framing().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid serial setting serial.delimiter: must not be empty: it is what ends each line"
        );
    }
}

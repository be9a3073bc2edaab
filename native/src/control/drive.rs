//! Driving the motors: from the hub's [`DriveState`] to motor commands on the serial
//! struct, at a fixed rate, with the dead-man stop.
//!
//! [`DriveMapping`] (from the `[drive]` config section) turns a drive state into the
//! JSON object the serial write struct packs: differential (tank) mixing or direct
//! forward/turn, scaling, a centre offset, limits, inversion, and constants for the
//! struct's other fields. [`DriveController`] writes the mapped command at `rate_hz`,
//! and writes the stop command at once when the hub stops the drive (the driver went
//! silent for `[control] deadman_ms`, left, or the robot shuts down). The silence detection and
//! the one-driver rule live in [`super::hub`].
//!
//! ```toml
//! [serial]
//! path = "/dev/ttyACM0"
//! write_format = "<Bhh"
//! write_keys = ["cmd", "left", "right"]
//!
//! [drive]
//! mixing = "differential"   # or "direct": outputs are forward, turn
//! fields = ["left", "right"]
//! scale = 255               # full stick = 255
//! limit = 200               # but never more than 200
//! constants = { cmd = 1 }
//! rate_hz = 20
//!
//! [control]
//! deadman_ms = 300          # the driver's silence that stops the motors
//! ```

use super::hub::ControlHub;
use crate::serial::structs::{Code, StructCodec};
use crate::serial::{SerialConnection, SerialError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared_protocol::DriveState;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;

/// How forward/turn become the two outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mixing {
    /// Tank mixing: left = forward + turn, right = forward - turn, both scaled down
    /// together when one exceeds 1 (the turn/forward ratio is kept).
    Differential,
    /// Outputs are forward and turn as they are (a steering servo and a motor).
    Direct,
}

/// The `[drive]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveConfig {
    /// The driver's silence, in milliseconds, that stops the motors (dead-man stop).
    /// Kept for configs written before `[control] deadman_ms`; when set, it wins.
    pub deadman_ms: Option<u64>,
    /// Motor commands written per second.
    pub rate_hz: f64,
    /// How forward/turn become the two outputs.
    pub mixing: Mixing,
    /// The write-struct keys receiving the two outputs (left, right; or forward, turn).
    pub fields: [String; 2],
    /// An output of 1 becomes this value.
    pub scale: f64,
    /// Largest magnitude written (after scaling); defaults to `scale`.
    pub limit: Option<f64>,
    /// Added to every output after scaling and limiting (e.g. 90 for hobby servos).
    pub center: f64,
    /// Negate an output (a motor mounted the other way round).
    pub invert: [bool; 2],
    /// Values for the write struct's other fields.
    pub constants: BTreeMap<String, Value>,
}

impl Default for DriveConfig {
    fn default() -> Self {
        Self {
            deadman_ms: None,
            rate_hz: 20.0,
            mixing: Mixing::Differential,
            fields: ["left".into(), "right".into()],
            scale: 255.0,
            limit: None,
            center: 0.0,
            invert: [false, false],
            constants: BTreeMap::new(),
        }
    }
}

/// Why a drive mapping was refused.
#[derive(Debug, Error)]
pub enum DriveError {
    /// A `[drive]` setting is unusable.
    #[error("invalid drive setting {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Writing to the serial link failed.
    #[error(transparent)]
    Serial(#[from] SerialError),
}

impl DriveConfig {
    /// Checks the settings that need no serial struct.
    pub fn validate(&self) -> Result<(), DriveError> {
        let err = |field, reason: String| Err(DriveError::Config { field, reason });
        if let Some(ms) = self.deadman_ms {
            if !super::config::DEADMAN_MS.contains(&ms) {
                return err(
                    "drive.deadman_ms",
                    format!("{ms} must be in {:?}", super::config::DEADMAN_MS),
                );
            }
        }
        if !(self.rate_hz.is_finite() && (1.0..=1000.0).contains(&self.rate_hz)) {
            return err(
                "drive.rate_hz",
                format!("{} must be in 1..=1000", self.rate_hz),
            );
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return err("drive.scale", format!("{} must be above 0", self.scale));
        }
        if let Some(limit) = self.limit {
            if !(limit.is_finite() && limit >= 0.0) {
                return err("drive.limit", format!("{limit} must be 0 or more"));
            }
        }
        if !self.center.is_finite() {
            return err("drive.center", "must be a finite number".into());
        }
        if self.fields[0] == self.fields[1] {
            return err(
                "drive.fields",
                format!("both outputs go to {:?}", self.fields[0]),
            );
        }
        Ok(())
    }
}

/// Turns drive states into write-struct messages.
#[derive(Debug, Clone)]
pub struct DriveMapping {
    config: DriveConfig,
    /// Whether each output is an integer field (rounded) or a float one.
    integer: [bool; 2],
}

impl DriveMapping {
    /// Checks `config` against the serial write struct: both output fields exist, every
    /// other field has a constant, and the stop and full-scale commands pack.
    pub fn new(config: DriveConfig, codec: Option<&StructCodec>) -> Result<Self, DriveError> {
        config.validate()?;
        let err = |field, reason: String| DriveError::Config { field, reason };
        let codec = codec.ok_or_else(|| {
            err(
                "drive",
                "needs a serial write struct: set serial.write_format and serial.write_keys".into(),
            )
        })?;
        let keys = codec.keys().ok_or_else(|| {
            err(
                "drive",
                "needs serial.write_keys to know which fields are motors".into(),
            )
        })?;
        let mut integer = [true, true];
        for (i, field) in config.fields.iter().enumerate() {
            let at = keys.iter().position(|k| k == field).ok_or_else(|| {
                err(
                    "drive.fields",
                    format!("{field:?} is not in serial.write_keys {keys:?}"),
                )
            })?;
            integer[i] = !matches!(codec.format().fields()[at].code, Code::F32 | Code::F64);
        }
        for key in keys {
            if !config.fields.contains(key) && !config.constants.contains_key(key) {
                return Err(err(
                    "drive.constants",
                    format!("write field {key:?} needs a value in drive.constants"),
                ));
            }
        }
        for key in config.constants.keys() {
            if !keys.contains(key) || config.fields.contains(key) {
                return Err(err(
                    "drive.constants",
                    format!("{key:?} is not one of the struct's other fields"),
                ));
            }
        }
        let mapping = Self { config, integer };
        for (forward, turn) in [(0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
            let state = DriveState {
                forward,
                turn,
                seq: 0,
            };
            codec.encode(&mapping.command(&state)).map_err(|e| {
                err(
                    "drive",
                    format!("the command for forward={forward}, turn={turn} does not fit the write struct: {e}"),
                )
            })?;
        }
        Ok(mapping)
    }

    /// The two outputs in `[-1, 1]` before scaling.
    pub fn mix(&self, state: &DriveState) -> [f64; 2] {
        let (f, t) = (state.forward, state.turn);
        match self.config.mixing {
            Mixing::Direct => [f, t],
            Mixing::Differential => {
                let (l, r) = (f + t, f - t);
                let biggest = l.abs().max(r.abs()).max(1.0);
                [l / biggest, r / biggest]
            }
        }
    }

    /// The write-struct message for `state`.
    pub fn command(&self, state: &DriveState) -> Value {
        let c = &self.config;
        let limit = c.limit.unwrap_or(c.scale);
        let mut out: Map<String, Value> = c
            .constants
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (i, x) in self.mix(state).into_iter().enumerate() {
            let x = if c.invert[i] { -x } else { x };
            let y = (x * c.scale).clamp(-limit, limit) + c.center;
            let value = if self.integer[i] {
                Value::from(y.round() as i64)
            } else {
                Value::from(y)
            };
            out.insert(c.fields[i].clone(), value);
        }
        Value::Object(out)
    }

    /// The stop command.
    pub fn stop(&self) -> Value {
        self.command(&DriveState::STOP)
    }

    /// Time between two motor commands (`1 / rate_hz`).
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.config.rate_hz)
    }
}

/// Counters of the drive loop.
#[derive(Debug, Default)]
pub struct DriveCounters {
    /// Commands written.
    pub commands: AtomicU64,
    /// Stop commands written when the drive stopped.
    pub stops: AtomicU64,
    /// Writes that failed (port unplugged...).
    pub failed: AtomicU64,
}

/// Writes motor commands from the hub to the serial link until stopped.
pub struct DriveController {
    serial: SerialConnection,
    mapping: DriveMapping,
    task: JoinHandle<()>,
    counters: Arc<DriveCounters>,
}

impl DriveController {
    /// Starts the fixed-rate loop. Must be called inside a tokio runtime.
    pub fn start(hub: &ControlHub, serial: SerialConnection, mapping: DriveMapping) -> Self {
        let counters = Arc::new(DriveCounters::default());
        let task = tokio::spawn(drive_loop(
            hub.drive(),
            serial.clone(),
            mapping.clone(),
            counters.clone(),
        ));
        Self {
            serial,
            mapping,
            task,
            counters,
        }
    }

    /// What the loop did so far.
    pub fn counters(&self) -> &DriveCounters {
        &self.counters
    }

    /// Stops the loop and writes the stop command, waiting until the port took it.
    pub async fn shutdown(&self) -> Result<(), DriveError> {
        self.task.abort();
        let bytes = self.serial.encode(&self.mapping.stop())?;
        tokio::time::timeout(Duration::from_secs(1), self.serial.write(bytes))
            .await
            .map_err(|_| SerialError::Write("the stop command took over 1 s".into()))??;
        self.counters.stops.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for DriveController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive_loop(
    mut drive: tokio::sync::watch::Receiver<DriveState>,
    serial: SerialConnection,
    mapping: DriveMapping,
    counters: Arc<DriveCounters>,
) {
    let mut tick = tokio::time::interval(mapping.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_stopped = true;
    loop {
        let stop_now = tokio::select! {
            _ = tick.tick() => false,
            changed = drive.changed() => {
                if changed.is_err() {
                    return;
                }
                let stopped = drive.borrow_and_update().is_stopped();
                // A stop is written at once, not at the next tick.
                let stop_now = stopped && !was_stopped;
                was_stopped = stopped;
                if !stop_now {
                    continue;
                }
                true
            }
        };
        let state = *drive.borrow();
        let message = if stop_now {
            mapping.stop()
        } else {
            mapping.command(&state)
        };
        match serial.send(&message) {
            Ok(()) => {
                counters.commands.fetch_add(1, Ordering::Relaxed);
                if stop_now {
                    counters.stops.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("motor stop command written");
                }
            }
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("motor command not written: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codec(format: &str, keys: &[&str]) -> StructCodec {
        StructCodec::new(format, Some(keys.iter().map(|k| k.to_string()).collect())).unwrap()
    }

    fn state(forward: f64, turn: f64) -> DriveState {
        DriveState::new(forward, turn, 0).unwrap()
    }

    #[test]
    fn differential_mixing_scales_limits_and_inverts() {
        let c = codec("<Bhh", &["cmd", "left", "right"]);
        let config = DriveConfig {
            limit: Some(200.0),
            constants: [("cmd".to_string(), json!(1))].into(),
            invert: [false, true],
            ..DriveConfig::default()
        };
        let m = DriveMapping::new(config, Some(&c)).unwrap();
        assert_eq!(m.stop(), json!({"cmd": 1, "left": 0, "right": 0}));
        assert_eq!(
            m.command(&state(0.5, 0.0)),
            json!({"cmd": 1, "left": 128, "right": -128})
        );
        // Full forward + full right: left saturates, right stops; limit 200 applies.
        assert_eq!(
            m.command(&state(1.0, 1.0)),
            json!({"cmd": 1, "left": 200, "right": 0})
        );
        assert_eq!(m.mix(&state(0.5, 1.0)), [1.0, -1.0 / 3.0]);
        assert_eq!(
            c.encode(&m.command(&state(0.0, -0.5))).unwrap(),
            [1, 0x80, 0xFF, 0x80, 0xFF] // left -128, right -(+128) inverted = -128
        );
    }

    #[test]
    fn direct_mapping_to_a_servo_with_a_centre_and_float_fields() {
        let c = codec("<fB", &["throttle", "steer"]);
        let config = DriveConfig {
            mixing: Mixing::Direct,
            fields: ["throttle".into(), "steer".into()],
            scale: 45.0,
            center: 90.0,
            ..DriveConfig::default()
        };
        let m = DriveMapping::new(config, Some(&c)).unwrap();
        assert_eq!(
            m.command(&state(0.5, -1.0)),
            json!({"throttle": 112.5, "steer": 45})
        );
        assert_eq!(m.stop(), json!({"throttle": 90.0, "steer": 90}));
    }

    #[test]
    fn mappings_that_cannot_work_are_refused_at_start() {
        let c = codec("<bb", &["left", "right"]);
        let cases: Vec<(DriveConfig, Option<&StructCodec>, &str)> = vec![
            (DriveConfig::default(), None, "needs a serial write struct"),
            (
                DriveConfig::default(),
                Some(&c),
                "\"left\": 255 is out of range for 'b'",
            ),
            (
                DriveConfig {
                    fields: ["a".into(), "right".into()],
                    scale: 100.0,
                    ..DriveConfig::default()
                },
                Some(&c),
                "\"a\" is not in serial.write_keys",
            ),
            (
                DriveConfig {
                    scale: 100.0,
                    constants: [("x".to_string(), json!(1))].into(),
                    ..DriveConfig::default()
                },
                Some(&c),
                "\"x\" is not one of the struct's other fields",
            ),
            (
                DriveConfig {
                    deadman_ms: Some(0),
                    ..DriveConfig::default()
                },
                Some(&c),
                "drive.deadman_ms: 0 must be in 20..=600000",
            ),
            (
                DriveConfig {
                    deadman_ms: Some(600_001),
                    ..DriveConfig::default()
                },
                Some(&c),
                "drive.deadman_ms: 600001 must be in 20..=600000",
            ),
            (
                DriveConfig {
                    rate_hz: 0.0,
                    ..DriveConfig::default()
                },
                Some(&c),
                "drive.rate_hz",
            ),
        ];
        for (config, codec, expected) in cases {
            let err = DriveMapping::new(config, codec).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        // The ends of the dead-man range are allowed: 20 ms and ten minutes.
        for deadman_ms in [20, 600_000] {
            let config = DriveConfig {
                deadman_ms: Some(deadman_ms),
                scale: 100.0,
                ..DriveConfig::default()
            };
            DriveConfig::validate(&config).unwrap();
            assert!(DriveMapping::new(config, Some(&c)).is_ok(), "{deadman_ms}");
        }
        let three = codec("<bbB", &["left", "right", "cmd"]);
        let err = DriveMapping::new(
            DriveConfig {
                scale: 100.0,
                ..DriveConfig::default()
            },
            Some(&three),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"cmd\" needs a value"), "{err}");
    }
}

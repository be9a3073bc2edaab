//! The `[control]` settings: the dead-man stop.

use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Dead-man times the robot accepts, in milliseconds (20 ms to 10 minutes).
pub const DEADMAN_MS: RangeInclusive<u64> = 20..=600_000;

/// The `[control]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// The driver's silence, in milliseconds, after which the drive stops and is
    /// released (the dead-man stop).
    pub deadman_ms: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { deadman_ms: 300 }
    }
}

impl ControlConfig {
    /// The dead-man time.
    pub fn deadman(&self) -> Duration {
        Duration::from_millis(self.deadman_ms)
    }

    /// Checks the range: the setting's name and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if DEADMAN_MS.contains(&self.deadman_ms) {
            Ok(())
        } else {
            Err((
                "control.deadman_ms",
                format!("{} must be in {DEADMAN_MS:?}", self.deadman_ms),
            ))
        }
    }
}

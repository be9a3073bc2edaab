//! Control: where drivers' messages land and how they become motor commands.
//!
//! - [`config`]: the `[control]` settings (the dead-man time);
//! - [`hub`]: the [`ControlHub`]: the latest drive state, every message as an event,
//!   one driver at a time, the dead-man stop;
//! - [`drive`]: the [`DriveController`]: drive states mapped to the microcontroller's
//!   motor struct ([`DriveMapping`], pure and unit-tested) and written at a steady
//!   rate, with the stop written at once when control goes silent.

pub mod config;
pub mod drive;
pub mod hub;

pub use config::ControlConfig;
pub use drive::{DriveConfig, DriveController, DriveCounters, DriveError, DriveMapping, Mixing};
pub use hub::{ControlEvent, ControlHub, ControlRefused, DriveNotice, DriveSource, PeerId};

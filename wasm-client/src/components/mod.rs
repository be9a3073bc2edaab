//! The app's components.

mod connection_badge;
mod help;
mod joystick;
mod telemetry_overlay;
mod video_view;

pub use connection_badge::ConnectionBadge;
pub use help::{Help, HelpButton};
pub use joystick::Joystick;
pub use telemetry_overlay::TelemetryOverlay;
pub use video_view::VideoView;

//! The app's components.

mod connection_badge;
mod help;
mod joystick;
mod media_controls;
mod plots;
mod robot_values;
mod settings_panel;
mod telemetry_overlay;
mod tools;
mod video_view;

pub use connection_badge::ConnectionBadge;
pub use help::{Help, HelpButton};
pub use joystick::Joystick;
pub use media_controls::MediaControls;
pub use plots::Plots;
pub use robot_values::RobotValues;
pub use settings_panel::SettingsPanel;
pub use telemetry_overlay::TelemetryOverlay;
pub use tools::Tools;
pub use video_view::VideoView;

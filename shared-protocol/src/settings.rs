//! Live video settings: what an admin asks the robot to change while it streams
//! (`{"type":"settings","width":1280,"height":720}`, every field optional), and the
//! robot's answer to every peer with the settings now in force (the same shape, every
//! field set).

use crate::ProtocolError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest camera name accepted (`/dev/video0`, `test-pattern`, `file:PATH`).
pub const MAX_CAMERA_LEN: usize = 256;
/// The most cameras a settings message lists.
pub const MAX_CAMERAS: usize = 32;

/// Video settings; in a request, the fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Frames per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// The encoder's bitrate (with congestion control: its ceiling), kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    /// The camera, as `--camera` takes it: `auto`, `test-pattern`, `/dev/videoN`,
    /// `file:PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// In the robot's announcement: the cameras it can switch to (ignored in a
    /// request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cameras: Option<Vec<String>>,
}

impl VideoSettings {
    /// Reads a `{"type":"settings",...}` message (its `type` already checked).
    pub fn from_message(mut value: Value) -> Result<Self, ProtocolError> {
        if let Some(object) = value.as_object_mut() {
            object.remove("type");
        }
        let settings: Self = serde_json::from_value(value)
            .map_err(|e| ProtocolError::malformed("settings message", e))?;
        let mut names = settings
            .camera
            .iter()
            .chain(settings.cameras.iter().flatten());
        if names.any(|c| c.len() > MAX_CAMERA_LEN) {
            return Err(ProtocolError::malformed(
                "settings message",
                format!("a camera name is longer than {MAX_CAMERA_LEN} bytes"),
            ));
        }
        if settings
            .cameras
            .as_ref()
            .is_some_and(|c| c.len() > MAX_CAMERAS)
        {
            return Err(ProtocolError::malformed(
                "settings message",
                format!("more than {MAX_CAMERAS} cameras"),
            ));
        }
        Ok(settings)
    }

    /// The message: `{"type":"settings",...}` with the fields that are set.
    pub fn to_message(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("settings serialise");
        if let Some(object) = value.as_object_mut() {
            object.insert("type".into(), Value::from("settings"));
        }
        value
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_round_trip_and_bad_ones_are_named() {
        let s = VideoSettings {
            width: Some(1280),
            height: Some(720),
            camera: Some("test-pattern".into()),
            ..VideoSettings::default()
        };
        let message = s.to_message();
        assert_eq!(
            message,
            json!({"type": "settings", "width": 1280, "height": 720, "camera": "test-pattern"})
        );
        assert_eq!(VideoSettings::from_message(message).unwrap(), s);
        assert!(VideoSettings::from_message(json!({"type": "settings"}))
            .unwrap()
            .is_empty());
        for (bad, why) in [
            (json!({"type": "settings", "width": -1}), "invalid value"),
            (json!({"type": "settings", "width": "wide"}), "invalid type"),
            (
                json!({"type": "settings", "colour": 1}),
                "unknown field `colour`",
            ),
            (
                json!({"type": "settings", "camera": "x".repeat(300)}),
                "longer than 256",
            ),
            (
                json!({"type": "settings", "cameras": ["x".repeat(300)]}),
                "longer than 256",
            ),
            (
                json!({"type": "settings", "cameras": vec!["auto"; 33]}),
                "more than 32 cameras",
            ),
        ] {
            let err = VideoSettings::from_message(bad.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

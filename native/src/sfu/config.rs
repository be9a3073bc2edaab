//! The `[sfu]` settings: which Janus VideoRoom the robot publishes to.

use serde::{Deserialize, Serialize};

/// A Janus VideoRoom to publish the robot's one stream to.
///
/// ```toml
/// [sfu]
/// url = "http://janus.example.org:8088/janus"   # Janus's HTTP API
/// room = 1234                                    # an existing VideoRoom room
/// # secret = "room-secret"   # lets the robot kick its own stale publisher
/// # pin = "room-pin"         # when the room has one
/// publisher_id = 1           # fixed, so a restarted robot takes its slot back
/// display = "robot"
/// audio = true               # publish the robot's sound too, when it has a source
/// # watch_url = "https://sfu.example.org/janus"  # pages watch through Janus
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfuConfig {
    /// Janus's HTTP API, e.g. `http://127.0.0.1:8088/janus`.
    pub url: String,
    /// The VideoRoom room (it must exist: Janus's config or `create`).
    pub room: u64,
    /// The room's secret: with it the robot kicks a stale publisher of its own id (a
    /// session left from before a restart) instead of waiting for Janus to time it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The room's PIN, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The robot's publisher id in the room: fixed, so viewers subscribe to a known
    /// feed and a restarted robot takes its own place back.
    #[serde(default = "default_publisher_id")]
    pub publisher_id: u64,
    /// The name the room shows for the robot.
    #[serde(default = "default_display")]
    pub display: String,
    /// Publish the robot's sound (Opus) too, when it has a source.
    #[serde(default = "default_audio")]
    pub audio: bool,
    /// Janus's HTTP API as browsers reach it (e.g. `https://sfu.example.org/janus`
    /// behind a TLS proxy). Set, the robot tells its pages, in its stream figures, to
    /// watch through Janus: they take video and sound from the room and keep only
    /// their data channels to the robot (driving, telemetry). Unset, pages take video
    /// from the robot and the room serves other players.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_url: Option<String>,
}

fn default_publisher_id() -> u64 {
    1
}

fn default_display() -> String {
    "robot".into()
}

fn default_audio() -> bool {
    true
}

impl SfuConfig {
    /// Janus at `url`, room `room`, the defaults otherwise.
    pub fn new(url: impl Into<String>, room: u64) -> Self {
        Self {
            url: url.into(),
            room,
            secret: None,
            pin: None,
            publisher_id: default_publisher_id(),
            display: default_display(),
            audio: default_audio(),
            watch_url: None,
        }
    }

    /// Checks the settings: the setting's name and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        check_api("sfu.url", &self.url)?;
        if let Some(watch) = &self.watch_url {
            check_api("sfu.watch_url", watch)?;
        }
        if self.room == 0 {
            return Err(("sfu.room", "must be a room number above 0".into()));
        }
        if self.publisher_id == 0 {
            return Err(("sfu.publisher_id", "must be above 0".into()));
        }
        Ok(())
    }

    /// The robot as the room's publisher.
    pub fn publisher(&self) -> shared_protocol::janus::Publisher<'_> {
        shared_protocol::janus::Publisher {
            room: self.room,
            id: self.publisher_id,
            display: &self.display,
            pin: self.pin.as_deref(),
        }
    }

    /// The API's base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        self.url.trim_end_matches('/').to_owned()
    }
}

/// `url` must be Janus's HTTP API: an absolute http(s) URL.
fn check_api(setting: &'static str, url: &str) -> Result<(), (&'static str, String)> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| (setting, format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err((
            setting,
            format!("{url:?} must be Janus's HTTP API, http(s)://HOST:PORT/janus"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_refuses_bad_values() {
        let c: SfuConfig =
            toml::from_str("url = \"http://127.0.0.1:8088/janus/\"\nroom = 7\n").unwrap();
        assert_eq!(c, SfuConfig::new("http://127.0.0.1:8088/janus/", 7));
        c.validate().unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8088/janus");
        let bad = |edit: fn(&mut SfuConfig)| {
            let mut c = SfuConfig::new("http://h:8088/janus", 1);
            edit(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(|c| c.url = "ws://h/janus".into()), "sfu.url");
        assert_eq!(bad(|c| c.url = "janus".into()), "sfu.url");
        assert_eq!(bad(|c| c.room = 0), "sfu.room");
        assert_eq!(bad(|c| c.publisher_id = 0), "sfu.publisher_id");
        assert_eq!(
            bad(|c| c.watch_url = Some("/janus".into())),
            "sfu.watch_url"
        );
        assert!(toml::from_str::<SfuConfig>("url = \"x\"\nroom = 1\nmountpoint = 2\n").is_err());
    }
}

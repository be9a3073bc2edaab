//! The robot's configuration: one typed struct, read from an optional TOML file (the
//! binary then applies its command-line flags) and validated once.
//!
//! Each concern owns its section's type ([`VideoConfig`] in `video`, [`WebRtcConfig`]
//! in `rtc`, [`SerialConfig`] in `serial`, [`DriveConfig`] and [`ControlConfig`] in
//! `control`); this module puts them together and checks what spans sections.
//!
//! ```toml
//! # robot.toml
//! listen = "0.0.0.0:8080"
//! www = "www/dist"
//! cors_origins = ["http://localhost:5173"]   # other sites' pages allowed to connect
//!
//! [video]
//! camera = "auto"          # or "test-pattern", "/dev/video0", "file:clip.h264"
//! width = 640
//! height = 480
//! fps = 30
//! bitrate_kbps = 1000
//! congestion_control = true   # follow the viewers' bandwidth (false: fixed bitrate)
//! min_kbps = 150
//! # max_kbps = 2500        # default: bitrate_kbps
//! follow = "driver"        # or "slowest": whose bandwidth sets the bitrate
//! keyframe_interval_s = 2.0
//! encoder = "auto"         # or "software" (openh264), "hardware" (V4L2 M2M)
//! # encoder_device = "/dev/video11"   # the hardware encoder; default: the first found
//!
//! [audio]
//! source = "auto"         # or "none", "tone", "alsa:hw:1,0", "file:sound.wav"
//! speaker = "auto"        # or "none", "alsa:default", "file:heard.wav"
//! play_from = "driver"    # or "everyone": whose microphone the speaker plays
//!
//! [webrtc]
//! ice_udp = ["0.0.0.0:0", "127.0.0.1:0"]
//! ice_servers = [{ urls = ["turn:turn.example.org:3478"], username = "robot", credential = "secret" }]
//!
//! # Optional hardware: an Arduino on a serial port, driven by the drive state.
//! # See the `serial` and `control::drive` modules for every key.
//! [serial]
//! path = "/dev/ttyACM0"
//! write_format = "<hh"
//! write_keys = ["left", "right"]
//!
//! [drive]
//! rate_hz = 20
//!
//! [control]
//! deadman_ms = 300        # the driver's silence that stops the motors
//!
//! # Who may connect (the library's default: anyone; the binary's: a generated
//! # driver token). See `auth::AuthConfig`.
//! [auth]
//! driver = ["a-long-random-driver-token"]
//! viewer = ["a-long-random-viewer-token"]
//!
//! # HTTPS (the library's default: off; the binary's: on, --no-tls).
//! [tls]
//! enabled = true          # a certificate generated once and kept (or cert/key)
//!
//! # Reach the robot through a relay room (rtcbot-relay, rtcbot.dev); see `relay`.
//! [relay]
//! url = "wss://relay.example.org/my-robot"
//! key = "a-long-random-room-key"   # claims the room for this robot
//! role = "driver"                   # what an offer through the room may do
//!
//! # Publish the one stream to a Janus VideoRoom; see `sfu`.
//! [sfu]
//! url = "http://janus.example.org:8088/janus"
//! room = 1234
//! ```

pub use crate::audio::config::AudioConfig;
pub use crate::auth::AuthConfig;
pub use crate::control::{ControlConfig, DriveConfig};
pub use crate::relay::RelayConfig;
pub use crate::rtc::config::{IceServer, WebRtcConfig};
pub use crate::serial::SerialConfig;
pub use crate::sfu::SfuConfig;
pub use crate::video::config::{EncoderChoice, VideoConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Everything the robot can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP address to serve the page and `/connect` on.
    pub listen: SocketAddr,
    /// Folder holding the built browser bundle (`trunk build` output).
    pub www: PathBuf,
    /// Web origins (e.g. `http://localhost:5173`) whose pages may call `/connect`
    /// from a browser; `*` allows any. Empty (the default) allows only the robot's own
    /// page, so no other website a driver visits can take the robot.
    pub cors_origins: Vec<String>,
    /// Video pipeline settings.
    pub video: VideoConfig,
    /// Sound both ways.
    pub audio: AudioConfig,
    /// WebRTC settings.
    pub webrtc: WebRtcConfig,
    /// The control hub: the dead-man stop.
    pub control: ControlConfig,
    /// The serial link to a microcontroller; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<SerialConfig>,
    /// Motor mapping; needs `[serial]` with a write struct.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive: Option<DriveConfig>,
    /// Tokens and roles; `None` (the library's default) lets anyone in as admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// HTTPS; `None` (the library's default) serves plain HTTP. The binary reads a
    /// missing `[tls]` as on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Where the robot keeps what it generates once (the driver token, the TLS
    /// certificate); default [`auth::store::default_state_dir`](crate::auth::store::default_state_dir).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// A relay room the robot connects out to and answers offers from; none by
    /// default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayConfig>,
    /// A Janus VideoRoom the robot publishes its one stream to; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sfu: Option<SfuConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            www: PathBuf::from("www/dist"),
            cors_origins: Vec::new(),
            video: VideoConfig::default(),
            audio: AudioConfig::default(),
            webrtc: WebRtcConfig::default(),
            control: ControlConfig::default(),
            serial: None,
            drive: None,
            auth: None,
            tls: None,
            state_dir: None,
            relay: None,
            sfu: None,
        }
    }
}

/// `[tls]`: HTTPS on the robot's port. The binary serves it unless `enabled = false`
/// or `--no-tls`.
///
/// ```toml
/// [tls]
/// enabled = true
/// # cert = "/etc/rtcbot/cert.pem"   # both, or neither (then a self-signed one is
/// # key = "/etc/rtcbot/key.pem"     # generated once in the state folder and kept)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve HTTPS (and redirect plain HTTP to it).
    pub enabled: bool,
    /// A PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// Its PEM private key.
    pub key: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cert: None,
            key: None,
        }
    }
}

impl TlsConfig {
    /// Checks that `cert` and `key` come together.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match (&self.cert, &self.key) {
            (Some(_), None) => Err(("tls.key", "a certificate needs its key".into())),
            (None, Some(_)) => Err(("tls.cert", "a key needs its certificate".into())),
            _ => Ok(()),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for [`Config`].
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said, with line and column.
        source: toml::de::Error,
    },
    /// The `[serial]` section is unusable.
    #[error(transparent)]
    Serial(#[from] crate::serial::SerialError),
    /// The `[drive]` section is unusable.
    #[error(transparent)]
    Drive(#[from] crate::control::DriveError),
    /// A value is outside what the robot can run with.
    #[error("invalid setting {field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses TOML text and checks the result.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges the types cannot express, and what spans sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |(field, reason)| ConfigError::Invalid { field, reason };
        self.video.validate().map_err(invalid)?;
        self.webrtc.validate().map_err(invalid)?;
        self.control.validate().map_err(invalid)?;
        self.audio
            .validate()
            .map_err(|reason| ConfigError::Invalid {
                field: "audio",
                reason,
            })?;
        if let Some(serial) = &self.serial {
            serial.validate()?;
        }
        if let Some(drive) = &self.drive {
            let codec = match &self.serial {
                Some(serial) => serial.write_codec()?,
                None => None,
            };
            crate::control::DriveMapping::new(drive.clone(), codec.as_ref())?;
        }
        if let Some(auth) = &self.auth {
            auth.validate().map_err(invalid)?;
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(invalid)?;
        }
        if let Some(relay) = &self.relay {
            relay.validate().map_err(invalid)?;
        }
        if let Some(sfu) = &self.sfu {
            sfu.validate().map_err(invalid)?;
        }
        for origin in &self.cors_origins {
            if origin != "*" && origin.parse::<axum::http::HeaderValue>().is_err() {
                return Err(invalid((
                    "cors_origins",
                    format!("{origin:?} is not a valid origin"),
                )));
            }
        }
        Ok(())
    }

    /// The driver's silence that stops the motors: `[drive] deadman_ms` when
    /// `[drive]` sets it (older configs), else `[control] deadman_ms`.
    pub fn deadman(&self) -> Duration {
        match self.drive.as_ref().and_then(|d| d.deadman_ms) {
            Some(ms) => Duration::from_millis(ms),
            None => self.control.deadman(),
        }
    }

    /// The state folder: `state_dir`, else the default.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(crate::auth::store::default_state_dir)
    }

    /// HTTPS in force: `None` for plain HTTP.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref().filter(|t| t.enabled)
    }

    /// The auth in force: `None` when anyone may connect.
    pub fn auth(&self) -> Option<&AuthConfig> {
        self.auth.as_ref().filter(|a| a.enabled)
    }

    /// When auth is on without a driver or admin token, adds the driver token kept
    /// in the state folder (generated on first use) and returns it with whether it is
    /// new; the binary does this, so the robot a user starts is never open.
    pub fn ensure_driver_token(
        &mut self,
    ) -> Result<Option<(String, bool)>, crate::auth::store::StoreError> {
        let dir = self.state_dir();
        let Some(auth) = self.auth.as_mut().filter(|a| a.enabled) else {
            return Ok(None);
        };
        if !auth.driver.is_empty() || !auth.admin.is_empty() {
            return Ok(None);
        }
        let (token, new) = crate::auth::store::driver_token(&dir)?;
        auth.driver.push(token.clone());
        Ok(Some((token, new)))
    }

    /// Time between two frames.
    pub fn frame_period(&self) -> Duration {
        self.video.frame_period()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_docs() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!((c.video.width, c.video.height, c.video.fps), (640, 480, 30));
        assert_eq!(Config::from_toml("").unwrap(), c);
    }

    #[test]
    fn toml_sections_combine_with_defaults() {
        let c =
            Config::from_toml("listen = \"127.0.0.1:9000\"\n[video]\nwidth = 1280\nheight = 720\n")
                .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.video.width, 1280);
        assert_eq!(c.video.fps, 30);
        assert_eq!(c.video.camera, crate::video::Camera::Auto);
        let c = Config::from_toml(
            "[video]\ncamera = \"file:clip.h264\"\n[control]\ndeadman_ms = 60000\n",
        )
        .unwrap();
        assert_eq!(
            c.video.camera,
            crate::video::Camera::File("clip.h264".into())
        );
        assert_eq!(c.deadman(), Duration::from_secs(60));
    }

    #[test]
    fn bad_config_gets_a_clear_error() {
        let cases = [
            ("[video]\nwidth = 641\n", "video.width"),
            ("[video]\nfps = 0\n", "video.fps"),
            ("[video]\ncamera = \"webcam\"\n", "video.camera"),
            ("[video]\ncolour = 1\n", "unknown field `colour`"),
            ("[video]\nencoder = \"gpu\"\n", "unknown variant `gpu`"),
            ("[video]\nmin_kbps = 10\n", "video.min_kbps"),
            (
                "[video]\nmin_kbps = 900\nmax_kbps = 500\n",
                "video.max_kbps",
            ),
            ("[video]\nmin_kbps = 2000\n", "video.min_kbps"),
            (
                "[video]\nfollow = \"fastest\"\n",
                "unknown variant `fastest`",
            ),
            (
                "[video]\nencoder = \"software\"\nencoder_device = \"/dev/video11\"\n",
                "video.encoder_device",
            ),
            ("listen = \"nowhere\"\n", "invalid"),
            ("[webrtc]\nice_udp = [\"x\"]\n", "webrtc.ice_udp"),
            (
                "[webrtc]\nice_servers = [{ urls = [\"http://x\"] }]\n",
                "webrtc.ice_servers",
            ),
            ("[video\n", "invalid config"),
            ("[serial]\nbaud = 0\n", "serial.baud"),
            ("[serial]\nwrite_format = \"<hZ\"\n", "unknown code 'Z'"),
            ("[serial]\nparity = 1\n", "unknown field `parity`"),
            ("[drive]\n", "needs a serial write struct"),
            ("[control]\ndeadman_ms = 5\n", "control.deadman_ms"),
            ("[auth]\ndriver = [\"short\"]\n", "auth.driver"),
            (
                "[auth]\nconnect_per_minute = 0\n",
                "auth.connect_per_minute",
            ),
            ("[auth]\nroles = 1\n", "unknown field `roles`"),
            ("[sfu]\nurl = \"ws://h/janus\"\nroom = 1\n", "sfu.url"),
            ("[sfu]\nurl = \"http://h/janus\"\nroom = 0\n", "sfu.room"),
            (
                "[serial]\nwrite_format = \"<bb\"\nwrite_keys = [\"left\", \"right\"]\n[drive]\n",
                "\"left\": 255 is out of range for 'b'",
            ),
        ];
        // What a user sees: the error and its causes, as the binary prints them.
        let full = |err: ConfigError| crate::error::chain(&err);
        for (text, expected) in cases {
            let err = full(Config::from_toml(text).unwrap_err());
            assert!(
                err.contains(expected),
                "{text:?} gave {err:?}, wanted {expected:?}"
            );
        }
        let err = full(Config::from_file(Path::new("/nonexistent/robot.toml")).unwrap_err());
        assert!(
            err.contains("cannot read config file /nonexistent/robot.toml: No such file"),
            "{err}"
        );
    }

    #[test]
    fn hardware_sections_parse() {
        let c = Config::from_toml(
            "[serial]\npath = \"/dev/ttyUSB0\"\nbaud = 57600\nwrite_format = \"<Bhh\"\n\
             write_keys = [\"cmd\", \"left\", \"right\"]\nstart_byte = 0xAA\n\
             [drive]\ndeadman_ms = 250\nlimit = 200\nconstants = { cmd = 1 }\n",
        )
        .unwrap();
        let serial = c.serial.as_ref().unwrap();
        assert_eq!((serial.baud, serial.start_byte), (57600, Some(0xAA)));
        assert_eq!(c.drive.as_ref().unwrap().deadman_ms, Some(250));
        assert_eq!(c.deadman(), Duration::from_millis(250));
    }
}

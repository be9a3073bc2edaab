//! The robot's configuration: one typed struct, read from an optional TOML file and
//! overridden by command-line flags.
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
//! keyframe_interval_s = 2.0
//! encoder = "auto"         # or "software" (openh264), "hardware" (V4L2 M2M)
//! # encoder_device = "/dev/video11"   # the hardware encoder; default: the first found
//!
//! [webrtc]
//! ice_udp = ["0.0.0.0:0", "127.0.0.1:0"]
//! ice_servers = [{ urls = ["turn:turn.example.org:3478"], username = "robot", credential = "secret" }]
//!
//! # Optional hardware: an Arduino on a serial port, driven by the drive state.
//! # See the `serial` and `drive` modules for every key.
//! [serial]
//! path = "/dev/ttyACM0"
//! write_format = "<hh"
//! write_keys = ["left", "right"]
//!
//! [drive]
//! deadman_ms = 300
//! ```

pub use crate::drive::DriveConfig;
pub use crate::serial::SerialConfig;
use clap::Parser;
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
    /// WebRTC settings.
    pub webrtc: WebRtcConfig,
    /// The serial link to a microcontroller; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<SerialConfig>,
    /// Motor mapping and dead-man stop; needs `[serial]` with a write struct.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive: Option<DriveConfig>,
    /// The control hub: the dead-man time when there is no `[drive]`.
    pub control: ControlConfig,
}

/// The `[control]` section: the control hub's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// The driver's silence, in milliseconds, that stops the drive and releases it
    /// (`[drive]`'s `deadman_ms` wins when `[drive]` is set).
    pub deadman_ms: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { deadman_ms: 300 }
    }
}

/// The video pipeline: source size and rate, encoder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// The video source: `auto` (the first V4L2 capture device, else the test
    /// pattern), `test-pattern`, a device path such as `/dev/video0`, or `file:PATH`
    /// (`.y4m` raw frames, encoded; `.h264`/`.264` Annex B, passed through).
    pub camera: String,
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target encoder bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Seconds between periodic keyframes (new viewers also get one at once).
    pub keyframe_interval_s: f64,
    /// Which H.264 encoder turns raw frames into video (cameras that give H.264 need
    /// none).
    pub encoder: EncoderChoice,
    /// The hardware encoder's device, e.g. `/dev/video11`; by default the first V4L2
    /// memory-to-memory H.264 encoder found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_device: Option<PathBuf>,
}

/// Which encoder the robot uses for raw frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EncoderChoice {
    /// The hardware encoder when one is found and opens, else openh264.
    #[default]
    Auto,
    /// openh264 on the CPU, always.
    Software,
    /// The V4L2 memory-to-memory encoder; the robot refuses to start without one.
    Hardware,
}

/// WebRTC peer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// Local UDP addresses ICE binds to. `0.0.0.0:0` means every non-loopback interface
    /// on a random port; `127.0.0.1:0` adds loopback for a browser on the robot itself.
    pub ice_udp: Vec<String>,
    /// STUN/TURN servers, for robots behind NAT. None by default: on a LAN, host
    /// candidates are enough and the robot makes no outside connection.
    pub ice_servers: Vec<IceServer>,
}

/// One STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub username: String,
    /// TURN password.
    #[serde(default)]
    pub credential: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            www: PathBuf::from("www/dist"),
            cors_origins: Vec::new(),
            video: VideoConfig::default(),
            webrtc: WebRtcConfig::default(),
            serial: None,
            drive: None,
            control: ControlConfig::default(),
        }
    }
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            camera: "auto".into(),
            width: 640,
            height: 480,
            fps: 30,
            bitrate_kbps: 1000,
            keyframe_interval_s: 2.0,
            encoder: EncoderChoice::Auto,
            encoder_device: None,
        }
    }
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_udp: vec!["0.0.0.0:0".into(), "127.0.0.1:0".into()],
            ice_servers: Vec::new(),
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
    Drive(#[from] crate::drive::DriveError),
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

    /// Builds the configuration from command-line arguments: the `--config` file if
    /// given, then each flag that was set.
    pub fn from_args(args: &RobotArgs) -> Result<Self, ConfigError> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(port) = args.port {
            config.listen.set_port(port);
        }
        if let Some(path) = &args.serial {
            config
                .serial
                .get_or_insert_with(SerialConfig::default)
                .path
                .clone_from(path);
        }
        if let Some(baud) = args.baud {
            config.serial.get_or_insert_with(SerialConfig::default).baud = baud;
        }
        if let Some(www) = &args.www {
            config.www.clone_from(www);
        }
        config.cors_origins.extend(args.cors_origin.iter().cloned());
        let v = &mut config.video;
        if let Some(camera) = &args.camera {
            v.camera.clone_from(camera);
        }
        v.width = args.width.unwrap_or(v.width);
        v.height = args.height.unwrap_or(v.height);
        v.fps = args.fps.unwrap_or(v.fps);
        v.bitrate_kbps = args.bitrate_kbps.unwrap_or(v.bitrate_kbps);
        v.encoder = args.encoder.unwrap_or(v.encoder);
        if let Some(device) = &args.encoder_device {
            v.encoder_device = Some(device.clone());
        }
        if !args.ice_udp.is_empty() {
            config.webrtc.ice_udp.clone_from(&args.ice_udp);
        }
        for url in &args.ice_server {
            config.webrtc.ice_servers.push(IceServer {
                urls: vec![url.clone()],
                username: String::new(),
                credential: String::new(),
            });
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        let v = &self.video;
        if let Err(reason) = v.camera.parse::<crate::v4l_camera::Camera>() {
            return invalid("video.camera", reason);
        }
        if !(16..=3840).contains(&v.width) || v.width % 2 != 0 {
            return invalid(
                "video.width",
                format!("{} must be even and in 16..=3840", v.width),
            );
        }
        if !(16..=2160).contains(&v.height) || v.height % 2 != 0 {
            return invalid(
                "video.height",
                format!("{} must be even and in 16..=2160", v.height),
            );
        }
        if !(1..=120).contains(&v.fps) {
            return invalid("video.fps", format!("{} must be in 1..=120", v.fps));
        }
        if !(50..=50_000).contains(&v.bitrate_kbps) {
            return invalid(
                "video.bitrate_kbps",
                format!("{} must be in 50..=50000", v.bitrate_kbps),
            );
        }
        if !(v.keyframe_interval_s.is_finite() && (0.1..=3600.0).contains(&v.keyframe_interval_s)) {
            return invalid(
                "video.keyframe_interval_s",
                format!("{} must be in 0.1..=3600", v.keyframe_interval_s),
            );
        }
        if let Some(device) = &v.encoder_device {
            if v.encoder == EncoderChoice::Software {
                return invalid(
                    "video.encoder_device",
                    format!(
                        "{} is set but video.encoder is \"software\"",
                        device.display()
                    ),
                );
            }
        }
        if !(20..=600_000).contains(&self.control.deadman_ms) {
            return invalid(
                "control.deadman_ms",
                format!("{} must be in 20..=600000", self.control.deadman_ms),
            );
        }
        if let Some(serial) = &self.serial {
            serial.validate()?;
        }
        if let Some(drive) = &self.drive {
            let codec = match &self.serial {
                Some(serial) => serial.write_codec()?,
                None => None,
            };
            crate::drive::DriveMapping::new(drive.clone(), codec.as_ref())?;
        }
        if self.webrtc.ice_udp.is_empty() {
            return invalid("webrtc.ice_udp", "needs at least one address".into());
        }
        for addr in &self.webrtc.ice_udp {
            if addr.parse::<SocketAddr>().is_err() {
                return invalid(
                    "webrtc.ice_udp",
                    format!("{addr:?} is not an ip:port address"),
                );
            }
        }
        for origin in &self.cors_origins {
            if origin != "*" && origin.parse::<axum::http::HeaderValue>().is_err() {
                return invalid("cors_origins", format!("{origin:?} is not a valid origin"));
            }
        }
        for server in &self.webrtc.ice_servers {
            for url in &server.urls {
                let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
                    .iter()
                    .any(|s| url.starts_with(s));
                if !scheme_ok {
                    return invalid(
                        "webrtc.ice_servers",
                        format!("{url:?} must start with stun:, stuns:, turn: or turns:"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Time between two frames.
    pub fn frame_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.video.fps))
    }
}

/// Command-line flags of the robot binary; each overrides the config file.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "rtcbot-robot",
    version,
    about = "Drive a robot from a browser over WebRTC"
)]
pub struct RobotArgs {
    /// TOML config file (see the `config` module docs for every key).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// HTTP port (keeps the listen address's IP); 0 picks a free port.
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Folder with the built browser bundle.
    #[arg(long)]
    pub www: Option<PathBuf>,
    /// Video source: auto, test-pattern, /dev/videoN or file:PATH (.y4m or .h264).
    #[arg(long)]
    pub camera: Option<String>,
    /// Video width in pixels.
    #[arg(long)]
    pub width: Option<u32>,
    /// Video height in pixels.
    #[arg(long)]
    pub height: Option<u32>,
    /// Frames per second.
    #[arg(long)]
    pub fps: Option<u32>,
    /// Encoder bitrate in kbit/s.
    #[arg(long)]
    pub bitrate_kbps: Option<u32>,
    /// H.264 encoder for raw frames: auto (hardware if found, else software),
    /// software (openh264) or hardware (V4L2 memory-to-memory).
    #[arg(long, value_enum)]
    pub encoder: Option<EncoderChoice>,
    /// The hardware encoder device, e.g. /dev/video11 (default: the first found).
    #[arg(long)]
    pub encoder_device: Option<PathBuf>,
    /// Web origin allowed to call /connect from its own page (repeatable; `*` = any).
    #[arg(long)]
    pub cors_origin: Vec<String>,
    /// Local UDP address for ICE (repeatable), e.g. 127.0.0.1:0.
    #[arg(long)]
    pub ice_udp: Vec<String>,
    /// STUN/TURN URL (repeatable), e.g. stun:stun.l.google.com:19302.
    #[arg(long)]
    pub ice_server: Vec<String>,
    /// Serial device of the microcontroller, e.g. /dev/ttyACM0 (enables `[serial]`).
    #[arg(long)]
    pub serial: Option<PathBuf>,
    /// Serial baud rate (enables `[serial]`).
    #[arg(long)]
    pub baud: Option<u32>,
    /// Print the port actually bound as `listening on <addr>` on stdout.
    #[arg(long)]
    pub print_addr: bool,
    /// A command instead of serving.
    #[command(subcommand)]
    pub command: Option<RobotCommand>,
}

/// Commands of the robot binary besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RobotCommand {
    /// Lists V4L2 capture devices with their formats, sizes and rates.
    Cameras,
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
    fn toml_and_flags_combine() {
        let c =
            Config::from_toml("listen = \"127.0.0.1:9000\"\n[video]\nwidth = 1280\nheight = 720\n")
                .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.video.width, 1280);
        assert_eq!(c.video.fps, 30);

        let dir = std::env::temp_dir().join(format!("rtcbot-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("robot.toml");
        std::fs::write(&file, "[video]\nfps = 15\n").unwrap();
        let args = RobotArgs::parse_from([
            "robot",
            "--config",
            file.to_str().unwrap(),
            "--port",
            "0",
            "--width",
            "320",
            "--height",
            "240",
            "--encoder",
            "hardware",
            "--encoder-device",
            "/dev/video11",
        ]);
        let c = Config::from_args(&args).unwrap();
        assert_eq!((c.video.width, c.video.height, c.video.fps), (320, 240, 15));
        assert_eq!(c.video.encoder, EncoderChoice::Hardware);
        assert_eq!(c.video.encoder_device, Some(PathBuf::from("/dev/video11")));
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn bad_config_gets_a_clear_error() {
        let cases = [
            ("[video]\nwidth = 641\n", "video.width"),
            ("[video]\nfps = 0\n", "video.fps"),
            ("[video]\ncamera = \"webcam\"\n", "video.camera"),
            ("[video]\ncolour = 1\n", "unknown field `colour`"),
            ("[video]\nencoder = \"gpu\"\n", "unknown variant `gpu`"),
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
            (
                "[serial]\nwrite_format = \"<bb\"\nwrite_keys = [\"left\", \"right\"]\n[drive]\n",
                "\"left\": 255 is out of range for 'b'",
            ),
        ];
        // What a user sees: the error and its causes, as the binary prints them.
        let full = |err: ConfigError| {
            let mut text = err.to_string();
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            text
        };
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
        assert_eq!(c.drive.as_ref().unwrap().deadman_ms, 250);
        let args = RobotArgs::parse_from(["robot", "--serial", "/dev/ttyS1", "--baud", "9600"]);
        let c = Config::from_args(&args).unwrap();
        let serial = c.serial.unwrap();
        assert_eq!(
            (serial.path.to_str(), serial.baud),
            (Some("/dev/ttyS1"), 9600)
        );
    }
}

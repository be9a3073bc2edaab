//! `rtcbot-robot`: serve the robot's page and WebRTC peers.
//!
//! A thin shell over the `rtcbot` library: read the configuration, start the robot,
//! serve HTTP until Ctrl-C or SIGTERM, then close every peer and stop the motors.

use anyhow::Context;
use clap::Parser;
use rtcbot::auth::{AuthConfig, Role};
use rtcbot::config::{Config, ConfigError, EncoderChoice, IceServer, SerialConfig};
use rtcbot::http::first_run::{self, FirstRun};
use rtcbot::http::tls;
use rtcbot::video::Camera;
use rtcbot::Robot;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// Our logs at info; the WebRTC stack's routine warnings (unknown DTLS extensions
/// from browsers, ICE checks before candidates arrive) only when they are errors.
/// `rtc_sctp::association` is off: webrtc-rs logs every ABORT a browser or aiortc
/// sends when it leaves normally as an ERROR (`handle_inbound got err: abort chunk`);
/// a peer leaving is not an error, and a broken association shows as the peer's
/// connection failing or closing, which the robot logs itself.
const DEFAULT_LOG: &str =
    "info,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=warn,rtc_sctp::association=off";

/// Runs the robot; a bad flag, config file or start-up failure is printed as one
/// clear line (with its causes) and exits with status 2.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rtcbot-robot: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    let args = RobotArgs::parse();
    if let Some(RobotCommand::Cameras) = args.command {
        use rtcbot::video::{encoder::m2m, source::v4l2};
        print!("{}", v4l2::describe_cameras(&v4l2::list_cameras()));
        print!("{}", m2m::describe_encoder());
        return Ok(());
    }
    let mut config = config_from(&args)?;
    let token = config
        .ensure_driver_token()
        .context("keeping the generated driver token")?;
    if config.auth().is_none() {
        tracing::warn!("auth is off (--no-auth): anyone who reaches this robot can drive it");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (addresses, local) = first_run::lan_addresses(addr);
    let tls = match config.tls() {
        Some(tls) => {
            Some(tls::identity(tls, &config.state_dir(), &addresses).context("setting up HTTPS")?)
        }
        None => None,
    };
    let robot = Robot::start(config.clone()).context("starting the robot")?;
    if args.print_addr {
        println!("listening on {addr}");
    }
    let block = FirstRun {
        scheme: if tls.is_some() { "https" } else { "http" },
        port: addr.port(),
        addresses,
        local,
        token: url_token(&config),
        facts: facts(&config, &robot, token.as_ref(), tls.as_ref()),
    };
    tracing::info!("robot ready: {}", block.urls().join(" "));
    if !args.quiet {
        use std::io::IsTerminal;
        let terminal = std::io::stdout().is_terminal();
        print!("{}", block.render(true, terminal));
    }
    tokio::spawn(log_drive(robot.clone()));
    let app = rtcbot::router(robot.clone());
    let served = match tls {
        Some(tls) => {
            rtcbot::http::serve_app_tls(listener, tls.server, app, robot, rtcbot::shutdown_signal())
                .await
        }
        None => rtcbot::serve_app(listener, app, robot, rtcbot::shutdown_signal()).await,
    };
    served.context("HTTP server failed")?;
    Ok(())
}

/// The encoder in use, or the one the first viewer will get.
fn encoder_fact(config: &Config, robot: &Robot) -> String {
    let name = robot.encoder_name();
    if !name.is_empty() {
        return name;
    }
    let choice = match config.video.encoder {
        EncoderChoice::Auto => "hardware H.264 (V4L2 M2M) if found, else openh264",
        EncoderChoice::Software => "openh264",
        EncoderChoice::Hardware => "hardware H.264 (V4L2 M2M)",
    };
    format!("{choice}, started for the first viewer")
}

/// The token the printed URLs carry: the (first) driver token, else an admin's.
fn url_token(config: &Config) -> Option<String> {
    let auth = config.auth()?;
    auth.driver.first().or(auth.admin.first()).cloned()
}

/// The start-up block's facts: what streams, who may connect, HTTPS.
fn facts(
    config: &Config,
    robot: &Robot,
    token: Option<&(String, bool)>,
    tls: Option<&tls::TlsIdentity>,
) -> Vec<(&'static str, String)> {
    let (w, h) = robot.stream().size();
    let auth = match (config.auth(), token) {
        (None, _) => "OFF: anyone on this network can drive (--no-auth)".to_owned(),
        (Some(_), Some((_, new))) => format!(
            "a driver token, in the URLs above ({} {})",
            if *new {
                "generated now and kept in"
            } else {
                "kept in"
            },
            config
                .state_dir()
                .join(rtcbot::auth::store::TOKEN_FILE)
                .display()
        ),
        (Some(auth), None) => {
            let count = |role| auth.entries().filter(|(r, _)| *r == role).count();
            format!(
                "tokens from config: {} viewer, {} driver, {} admin",
                count(Role::Viewer),
                count(Role::Driver),
                count(Role::Admin)
            )
        }
    };
    let https = match tls {
        Some(id) => format!(
            "on, certificate SHA-256 {} ({}{}); SPKI pin {}",
            id.fingerprint,
            if id.generated { "generated now: " } else { "" },
            id.cert_path.display(),
            id.spki_sha256
        ),
        None => "off (--no-tls): phones give a plain-HTTP page no microphone or camera".into(),
    };
    vec![
        (
            "Camera",
            format!(
                "{} {w}x{h}@{}",
                robot.stream().source_name(),
                config.video.fps
            ),
        ),
        ("Encoder", encoder_fact(config, robot)),
        ("Audio", audio_fact(robot)),
        ("Auth", auth),
        ("HTTPS", https),
        ("Relay", relay_fact(config)),
    ]
}

/// The relay room the robot answers in, if any.
fn relay_fact(config: &Config) -> String {
    match &config.relay {
        Some(relay) => format!(
            "{} ({}; offers through it get the {} role unless they carry a token)",
            relay.shown_url(),
            if relay.key.is_some() {
                "claimed with its key"
            } else {
                "open room: any robot may take it"
            },
            relay.role.as_str()
        ),
        None => "none (--relay ws://HOST:PORT/ROOM to be reached from anywhere)".into(),
    }
}

/// What the robot sends and where browsers' sound goes.
fn audio_fact(robot: &Robot) -> String {
    let out = match robot.audio() {
        Some(audio) => format!("{} (Opus, once for every listener)", audio.source_name()),
        None => "no source (--audio tone for a test tone)".into(),
    };
    let speaker = robot.incoming_audio().speaker().unwrap_or("none");
    format!("{out}; browsers' microphones to {speaker}")
}

/// Logs every new drive state, as a stand-in for motors.
async fn log_drive(robot: Robot) {
    let mut drive = robot.controls().drive();
    while drive.changed().await.is_ok() {
        let state = *drive.borrow_and_update();
        tracing::info!(
            forward = state.forward,
            turn = state.turn,
            seq = state.seq,
            "drive"
        );
    }
}

/// Command-line flags of the robot binary; each overrides the config file.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "rtcbot-robot",
    version,
    about = "Drive a robot from a browser over WebRTC"
)]
struct RobotArgs {
    /// TOML config file (see the README or the library's `config` module for every key).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// HTTP port (keeps the listen address's IP); 0 picks a free port.
    #[arg(long, short)]
    port: Option<u16>,
    /// Folder with the built browser bundle.
    #[arg(long)]
    www: Option<PathBuf>,
    /// Video source: auto, test-pattern, test-pattern:noisy (camera-like noise),
    /// /dev/videoN or file:PATH (.y4m or .h264).
    #[arg(long)]
    camera: Option<Camera>,
    /// Sound the robot sends: auto (the first ALSA capture device, none without
    /// one), none, tone (a 1 kHz test tone), alsa:DEVICE or file:PATH.wav.
    #[arg(long)]
    audio: Option<rtcbot::audio::AudioSourceSpec>,
    /// Where browsers' sound plays: auto (the first ALSA playback device), none,
    /// alsa:DEVICE or file:PATH.wav.
    #[arg(long)]
    speaker: Option<rtcbot::audio::AudioSinkSpec>,
    /// Whose microphone plays: driver (the default) or everyone (mixed).
    #[arg(long)]
    play_audio_from: Option<rtcbot::audio::PlayFrom>,
    /// Video width in pixels.
    #[arg(long)]
    width: Option<u32>,
    /// Video height in pixels.
    #[arg(long)]
    height: Option<u32>,
    /// Frames per second.
    #[arg(long)]
    fps: Option<u32>,
    /// Encoder bitrate in kbit/s.
    #[arg(long)]
    bitrate_kbps: Option<u32>,
    /// Keep the bitrate fixed: no congestion control (`video.congestion_control`).
    #[arg(long)]
    no_congestion_control: bool,
    /// The lowest bitrate congestion control may set, kbit/s.
    #[arg(long)]
    min_kbps: Option<u32>,
    /// The highest bitrate congestion control may set, kbit/s.
    #[arg(long)]
    max_kbps: Option<u32>,
    /// Whose bandwidth sets the bitrate: driver or slowest.
    #[arg(long)]
    follow: Option<rtcbot::video::Follow>,
    /// H.264 encoder for raw frames: auto (hardware if found, else software),
    /// software (openh264) or hardware (V4L2 memory-to-memory).
    #[arg(long)]
    encoder: Option<EncoderChoice>,
    /// The hardware encoder device, e.g. /dev/video11 (default: the first found).
    #[arg(long)]
    encoder_device: Option<PathBuf>,
    /// Web origin allowed to call /connect from its own page (repeatable; `*` = any).
    #[arg(long)]
    cors_origin: Vec<String>,
    /// Local UDP address for ICE (repeatable), e.g. 127.0.0.1:0.
    #[arg(long)]
    ice_udp: Vec<String>,
    /// STUN/TURN URL (repeatable), e.g. stun:stun.l.google.com:19302.
    #[arg(long)]
    ice_server: Vec<String>,
    /// Serial device of the microcontroller, e.g. /dev/ttyACM0 (enables `[serial]`).
    #[arg(long)]
    serial: Option<PathBuf>,
    /// Serial baud rate (enables `[serial]`).
    #[arg(long)]
    baud: Option<u32>,
    /// The driver's silence in milliseconds that stops the motors (dead-man stop).
    #[arg(long)]
    deadman_ms: Option<u64>,
    /// Connect out to this relay room and answer the offers that arrive there, e.g.
    /// ws://relay.example.org:8080/my-robot (`[relay] url`): reach the robot from
    /// anywhere, behind NAT too.
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// The relay room's key (`[relay] key`): claims the room for this robot.
    #[arg(long, value_name = "KEY")]
    relay_key: Option<String>,
    /// Print the port actually bound as `listening on <addr>` on stdout (first).
    #[arg(long)]
    print_addr: bool,
    /// Print no start-up block (the URLs, the QR code, what streams).
    #[arg(long, short)]
    quiet: bool,
    /// Serve HTTPS (the default; `[tls]`), with a self-signed certificate generated
    /// once and kept in the state folder unless `[tls]` names one; plain HTTP on the
    /// same port redirects to it.
    #[arg(long)]
    tls: bool,
    /// Serve plain HTTP only (`[tls] enabled = false`).
    #[arg(long, conflicts_with = "tls")]
    no_tls: bool,
    /// A token and its role, ROLE:TOKEN, role viewer, driver or admin (repeatable;
    /// adds to `[auth]`). Without any driver token one is generated and kept.
    #[arg(long, value_parser = rtcbot::auth::tokens::parse_flag)]
    auth_token: Vec<(Role, String)>,
    /// Let anyone connect and drive, no token (a lab bench): a warning is logged.
    #[arg(long, conflicts_with = "auth_token")]
    no_auth: bool,
    /// Where the robot keeps its generated token and certificate (`state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A command instead of serving.
    #[command(subcommand)]
    command: Option<RobotCommand>,
}

/// Commands of the robot binary besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
enum RobotCommand {
    /// Lists V4L2 capture devices with their formats, sizes and rates.
    Cameras,
}

/// The configuration: the `--config` file if given, then each flag that was set,
/// checked once.
fn config_from(args: &RobotArgs) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
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
    if let Some(dir) = &args.state_dir {
        config.state_dir = Some(dir.clone());
    }
    // HTTPS by default too: a phone's browser withholds the microphone and camera
    // from a plain-HTTP page on the LAN.
    let tls = config
        .tls
        .get_or_insert_with(rtcbot::config::TlsConfig::default);
    if args.tls {
        tls.enabled = true;
    }
    if args.no_tls {
        tls.enabled = false;
    }
    // The binary is protected by default: no `[auth]` means a generated driver token.
    let auth = config.auth.get_or_insert_with(AuthConfig::default);
    if args.no_auth {
        auth.enabled = false;
    }
    for (role, token) in &args.auth_token {
        auth.tokens_mut(*role).push(token.clone());
    }
    if let Some(source) = &args.audio {
        config.audio.source = source.clone();
    }
    if let Some(speaker) = &args.speaker {
        config.audio.speaker = speaker.clone();
    }
    config.audio.play_from = args.play_audio_from.unwrap_or(config.audio.play_from);
    let v = &mut config.video;
    if let Some(camera) = &args.camera {
        v.camera = camera.clone();
    }
    v.width = args.width.unwrap_or(v.width);
    v.height = args.height.unwrap_or(v.height);
    v.fps = args.fps.unwrap_or(v.fps);
    v.bitrate_kbps = args.bitrate_kbps.unwrap_or(v.bitrate_kbps);
    v.encoder = args.encoder.unwrap_or(v.encoder);
    if args.no_congestion_control {
        v.congestion_control = false;
    }
    v.min_kbps = args.min_kbps.unwrap_or(v.min_kbps);
    v.max_kbps = args.max_kbps.or(v.max_kbps);
    v.follow = args.follow.unwrap_or(v.follow);
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
    if let Some(url) = &args.relay {
        let relay = config
            .relay
            .get_or_insert_with(|| rtcbot::relay::RelayConfig::new(url.clone()));
        relay.url.clone_from(url);
    }
    if let Some(key) = &args.relay_key {
        match &mut config.relay {
            Some(relay) => relay.key = Some(key.clone()),
            None => {
                return Err(ConfigError::Invalid {
                    field: "relay.key",
                    reason: "--relay-key needs --relay URL (or [relay] url)".into(),
                })
            }
        }
    }
    if let Some(ms) = args.deadman_ms {
        config.control.deadman_ms = ms;
        if let Some(drive) = &mut config.drive {
            drive.deadman_ms = None;
        }
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_then_the_flags() {
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
        let c = config_from(&args).unwrap();
        assert_eq!((c.video.width, c.video.height, c.video.fps), (320, 240, 15));
        assert_eq!(c.video.encoder, EncoderChoice::Hardware);
        assert_eq!(c.video.encoder_device, Some(PathBuf::from("/dev/video11")));
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn flags_set_the_camera_the_deadman_and_the_serial_port() {
        let args = RobotArgs::parse_from([
            "robot",
            "--camera",
            "file:clip.y4m",
            "--deadman-ms",
            "60000",
            "--serial",
            "/dev/ttyS1",
            "--baud",
            "9600",
        ]);
        let c = config_from(&args).unwrap();
        assert_eq!(c.video.camera, Camera::File("clip.y4m".into()));
        assert_eq!(c.deadman(), std::time::Duration::from_secs(60));
        let serial = c.serial.unwrap();
        assert_eq!(
            (serial.path.to_str(), serial.baud),
            (Some("/dev/ttyS1"), 9600)
        );
        let err = RobotArgs::try_parse_from(["robot", "--camera", "webcam"]).unwrap_err();
        assert!(err.to_string().contains("must be auto"), "{err}");
        let err = RobotArgs::try_parse_from(["robot", "--encoder", "gpu"]).unwrap_err();
        assert!(
            err.to_string().contains("auto, software or hardware"),
            "{err}"
        );
        let args = RobotArgs::parse_from(["robot", "--deadman-ms", "5"]);
        let err = config_from(&args).unwrap_err().to_string();
        assert!(err.contains("control.deadman_ms"), "{err}");
    }

    #[test]
    fn the_binary_is_protected_by_default_and_flags_open_it() {
        let c = config_from(&RobotArgs::parse_from(["robot"])).unwrap();
        assert!(c.tls().is_some(), "HTTPS by default");
        assert!(c.auth().is_some(), "a token by default");
        let c = config_from(&RobotArgs::parse_from(["robot", "--no-tls", "--no-auth"])).unwrap();
        assert!(c.tls().is_none() && c.auth().is_none());
        let dir = std::env::temp_dir().join(format!("rtcbot-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("robot.toml");
        std::fs::write(&file, "[tls]\nenabled = false\n[auth]\nenabled = false\n").unwrap();
        let c = config_from(&RobotArgs::parse_from([
            "robot",
            "--config",
            file.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(
            c.tls().is_none() && c.auth().is_none(),
            "the file turns both off"
        );
        let c = config_from(&RobotArgs::parse_from([
            "robot",
            "--auth-token",
            "viewer:a-viewer-token-0123456789",
        ]))
        .unwrap();
        assert_eq!(c.auth().unwrap().viewer, ["a-viewer-token-0123456789"]);
        for clash in [
            ["robot", "--tls", "--no-tls"],
            ["robot", "--no-auth", "--auth-token=driver:abcdefghijklmnop"],
        ] {
            assert!(RobotArgs::try_parse_from(clash).is_err(), "{clash:?}");
        }
        let err = RobotArgs::try_parse_from(["robot", "--auth-token", "pilot:abcdefghijklmnopq"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown role"), "{err}");
    }
}

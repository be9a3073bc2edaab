//! The robot: configuration, video stream, control hub and the registry of peers.
//!
//! [`Robot`] is what the HTTP server and the binary hold. Each `/connect` offer
//! becomes a peer ([`Robot::connect`]); peers that fail, close or never connect are
//! removed and their resources freed; [`Robot::shutdown`] closes them all and stops
//! the motors.
//!
//! With `[serial]` configured, the robot opens the serial link and forwards what the
//! microcontroller sends (and the link's state) to every peer as telemetry
//! `{"type":"serial",...}`; with `[drive]` too, a [`DriveController`] writes motor
//! commands. Changes of driver and safety stops reach every peer as a status message
//! with a reason.

use crate::camera::{TestPattern, VideoSource};
use crate::config::Config;
use crate::config::EncoderChoice;
use crate::control::{ControlHub, PeerId};
use crate::drive::{DriveController, DriveError, DriveMapping};
use crate::encoder::{EncoderSettings, FallbackEncoder, OpenH264Encoder, VideoEncoder};
use crate::file_source::{AnnexBSource, Y4mSource};
use crate::m2m::{self, M2mEncoder, M2mError};
use crate::peer::{negotiate, Peer, PeerError};
use crate::serial::{LinkState, SerialConnection, SerialError, SerialEvent};
use crate::stream::{EncoderFactory, Pipeline, StreamCounters, VideoStream};
use crate::v4l_camera::{auto_candidates, list_cameras, open_camera, Camera, OpenedCamera};
use shared_protocol::{MotorState, RobotStatus, SessionDescription, StreamStats, Telemetry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Peers served at once; more get a clear refusal.
pub const MAX_PEERS: usize = 32;
/// How long a moving drive state lasts without a new message.
pub const DEFAULT_SILENCE: Duration = Duration::from_millis(300);

/// Why the robot could not start.
#[derive(Debug, Error)]
pub enum RobotError {
    /// The video source could not be opened.
    #[error(transparent)]
    Camera(#[from] crate::camera::CameraError),
    /// The serial settings are unusable.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// The drive settings are unusable.
    #[error(transparent)]
    Drive(#[from] DriveError),
    /// `video.encoder = "hardware"` and no hardware encoder is usable.
    #[error("video.encoder = \"hardware\"")]
    Encoder(#[from] M2mError),
}

/// The running robot; cheap to clone.
#[derive(Clone)]
pub struct Robot {
    inner: Arc<RobotInner>,
}

pub(crate) struct RobotInner {
    pub(crate) config: Config,
    pub(crate) stream: VideoStream,
    pub(crate) hub: ControlHub,
    serial: Option<SerialConnection>,
    drive: Option<DriveController>,
    peers: Mutex<HashMap<PeerId, Arc<Peer>>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

impl Robot {
    /// Starts a robot with the built-in test-pattern camera and the hardware in the
    /// configuration (`[serial]`, `[drive]`).
    ///
    /// Must be called inside a tokio runtime: it spawns the stats and watchdog tasks.
    pub fn start(config: Config) -> Result<Self, RobotError> {
        let pipeline = open_pipeline(&config)?;
        Self::with_pipeline(config, pipeline)
    }

    /// Starts a robot that streams from `pipeline`, with the configured hardware.
    pub fn with_pipeline(config: Config, pipeline: Pipeline) -> Result<Self, RobotError> {
        let serial = config
            .serial
            .clone()
            .map(SerialConnection::open)
            .transpose()?;
        let mapping = match (&config.drive, &serial) {
            (Some(drive), serial) => {
                let codec = match serial {
                    Some(s) => s.config().write_codec()?,
                    None => None,
                };
                Some(DriveMapping::new(drive.clone(), codec.as_ref())?)
            }
            (None, _) => None,
        };
        Ok(Self::assemble(config, pipeline, serial, mapping))
    }

    /// Starts a robot that streams from `source`, encoded with openh264, without
    /// hardware (`[serial]` and `[drive]` are ignored).
    pub fn with_source(config: Config, source: Box<dyn VideoSource>) -> Self {
        let pipeline = Pipeline::Encode {
            source,
            make_encoder: software_encoder(encoder_settings(&config)),
        };
        Self::assemble(config, pipeline, None, None)
    }

    fn assemble(
        config: Config,
        pipeline: Pipeline,
        serial: Option<SerialConnection>,
        mapping: Option<DriveMapping>,
    ) -> Self {
        let stream = VideoStream::start_pipeline(pipeline, config.frame_period());
        let silence = config
            .drive
            .as_ref()
            .map_or(Duration::from_millis(config.control.deadman_ms), |d| {
                d.deadman()
            });
        let hub = ControlHub::new(silence);
        tokio::spawn(hub.clone().watch_silence());
        let drive = match (&serial, mapping) {
            (Some(serial), Some(mapping)) => {
                Some(DriveController::start(&hub, serial.clone(), mapping))
            }
            _ => None,
        };
        let inner = Arc::new(RobotInner {
            config,
            stream,
            hub,
            serial,
            drive,
            peers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        });
        tokio::spawn(report_stats(Arc::downgrade(&inner)));
        tokio::spawn(report_notices(Arc::downgrade(&inner)));
        if let Some(serial) = &inner.serial {
            tokio::spawn(report_serial(Arc::downgrade(&inner), serial.clone()));
        }
        Self { inner }
    }

    /// Answers a browser's (or any offerer's) offer and adds the new peer.
    pub async fn connect(
        &self,
        offer: &SessionDescription,
    ) -> Result<SessionDescription, PeerError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(PeerError::ShuttingDown);
        }
        if inner.peer_count() >= MAX_PEERS {
            return Err(PeerError::TooMany(MAX_PEERS));
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (peer, answer) = negotiate(inner, id, offer).await?;
        inner.peers.lock().expect("peers lock").insert(id, peer);
        tracing::info!(
            peer = id,
            "answered an offer ({} peers)",
            inner.peer_count()
        );
        Ok(answer)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where drivers' messages arrive.
    pub fn controls(&self) -> &ControlHub {
        &self.inner.hub
    }

    /// The shared video stream.
    pub fn stream(&self) -> &VideoStream {
        &self.inner.stream
    }

    /// The serial link, when `[serial]` is configured.
    pub fn serial(&self) -> Option<&SerialConnection> {
        self.inner.serial.as_ref()
    }

    /// The motor loop, when `[drive]` is configured.
    pub fn drive(&self) -> Option<&DriveController> {
        self.inner.drive.as_ref()
    }

    /// The encoder in use, e.g. `openh264` (empty until the first viewer).
    pub fn encoder_name(&self) -> String {
        self.inner.stream.encoder_name()
    }

    /// Video counters (encoder instances, frames, bytes...).
    pub fn counters(&self) -> StreamCounters {
        self.inner.stream.counters()
    }

    /// Peers currently registered (connecting or connected).
    pub fn peer_count(&self) -> usize {
        self.inner.peer_count()
    }

    /// Sends a message to every peer, like RTCBot's `put_nowait` on each connection.
    pub async fn broadcast(&self, msg: &Telemetry) {
        self.inner.broadcast(msg).await;
    }

    /// Stops the motors, closes every peer and stops the video.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shutting_down.store(true, Ordering::SeqCst);
        inner.hub.stop("the robot is shutting down");
        let peers: Vec<_> = inner.peers.lock().expect("peers lock").drain().collect();
        for (id, peer) in peers {
            inner.hub.peer_left(id);
            peer.shared.abort_tasks();
            let _ = peer.pc.close().await;
        }
        if let Some(drive) = &inner.drive {
            match drive.shutdown().await {
                Ok(()) => tracing::info!("motor stop command written"),
                Err(err) => tracing::error!("could not write the motor stop command: {err}"),
            }
        }
        if let Some(serial) = &inner.serial {
            serial.close();
        }
        inner.stream.stop();
        tracing::info!("robot shut down");
    }
}

impl RobotInner {
    fn peer_count(&self) -> usize {
        self.peers.lock().expect("peers lock").len()
    }

    /// Removes a peer and frees its resources; safe to call more than once.
    pub(crate) fn remove_peer(&self, id: PeerId, reason: &str) {
        let peer = self.peers.lock().expect("peers lock").remove(&id);
        if let Some(peer) = peer {
            tracing::info!(peer = id, "removing peer: {reason}");
            self.hub.peer_left(id);
            peer.shared.abort_tasks();
            tokio::spawn(async move {
                let _ = peer.pc.close().await;
            });
        }
    }

    /// The status message as `peer` should see it.
    pub(crate) fn status_for(&self, peer: PeerId) -> Telemetry {
        self.status_with_reason(peer, None)
    }

    /// The status message as `peer` should see it, saying why it changed.
    pub(crate) fn status_with_reason(&self, peer: PeerId, reason: Option<String>) -> Telemetry {
        let driver = self.hub.driver();
        let moving = !self.hub.drive().borrow().is_stopped();
        Telemetry::Status(RobotStatus {
            driver: driver.is_some(),
            you_drive: driver == Some(peer),
            motors: if moving {
                MotorState::Running
            } else {
                MotorState::Stopped
            },
            reason,
        })
    }

    /// The peers now, without holding the registry lock across sends.
    fn peer_list(&self) -> Vec<Arc<Peer>> {
        self.peers
            .lock()
            .expect("peers lock")
            .values()
            .cloned()
            .collect()
    }

    async fn broadcast(&self, msg: &Telemetry) {
        for peer in self.peer_list() {
            peer.shared.send(msg).await;
        }
    }
}

/// Raw frames from `source`, encoded by the encoder `video.encoder` picks: the V4L2
/// memory-to-memory hardware encoder when asked for or found, else openh264.
///
/// `hardware` opens the encoder once now, so that a robot without a usable one stops
/// at start with a clear error; the stream opens it again when the first viewer
/// arrives. In `auto`, a hardware encoder that fails to open, or later fails
/// [`crate::encoder::FAILURES_BEFORE_FALLBACK`] frames in a row (a hung encoder fails
/// too), gives way to openh264 with a warning.
fn encode_pipeline(config: &Config, source: Box<dyn VideoSource>) -> Result<Pipeline, RobotError> {
    let v = &config.video;
    let settings = encoder_settings(config);
    let (w, h) = source.size();
    let open = move |path: &std::path::Path| {
        M2mEncoder::open(path, m2m::H264, w as u32, h as u32, settings)
    };
    let hardware = match v.encoder {
        EncoderChoice::Software => None,
        EncoderChoice::Hardware => {
            let path = hardware_encoder(v.encoder_device.as_deref())?;
            drop(open(&path)?);
            Some(path)
        }
        EncoderChoice::Auto => match hardware_encoder(v.encoder_device.as_deref()) {
            Ok(path) => Some(path),
            // A device the user named deserves a warning when it cannot be used.
            Err(err) if v.encoder_device.is_some() => {
                tracing::warn!("hardware encoder unusable ({err}); encoding with openh264");
                None
            }
            Err(err) => {
                tracing::info!("no hardware encoder ({err}); encoding with openh264");
                None
            }
        },
    };
    let fallback = v.encoder == EncoderChoice::Auto;
    let make_encoder: EncoderFactory = match hardware {
        None => software_encoder(settings),
        Some(path) => Box::new(move || match open(&path) {
            Ok(enc) if fallback => Ok(Box::new(FallbackEncoder::new(
                Box::new(enc),
                software_encoder(settings),
            )) as Box<dyn VideoEncoder>),
            Ok(enc) => Ok(Box::new(enc) as Box<dyn VideoEncoder>),
            Err(err) if fallback => {
                tracing::warn!("hardware encoder unusable ({err}); encoding with openh264");
                software_encoder(settings)()
            }
            Err(err) => Err(err.into()),
        }),
    };
    Ok(Pipeline::Encode {
        source,
        make_encoder,
    })
}

fn encoder_settings(config: &Config) -> EncoderSettings {
    let v = &config.video;
    EncoderSettings {
        bitrate_kbps: v.bitrate_kbps,
        fps: v.fps,
        keyframe_interval: (v.keyframe_interval_s * f64::from(v.fps)).round().max(1.0) as u32,
    }
}

fn software_encoder(settings: EncoderSettings) -> EncoderFactory {
    Box::new(move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>))
}

/// The configured hardware encoder device, checked, or the first one found.
fn hardware_encoder(device: Option<&std::path::Path>) -> Result<std::path::PathBuf, M2mError> {
    match device {
        Some(path) => m2m::check_path(path, m2m::H264).map(|()| path.to_owned()),
        None => m2m::find_encoder(m2m::H264),
    }
}

/// The pipeline for `video.camera`: a camera (H.264 passed through, else encoded), a
/// file, or the test pattern.
pub fn open_pipeline(config: &Config) -> Result<Pipeline, RobotError> {
    let v = &config.video;
    let camera: Camera = v.camera.parse().map_err(|reason| {
        RobotError::Camera(crate::camera::CameraError::Device {
            device: v.camera.clone(),
            reason,
        })
    })?;
    let devices = match camera {
        Camera::Auto => auto_candidates(list_cameras(), (v.width, v.height), v.fps),
        Camera::Device(path) => {
            // An explicit device must work: its error stops the robot.
            return Ok(match open_camera(&path, (v.width, v.height), v.fps)? {
                OpenedCamera::H264(cam) => Pipeline::PassThrough(Box::new(cam)),
                OpenedCamera::Raw(cam) => encode_pipeline(config, Box::new(cam))?,
            });
        }
        Camera::TestPattern => Vec::new(),
        Camera::File(path) => {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            return Ok(match ext.as_str() {
                "h264" | "264" => Pipeline::PassThrough(Box::new(AnnexBSource::open(&path)?)),
                _ => encode_pipeline(config, Box::new(Y4mSource::open(&path)?))?,
            });
        }
    };
    // auto: the first camera that opens, else the test pattern.
    for device in devices {
        match open_camera(&device, (v.width, v.height), v.fps) {
            Ok(OpenedCamera::H264(cam)) => return Ok(Pipeline::PassThrough(Box::new(cam))),
            Ok(OpenedCamera::Raw(cam)) => return encode_pipeline(config, Box::new(cam)),
            Err(err) => tracing::warn!("camera auto: skipping {}: {err}", device.display()),
        }
    }
    let source = TestPattern::new(v.width, v.height)?;
    encode_pipeline(config, Box::new(source))
}

/// Every second, sends stream figures and status to every peer.
async fn report_stats(robot: std::sync::Weak<RobotInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<(Instant, StreamCounters)> = None;
    loop {
        tick.tick().await;
        let Some(robot) = robot.upgrade() else { return };
        let now = Instant::now();
        let counters = robot.stream.counters();
        let (fps, kbps) = match last {
            Some((t, c)) => {
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                (
                    (counters.frames_encoded - c.frames_encoded) as f64 / secs,
                    (counters.bytes_encoded - c.bytes_encoded) as f64 * 8.0 / 1000.0 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        last = Some((now, counters));
        let (width, height) = robot.stream.size();
        let stats = Telemetry::Stats(StreamStats {
            viewers: counters.viewers as u32,
            frames_encoded: counters.frames_encoded,
            fps,
            bitrate_kbps: kbps,
            width: width as u32,
            height: height as u32,
            encoder: match robot.stream.encoder_name() {
                name if name.is_empty() => robot.stream.source_name().to_owned(),
                name => format!("{}/{name}", robot.stream.source_name()),
            },
        });
        robot.broadcast(&stats).await;
        for peer in robot.peer_list() {
            peer.shared.send(&robot.status_for(peer.shared.id)).await;
        }
    }
}

/// Tells every peer about changes of driver and safety stops, with the reason.
async fn report_notices(robot: std::sync::Weak<RobotInner>) {
    let Some(mut notices) = robot.upgrade().map(|r| r.hub.notices()) else {
        return;
    };
    loop {
        let notice = match notices.recv().await {
            Ok(notice) => notice,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(robot) = robot.upgrade() else { return };
        for peer in robot.peer_list() {
            let status = robot.status_with_reason(peer.shared.id, Some(notice.reason.clone()));
            peer.shared.send(&status).await;
        }
    }
}

/// Forwards the serial link's messages, problems and state to every peer.
async fn report_serial(robot: std::sync::Weak<RobotInner>, serial: SerialConnection) {
    let mut events = serial.events();
    let mut state = serial.state();
    loop {
        let msg = tokio::select! {
            event = events.recv() => match event {
                Ok(SerialEvent::Message(m)) => serde_json::json!({"type": "serial", "message": m.to_json()}),
                Ok(SerialEvent::Garbled(reason)) => serde_json::json!({"type": "serial", "error": reason}),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    serde_json::json!({"type": "serial", "error": format!("{n} serial messages were dropped (telemetry too slow)")})
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow_and_update().clone();
                match now {
                    LinkState::Disconnected { reason } => {
                        serde_json::json!({"type": "serial", "state": "disconnected", "reason": reason})
                    }
                    other => serde_json::json!({"type": "serial", "state": other.word()}),
                }
            }
        };
        let Some(robot) = robot.upgrade() else { return };
        robot.broadcast(&Telemetry::Json(msg)).await;
    }
}

//! What a robot is made from: the configuration, and what a program puts in place of
//! its parts (its own video source, a serial link or drive mapping set in code).
//!
//! ```no_run
//! # async fn run() -> Result<(), rtcbot::Error> {
//! use rtcbot::video::TestPattern;
//! let robot = rtcbot::Robot::builder(rtcbot::Config::default())
//!     .video(TestPattern::new(640, 480)?)   // any VideoSource, encoded once
//!     .start()?;
//! # Ok(()) }
//! ```

use super::Robot;
use crate::audio::{AudioSink, AudioSource, AudioStream, Incoming};
use crate::config::Config;
use crate::control::{DriveConfig, DriveController, DriveMapping};
use crate::serial::{SerialConfig, SerialConnection};
use crate::video::pipeline::{encode, open_pipeline};
use crate::video::{EncodedSource, Pipeline, VideoSource, VideoStream};

/// Builds a [`Robot`]; see [`Robot::builder`].
pub struct RobotBuilder {
    config: Config,
    video: Option<Video>,
    audio: Option<Option<Box<dyn AudioSource>>>,
    speaker: Option<Option<Box<dyn AudioSink>>>,
}

enum Video {
    Raw(Box<dyn VideoSource>),
    Encoded(Box<dyn EncodedSource>),
    Pipeline(Pipeline),
}

impl RobotBuilder {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            video: None,
            audio: None,
            speaker: None,
        }
    }

    /// Sends sound from `source`, encoded once for every listener (instead of
    /// `[audio] source`).
    pub fn audio(mut self, source: impl AudioSource + 'static) -> Self {
        self.audio = Some(Some(Box::new(source)));
        self
    }

    /// Sends no sound, whatever `[audio] source` says.
    pub fn no_audio(mut self) -> Self {
        self.audio = Some(None);
        self
    }

    /// Plays browsers' sound into `sink` (instead of `[audio] speaker`).
    pub fn speaker(mut self, sink: impl AudioSink + 'static) -> Self {
        self.speaker = Some(Some(Box::new(sink)));
        self
    }

    /// Streams raw frames from `source`, encoded once for every viewer by the
    /// encoder `[video] encoder` picks (instead of `[video] camera`).
    pub fn video(mut self, source: impl VideoSource) -> Self {
        self.video = Some(Video::Raw(Box::new(source)));
        self
    }

    /// Streams H.264 from `source` as it is, without decoding or encoding.
    pub fn encoded_video(mut self, source: impl EncodedSource) -> Self {
        self.video = Some(Video::Encoded(Box::new(source)));
        self
    }

    /// Streams from a pipeline made by hand (a source with an encoder factory).
    pub fn pipeline(mut self, pipeline: Pipeline) -> Self {
        self.video = Some(Video::Pipeline(pipeline));
        self
    }

    /// Opens this serial link (instead of `[serial]`).
    pub fn serial(mut self, serial: SerialConfig) -> Self {
        self.config.serial = Some(serial);
        self
    }

    /// Drives the motors with this mapping (instead of `[drive]`); needs a serial link
    /// with a write struct.
    pub fn drive(mut self, drive: DriveConfig) -> Self {
        self.config.drive = Some(drive);
        self
    }

    /// Checks the configuration, opens the video, the serial link and the drive, and
    /// starts the robot. Must be called inside a tokio runtime.
    pub fn start(self) -> Result<Robot, crate::Error> {
        let config = self.config;
        config.validate()?;
        if config.auth().is_some_and(|auth| !auth.has_tokens()) {
            return Err(crate::config::ConfigError::Invalid {
                field: "auth",
                reason: "auth is on but lists no token: add tokens to [auth], call \
                         Config::ensure_driver_token, or set enabled = false"
                    .into(),
            }
            .into());
        }
        let video_from_config = self.video.is_none();
        let pipeline = match self.video {
            None => open_pipeline(&config.video)?,
            Some(Video::Raw(source)) => encode(&config.video, source)?,
            Some(Video::Encoded(source)) => Pipeline::PassThrough(source),
            Some(Video::Pipeline(pipeline)) => pipeline,
        };
        let serial = config
            .serial
            .clone()
            .map(SerialConnection::open)
            .transpose()?;
        let mapping = match &config.drive {
            Some(drive) => {
                let codec = match &serial {
                    Some(s) => s.config().write_codec()?,
                    None => None,
                };
                Some(DriveMapping::new(drive.clone(), codec.as_ref())?)
            }
            None => None,
        };
        let audio_source = match self.audio {
            Some(source) => source,
            None => crate::audio::source::open(&config.audio.source)?,
        };
        let speaker = match self.speaker {
            Some(sink) => sink,
            None => crate::audio::sink::open(&config.audio.speaker)?,
        };
        let stream = VideoStream::start_pipeline(pipeline, config.frame_period());
        let audio =
            audio_source.map(|source| AudioStream::start(source, config.audio.bitrate_kbps));
        let incoming = Incoming::start(speaker, config.audio.play_from);
        let drive_serial = serial.clone();
        Ok(Robot::assemble(
            config,
            video_from_config,
            stream,
            (audio, incoming),
            serial,
            move |hub| match (drive_serial, mapping) {
                (Some(serial), Some(mapping)) => Some(DriveController::start(hub, serial, mapping)),
                _ => None,
            },
        ))
    }
}

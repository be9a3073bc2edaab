//! Everything the page shows, changed only through [`Action`]s.

use crate::audio_meter::Reading;
use crate::connection::{ConnState, Event, VideoStats};
use crate::history::History;
use crate::session::{Renegotiation, RoomPresence};
use crate::sfu::plan::Source;
use crate::wire::{named_values, RobotMessage};
use shared_protocol::{DriveState, RobotStatus, StreamStats, VideoSettings};
use std::rc::Rc;
use web_sys::MediaStream;
use yew::Reducible;

/// A message from the robot shown for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// True for the robot's `error` messages.
    pub error: bool,
    /// When it arrived (`performance.now()`).
    pub at_ms: f64,
}

/// Where the page's microphone or camera stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Switch {
    /// Not sending.
    #[default]
    Off,
    /// Asked the browser for it (the permission prompt may be up).
    Starting,
    /// Sending to the robot.
    On,
}

impl Switch {
    /// The name in `data-mic` / `data-camera`: `off`, `starting` or `on`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Starting => "starting",
            Self::On => "on",
        }
    }
}

/// Where the page stands with the SFU (set by `use_sfu`).
#[derive(Debug, Clone, PartialEq)]
pub struct SfuView {
    /// Where the picture (and sound) comes from.
    pub source: Source,
    /// The subscription: `off`, `subscribing`, `playing` or `retrying`.
    pub state: &'static str,
    /// Why the picture is the robot's when the robot offers the SFU.
    pub reason: Option<String>,
    /// The robot sends its video and sound to this page.
    pub robot_media: bool,
    /// The subscription's video and sound.
    pub video: Option<MediaStream>,
    /// The subscription's sound.
    pub audio: Option<MediaStream>,
}

impl Default for SfuView {
    fn default() -> Self {
        Self {
            source: Source::Robot,
            state: "off",
            reason: None,
            robot_media: true,
            video: None,
            audio: None,
        }
    }
}

/// Where the page keeps the "Video" setting (`robot`: always from the robot).
pub const VIDEO_VIA_KEY: &str = "rtcbot-video-via";

/// The "Video" setting as kept: through the SFU when offered, unless `robot`.
pub fn stored_prefer_sfu() -> bool {
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(VIDEO_VIA_KEY).ok().flatten());
    stored.as_deref() != Some("robot")
}

/// The page's state.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// Connection state.
    pub conn: ConnState,
    /// Through a relay room: its name and whether its robot is there.
    pub room: Option<RoomPresence>,
    /// Sessions that reached live since the page loaded.
    pub sessions: u32,
    /// The current session's video.
    pub stream: Option<MediaStream>,
    /// Last ping round trip.
    pub rtt_ms: Option<f64>,
    /// Robot clock minus page clock, from the last pong.
    pub clock_offset_ms: Option<f64>,
    /// Received video figures.
    pub video: VideoStats,
    /// The robot's own stream figures.
    pub robot_stats: Option<StreamStats>,
    /// Who drives, what the motors do.
    pub status: Option<RobotStatus>,
    /// The latest error or free-form message from the robot.
    pub notice: Option<Notice>,
    /// Distinct frames the page saw.
    pub frames: u64,
    /// Frame number of the last stamp read.
    pub stamp_frame: Option<u32>,
    /// Median glass-to-glass latency over the recent window.
    pub latency_ms: Option<f64>,
    /// The last drive state sent.
    pub drive: DriveState,
    /// A gamepad is connected.
    pub gamepad: bool,
    /// The help panel is open.
    pub help: bool,
    /// The settings panel is open.
    pub settings_open: bool,
    /// The video settings the robot last announced.
    pub settings: Option<VideoSettings>,
    /// The robot's own readings, by name, in the order they first came.
    pub values: Vec<(String, String)>,
    /// The last minute of latency, round trip and bitrate.
    pub history: History,
    /// The robot's audio, when it sends some.
    pub robot_audio: Option<MediaStream>,
    /// The robot's audio plays (the `<audio>` starts muted: autoplay rules).
    pub listening: bool,
    /// The page's microphone.
    pub mic: Switch,
    /// The page's camera, sent to the robot.
    pub camera: Switch,
    /// The microphone's stream while on, for its meter.
    pub mic_stream: Option<MediaStream>,
    /// The robot's audio level meter.
    pub robot_level: Reading,
    /// The dominant frequency of the robot's audio when last not silent.
    pub robot_hz: Option<f64>,
    /// The microphone's level meter.
    pub mic_level: Reading,
    /// Renegotiations completed since the page loaded.
    pub renegotiations: u32,
    /// The "Video" setting: through the SFU when the robot offers one.
    pub prefer_sfu: bool,
    /// The SFU side.
    pub sfu: SfuView,
}

/// The most distinct readings kept (the oldest names give way).
pub const MAX_VALUES: usize = 24;

impl Default for AppState {
    fn default() -> Self {
        Self {
            conn: ConnState::Connecting { attempt: 1 },
            room: None,
            sessions: 0,
            stream: None,
            rtt_ms: None,
            clock_offset_ms: None,
            video: VideoStats::default(),
            robot_stats: None,
            status: None,
            notice: None,
            frames: 0,
            stamp_frame: None,
            latency_ms: None,
            drive: DriveState::STOP,
            gamepad: false,
            help: false,
            settings_open: false,
            settings: None,
            values: Vec::new(),
            history: History::default(),
            robot_audio: None,
            listening: false,
            mic: Switch::Off,
            camera: Switch::Off,
            mic_stream: None,
            robot_level: Reading::default(),
            robot_hz: None,
            mic_level: Reading::default(),
            renegotiations: 0,
            prefer_sfu: stored_prefer_sfu(),
            sfu: SfuView::default(),
        }
    }
}

/// Every way the state changes.
#[derive(Debug, Clone)]
pub enum Action {
    /// Something happened on the connection.
    Conn(Event),
    /// The frame watcher's latest figures.
    Frames {
        /// Distinct frames seen.
        frames: u64,
        /// Last stamp frame number.
        stamp_frame: Option<u32>,
        /// Median latency.
        latency_ms: Option<f64>,
    },
    /// A drive state was sent.
    Drive(DriveState),
    /// A gamepad appeared or went away.
    Gamepad(bool),
    /// Show or hide help.
    ToggleHelp,
    /// Hide help.
    CloseHelp,
    /// Forget the notice.
    ClearNotice,
    /// Show or hide the settings panel.
    ToggleSettings,
    /// A message of the page's own for the notice (a failed snapshot...).
    Notice(String),
    /// Play or mute the robot's audio.
    ToggleListen,
    /// The microphone changed; its stream when on.
    Mic(Switch, Option<MediaStream>),
    /// The camera changed.
    Camera(Switch),
    /// The meters' latest readings: the robot's audio, the microphone.
    Levels(Reading, Reading),
    /// The relay room's latest word on its robot.
    Presence(RoomPresence),
    /// The "Video" setting changed: through the SFU when offered, or not.
    PreferSfu(bool),
    /// The SFU side changed.
    Sfu(SfuView),
    /// The SFU subscription's received-video figures.
    SfuVideo(VideoStats),
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Conn(event) => next.apply(event),
            Action::Frames {
                frames,
                stamp_frame,
                latency_ms,
            } => {
                next.frames = frames;
                next.stamp_frame = stamp_frame.or(next.stamp_frame);
                next.latency_ms = latency_ms.or(next.latency_ms);
            }
            Action::Drive(drive) => next.drive = drive,
            Action::Gamepad(on) => next.gamepad = on,
            Action::ToggleHelp => next.help = !next.help,
            Action::CloseHelp => next.help = false,
            Action::ClearNotice => next.notice = None,
            Action::ToggleSettings => next.settings_open = !next.settings_open,
            Action::Notice(text) => next.show(text, true),
            Action::ToggleListen => next.listening = !next.listening,
            Action::Mic(switch, stream) => {
                next.mic = switch;
                next.mic_stream = stream;
                if switch != Switch::On {
                    next.mic_level = Reading::default();
                }
            }
            Action::Camera(switch) => next.camera = switch,
            Action::Presence(presence) => next.room = Some(presence),
            Action::PreferSfu(prefer) => next.prefer_sfu = prefer,
            Action::Sfu(view) => {
                if view.source != next.sfu.source {
                    // The other source's figures would mislead.
                    next.video = VideoStats::default();
                }
                next.sfu = view;
            }
            Action::SfuVideo(video) => {
                if next.sfu.source == Source::Sfu {
                    next.video_figures(video);
                }
            }
            Action::Levels(robot, mic) => {
                next.robot_level = robot;
                next.robot_hz = robot.hz.or(next.robot_hz);
                next.mic_level = mic;
            }
        }
        if next == *self {
            self
        } else {
            Rc::new(next)
        }
    }
}

impl AppState {
    fn apply(&mut self, event: Event) {
        match event {
            Event::State(conn) => {
                if conn == ConnState::Live {
                    self.sessions += 1;
                } else {
                    // Figures of a dead session would mislead.
                    self.video = VideoStats::default();
                    self.rtt_ms = None;
                }
                self.conn = conn;
            }
            Event::Stream(stream) => self.stream = Some(stream),
            Event::Audio(stream) => self.robot_audio = Some(stream),
            Event::Renegotiated(Renegotiation::Done(_)) => self.renegotiations += 1,
            Event::Renegotiated(Renegotiation::Answered) => {}
            Event::Renegotiated(Renegotiation::Failed(why)) => self.show(why, true),
            Event::Rtt {
                rtt_ms,
                clock_offset_ms,
            } => {
                self.rtt_ms = Some(rtt_ms);
                self.clock_offset_ms = Some(clock_offset_ms);
            }
            Event::Video(video) => {
                if self.sfu.source == Source::Robot {
                    self.video_figures(video);
                }
            }
            Event::Message(text) => self.telemetry(&text),
        }
    }

    /// Received-video figures of the picture shown.
    fn video_figures(&mut self, video: VideoStats) {
        let live = self.conn == ConnState::Live && video.width > 0;
        self.history.push(
            self.latency_ms.filter(|_| live),
            self.rtt_ms,
            live.then_some(video.kbps),
        );
        self.video = video;
    }

    /// The video shown: the SFU's while it plays, else the robot's.
    pub fn shown_video(&self) -> Option<MediaStream> {
        match self.sfu.source {
            Source::Sfu => self.sfu.video.clone().or_else(|| self.stream.clone()),
            Source::Robot => self.stream.clone(),
        }
    }

    /// The sound played: the SFU's while its picture shows, else the robot's.
    pub fn shown_audio(&self) -> Option<MediaStream> {
        match self.sfu.source {
            Source::Sfu => self.sfu.audio.clone().or_else(|| self.robot_audio.clone()),
            Source::Robot => self.robot_audio.clone(),
        }
    }

    fn telemetry(&mut self, text: &str) {
        match RobotMessage::parse(text) {
            Ok(RobotMessage::Stats(stats)) => self.robot_stats = Some(stats),
            Ok(RobotMessage::Status(status)) => self.status = Some(status),
            Ok(RobotMessage::Pong(_) | RobotMessage::Negotiate(_)) => {}
            Ok(RobotMessage::Error(message)) => self.show(message, true),
            Ok(RobotMessage::Settings(settings)) => {
                // Told once on connecting; a notice only when an admin changed them.
                let before = self.settings.replace(settings.clone());
                if before.is_some_and(|b| b != settings) {
                    self.show(
                        format!(
                            "video now {}×{} at {} fps",
                            settings.width.unwrap_or(0),
                            settings.height.unwrap_or(0),
                            settings.fps.unwrap_or(0)
                        ),
                        false,
                    );
                }
            }
            Ok(RobotMessage::Other(text)) => match named_values(&text) {
                Some(values) => self.merge_values(values),
                None => self.show(text, false),
            },
            Err(err) => self.show(format!("unreadable message from the robot: {err}"), true),
        }
    }

    /// The latest value of each reading, new names after the known ones.
    fn merge_values(&mut self, values: Vec<(String, String)>) {
        for (name, value) in values {
            match self.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => {
                    if self.values.len() == MAX_VALUES {
                        self.values.remove(0);
                    }
                    self.values.push((name, value));
                }
            }
        }
    }

    /// The settings in force as far as the page knows: the robot's last word, else
    /// what its stats say.
    pub fn current_settings(&self) -> VideoSettings {
        if let Some(s) = &self.settings {
            return s.clone();
        }
        let stats = self.robot_stats.as_ref();
        VideoSettings {
            width: stats.map(|s| s.width),
            height: stats.map(|s| s.height),
            fps: None,
            bitrate_kbps: stats.and_then(|s| s.target_kbps),
            camera: None,
            cameras: None,
        }
    }

    /// Puts `text` on screen as the robot's latest message.
    fn show(&mut self, text: String, error: bool) {
        self.notice = Some(Notice {
            text,
            error,
            at_ms: crate::util::now_ms(),
        });
    }
}

//! Everything the page shows, changed only through [`Action`]s.

use crate::connection::{ConnState, Event, VideoStats};
use crate::wire::RobotMessage;
use shared_protocol::{DriveState, RobotStatus, StreamStats};
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

/// The page's state.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// Connection state.
    pub conn: ConnState,
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
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            conn: ConnState::Connecting { attempt: 1 },
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
            Event::Rtt {
                rtt_ms,
                clock_offset_ms,
            } => {
                self.rtt_ms = Some(rtt_ms);
                self.clock_offset_ms = Some(clock_offset_ms);
            }
            Event::Video(video) => self.video = video,
            Event::Message(text) => self.telemetry(&text),
        }
    }

    fn telemetry(&mut self, text: &str) {
        match RobotMessage::parse(text) {
            Ok(RobotMessage::Stats(stats)) => self.robot_stats = Some(stats),
            Ok(RobotMessage::Status(status)) => self.status = Some(status),
            Ok(RobotMessage::Pong(_)) => {}
            Ok(RobotMessage::Error(message)) => self.show(message, true),
            Ok(RobotMessage::Other(text)) => self.show(text, false),
            Err(err) => self.show(format!("unreadable message from the robot: {err}"), true),
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

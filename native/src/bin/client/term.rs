//! `drive`: keyboard driving in a terminal, for a desktop without a display.
//!
//! A terminal that reports key releases (the kitty keyboard protocol) stops the
//! robot when a key is let go; any other sends only presses and their repeats, so a
//! direction stays held until [`HOLD`] passes without one (longer than a keyboard's
//! repeat delay). Space stops at once; q, Esc or Ctrl-C stop and quit.

use crate::drive::{send_loop, Held};
use crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, KeyboardEnhancementFlags,
    PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::{execute, terminal};
use futures_util::StreamExt;
use rtcbot::RobotClient;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a direction stays held after its last press or repeat, where the
/// terminal does not report releases.
pub const HOLD: Duration = Duration::from_millis(600);

/// The keys held, from press, repeat and release events.
#[derive(Debug, Default)]
pub struct Keys {
    /// When each direction (forward, back, left, right) was last pressed; `None`: up.
    last: [Option<Instant>; 4],
    slow: bool,
}

/// What a key event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (or a direction changed).
    Drive,
    /// Stop now, keep driving.
    Stop,
    /// Stop and leave.
    Quit,
}

impl Keys {
    /// Applies one key event at `now`.
    pub fn apply(&mut self, key: KeyEvent, now: Instant) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char(' ') => {
                self.last = [None; 4];
                return Action::Stop;
            }
            _ => {}
        }
        let dir = match key.code {
            KeyCode::Up | KeyCode::Char('w' | 'W') => 0,
            KeyCode::Down | KeyCode::Char('s' | 'S') => 1,
            KeyCode::Left | KeyCode::Char('a' | 'A') => 2,
            KeyCode::Right | KeyCode::Char('d' | 'D') => 3,
            _ => return Action::Drive,
        };
        self.slow = key.modifiers.contains(KeyModifiers::SHIFT)
            || matches!(key.code, KeyCode::Char(c) if c.is_ascii_uppercase());
        self.last[dir] = match key.kind {
            KeyEventKind::Release => None,
            KeyEventKind::Press | KeyEventKind::Repeat => Some(now),
        };
        Action::Drive
    }

    /// What is held at `now`.
    pub fn held(&self, now: Instant) -> Held {
        let on = |i: usize| self.last[i].is_some_and(|t| now.saturating_duration_since(t) < HOLD);
        Held {
            forward: on(0),
            back: on(1),
            left: on(2),
            right: on(3),
            slow: self.slow,
        }
    }
}

/// Puts the terminal in raw mode (and asks for key releases) until dropped.
struct RawTerminal {
    enhanced: bool,
}

impl RawTerminal {
    fn enter() -> anyhow::Result<Self> {
        terminal::enable_raw_mode()?;
        let enhanced = terminal::supports_keyboard_enhancement().unwrap_or(false)
            && execute!(
                std::io::stdout(),
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::REPORT_EVENT_TYPES)
            )
            .is_ok();
        Ok(Self { enhanced })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if self.enhanced {
            let _ = execute!(std::io::stdout(), PopKeyboardEnhancementFlags);
        }
        let _ = terminal::disable_raw_mode();
    }
}

/// Drives `client` from this terminal's keys until quit or the robot leaves.
pub async fn drive(client: &RobotClient) -> anyhow::Result<()> {
    let raw = RawTerminal::enter()?;
    let releases = if raw.enhanced {
        "releases stop"
    } else {
        "a key held 0.6 s after its last repeat"
    };
    print!(
        "Driving: W/A/S/D or arrows (Shift: half speed), space stops, q quits ({releases}).\r\n"
    );
    let (axes_tx, axes) = watch::channel((0.0, 0.0));
    let sender = send_loop(client, axes);
    tokio::pin!(sender);
    let mut keys = Keys::default();
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(crate::drive::DRIVE_PERIOD);
    loop {
        tokio::select! {
            result = &mut sender => return result,
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    if keys.apply(key, Instant::now()) == Action::Quit {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => break,
            },
            // Held directions time out on their own.
            _ = tick.tick() => {}
        }
        axes_tx.send_replace(keys.held(Instant::now()).axes());
    }
    // Closing the watch makes the sender send its stop and end.
    drop(axes_tx);
    let result = sender.await;
    drop(raw);
    print!("Stopped.\r\n");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, kind: KeyEventKind) -> KeyEvent {
        KeyEvent::new_with_kind(code, KeyModifiers::NONE, kind)
    }

    #[test]
    fn a_press_holds_until_released_or_stale() {
        let t0 = Instant::now();
        let mut keys = Keys::default();
        keys.apply(key(KeyCode::Char('w'), KeyEventKind::Press), t0);
        keys.apply(key(KeyCode::Left, KeyEventKind::Press), t0);
        assert_eq!(keys.held(t0).axes(), (1.0, -1.0));
        keys.apply(key(KeyCode::Left, KeyEventKind::Release), t0);
        assert_eq!(keys.held(t0).axes(), (1.0, 0.0));
        // No repeat for longer than HOLD: up.
        assert_eq!(keys.held(t0 + HOLD).axes(), (0.0, 0.0));
        keys.apply(key(KeyCode::Char('w'), KeyEventKind::Repeat), t0 + HOLD);
        assert_eq!(keys.held(t0 + HOLD).axes(), (1.0, 0.0));
    }

    #[test]
    fn space_stops_and_q_quits() {
        let t0 = Instant::now();
        let mut keys = Keys::default();
        keys.apply(key(KeyCode::Char('D'), KeyEventKind::Press), t0);
        assert_eq!(keys.held(t0).axes(), (0.0, 0.5));
        assert_eq!(
            keys.apply(key(KeyCode::Char(' '), KeyEventKind::Press), t0),
            Action::Stop
        );
        assert_eq!(keys.held(t0).axes(), (0.0, 0.0));
        assert_eq!(
            keys.apply(key(KeyCode::Char('q'), KeyEventKind::Press), t0),
            Action::Quit
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(keys.apply(ctrl_c, t0), Action::Quit);
    }
}

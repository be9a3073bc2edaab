//! `view`: the robot's video in a window (minifb) with an overlay (state, fps,
//! capture-to-decode latency), driven with W/A/S/D or the arrows (Shift: half speed)
//! and a gamepad, full drive states at 20 Hz.
//!
//! The window runs on the main thread; the connection on the runtime. A robot that
//! refuses, cannot be reached or goes away (no picture for [`GONE_AFTER`]) is shown
//! in the window with the reason, and tried again with a backoff (1 s doubling to
//! 10 s).

use crate::drive::{add, send_loop, Held};
use crate::font::draw_text;
use crate::gamepad::Gamepads;
use crate::target::Connection;
use minifb::{Key, Window, WindowOptions};
use rtcbot::rtc::client::{Picture, PictureStream};
use rtcbot::RobotClient;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// No picture for this long: the robot went away.
pub const GONE_AFTER: Duration = Duration::from_secs(3);
/// The first wait before connecting again, doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the connection tells the window.
#[derive(Default)]
struct Shared {
    /// The newest picture not yet shown.
    picture: Option<Picture>,
    /// The connection's state, or why there is none.
    status: String,
    /// Pictures a second over the last second.
    fps: f64,
    /// The last picture's capture-to-decode latency.
    latency: Option<Duration>,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(shared: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens the window and keeps it connected until it is closed (or `limit` passes).
pub fn run(
    runtime: tokio::runtime::Runtime,
    target: String,
    connection: Connection,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let options = connection.options(true)?;
    let shared: SharedState = Arc::default();
    let (axes_tx, axes) = watch::channel((0.0, 0.0));
    let (quit_tx, quit) = watch::channel(false);
    let session = runtime.spawn(stay_connected(
        target.clone(),
        options,
        shared.clone(),
        axes,
        quit,
    ));
    let result = window_loop(&target, &shared, &axes_tx, limit);
    quit_tx.send_replace(true);
    // The session sends its stop and closes; give it a moment, no more.
    let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(2), session).await });
    result
}

fn window_loop(
    target: &str,
    shared: &SharedState,
    axes: &watch::Sender<(f64, f64)>,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let (mut width, mut height) = (640, 480);
    let mut window = Window::new(
        &format!("rtcbot-client: {target}"),
        width,
        height,
        WindowOptions {
            resize: true,
            scale_mode: minifb::ScaleMode::AspectRatioStretch,
            ..WindowOptions::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("opening a window (is there a display?): {e}"))?;
    window.set_target_fps(60);
    let mut buffer = vec![0u32; width * height];
    let mut gamepads = Gamepads::open();
    let started = Instant::now();
    while window.is_open() && !window.is_key_down(Key::Escape) {
        if limit.is_some_and(|l| started.elapsed() >= l) {
            break;
        }
        let (picture, status, fps, latency) = {
            let mut s = lock(shared);
            (s.picture.take(), s.status.clone(), s.fps, s.latency)
        };
        if let Some(picture) = picture {
            (width, height) = (picture.width(), picture.height());
            buffer.resize(width * height, 0);
            write_xrgb(&picture, &mut buffer);
        }
        let (pad, keys) = (
            gamepads.as_mut().map_or((0.0, 0.0), |g| g.poll()),
            held(&window).axes(),
        );
        let now = add(keys, pad);
        axes.send_if_modified(|a| std::mem::replace(a, now) != now);
        let mut shown = buffer.clone();
        let lines = overlay(&status, fps, latency, now);
        for (i, line) in lines.iter().enumerate() {
            draw_text(&mut shown, width, (8, 8 + i * 14), 2, line, 0x00ff_ff80);
        }
        window
            .update_with_buffer(&shown, width, height)
            .map_err(|e| anyhow::anyhow!("drawing the window: {e}"))?;
    }
    Ok(())
}

/// The overlay's lines: state, then fps and latency, then the drive state.
fn overlay(status: &str, fps: f64, latency: Option<Duration>, (f, t): (f64, f64)) -> Vec<String> {
    let latency = latency.map_or("-".into(), |l| {
        format!("{:.0} ms", l.as_secs_f64() * 1000.0)
    });
    vec![
        status.to_owned(),
        format!("{fps:.0} fps  latency {latency}"),
        format!("drive {f:+.1} {t:+.1}"),
    ]
}

/// The keys held in the window.
fn held(window: &Window) -> Held {
    let down = |keys: &[Key]| keys.iter().any(|k| window.is_key_down(*k));
    Held {
        forward: down(&[Key::W, Key::Up]),
        back: down(&[Key::S, Key::Down]),
        left: down(&[Key::A, Key::Left]),
        right: down(&[Key::D, Key::Right]),
        slow: down(&[Key::LeftShift, Key::RightShift]),
    }
}

/// A picture as minifb's `0RGB` pixels.
fn write_xrgb(picture: &Picture, out: &mut [u32]) {
    for (px, rgb) in out.iter_mut().zip(picture.rgb().chunks_exact(3)) {
        *px = u32::from(rgb[0]) << 16 | u32::from(rgb[1]) << 8 | u32::from(rgb[2]);
    }
}

/// Connects, shows pictures and drives until `quit`; connects again, with a
/// backoff, whenever the robot refuses or goes away.
async fn stay_connected(
    target: String,
    options: rtcbot::ClientOptions,
    shared: SharedState,
    axes: watch::Receiver<(f64, f64)>,
    mut quit: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    while !*quit.borrow() {
        lock(&shared).status = format!("connecting to {target}");
        let why = match RobotClient::connect(&target, options.clone()).await {
            Ok(mut client) => {
                backoff = FIRST_BACKOFF;
                let why = session(&mut client, &shared, axes.clone(), &mut quit).await;
                client.close().await;
                why
            }
            Err(err) => format!("no robot: {}", rtcbot::error_chain(&err)),
        };
        if *quit.borrow() {
            return;
        }
        tracing::warn!("{why}");
        {
            let mut s = lock(&shared);
            s.status = format!("{why}; again in {} s", backoff.as_secs());
            (s.fps, s.latency) = (0.0, None);
        }
        let _ = tokio::time::timeout(backoff, quitting(&mut quit)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Returns once the window closed.
async fn quitting(quit: &mut watch::Receiver<bool>) {
    let _ = quit.wait_for(|q| *q).await;
}

/// One connection: pictures to the window, drive states to the robot; why it ended.
async fn session(
    client: &mut RobotClient,
    shared: &SharedState,
    axes: watch::Receiver<(f64, f64)>,
    quit: &mut watch::Receiver<bool>,
) -> String {
    let mut pictures = match client.pictures() {
        Ok(p) => p,
        Err(err) => return format!("no video: {err}"),
    };
    lock(shared).status = "live".into();
    let client = &*client;
    tokio::select! {
        why = show(client, &mut pictures, shared) => why,
        result = send_loop(client, axes) => match result {
            Ok(()) => "stopped".into(),
            Err(err) => format!("the robot went away: {err}"),
        },
        _ = quitting(quit) => {
            // Stop the robot before leaving.
            let stop = rtcbot::protocol::DriveState::STOP;
            let _ = client.send(&rtcbot::protocol::Control::Drive(stop)).await;
            "closed".into()
        }
    }
}

/// Hands pictures to the window until none comes for [`GONE_AFTER`].
async fn show(client: &RobotClient, pictures: &mut PictureStream, shared: &SharedState) -> String {
    let mut times: VecDeque<Instant> = VecDeque::with_capacity(128);
    let mut asked: Option<Instant> = None;
    loop {
        let item = match tokio::time::timeout(GONE_AFTER, pictures.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => return "the robot's video ended".into(),
            Err(_) => {
                return format!(
                    "the robot went away (no picture for {} s)",
                    GONE_AFTER.as_secs()
                )
            }
        };
        let picture = match item {
            Ok(picture) => picture,
            Err(err) => {
                // Bad video: say so and ask for a keyframe, at most once a second.
                tracing::info!("{err}");
                if asked.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    asked = Some(Instant::now());
                    let _ = client.request_keyframe().await;
                }
                continue;
            }
        };
        let now = Instant::now();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
            || times.len() > 120
        {
            times.pop_front();
        }
        let mut s = lock(shared);
        s.fps = times.len() as f64;
        s.latency = picture.latency();
        s.status = format!("live {}x{}", picture.width(), picture.height());
        s.picture = Some(picture);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_says_state_rate_latency_and_drive() {
        let lines = overlay(
            "live 640x480",
            29.6,
            Some(Duration::from_micros(11_400)),
            (1.0, -0.5),
        );
        assert_eq!(
            lines,
            vec!["live 640x480", "30 fps  latency 11 ms", "drive +1.0 -0.5"]
        );
        assert_eq!(overlay("x", 0.0, None, (0.0, 0.0))[1], "0 fps  latency -");
    }
}

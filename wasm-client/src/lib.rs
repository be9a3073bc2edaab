//! The rtcbot-rs browser client.
//!
//! Two layers live in this crate:
//!
//! - framework-free WebRTC client code usable from any front end: [`session`] (the
//!   browser session core that the app and the npm API share: peer connection, data
//!   channel, offer/answer with the gathering wait, `POST` of the offer, tracks →
//!   streams), [`connection`] (the app's reconnecting connection on top of it:
//!   automatic reconnection with backoff, ping/RTT, inbound video stats), [`drive`]
//!   (full [`DriveState`](shared_protocol::DriveState) sender at 20 Hz, key folding,
//!   gamepad dead zone), [`audio_meter`] (level and dominant frequency of a stream),
//!   [`sfu`] (watching through the robot's Janus VideoRoom: its messages, the
//!   decisions of when, and the subscriber), [`latency`] (reads the robot's frame [`Stamp`](shared_protocol::Stamp)
//!   from the `<video>` element for glass-to-glass latency), [`wire`] (the few
//!   protocol messages the client writes and reads, through [`json`] rather than
//!   serde_json, which keeps the bundle small) and [`util`];
//! - the Yew app (cargo feature `app`, on by default): `state` (one reducer),
//!   `hooks` (`use_connection`, `use_keyboard_drive`, `use_gamepad`,
//!   `use_frame_stamps`) and `components`.
//!
//! Everything that needs a browser is compiled for `wasm32` only. On any other target
//! the crate is its pure part (drive mapping, latency window, wire formatting and
//! reading, the session's error rules), so its unit tests run natively:
//! `cargo test -p rtcbot-wasm`.
//!
//! # Hooks for automated tests
//!
//! The root element `#app` (a `<main>`) carries the live state as attributes,
//! updated at least every 250 ms:
//!
//! | attribute | meaning |
//! |---|---|
//! | `data-conn` | `connecting`, `live`, `reconnecting` or `failed` |
//! | `data-conn-reason` | why the last session ended or the attempt failed (empty when none) |
//! | `data-attempt` | connection attempt number (1 for the first) |
//! | `data-sessions` | sessions that reached `live` since page load (2 after one reconnection) |
//! | `data-frames` | distinct decoded video frames seen by the page |
//! | `data-stamp-frame` | frame number of the last stamp read from the video (empty before one) |
//! | `data-latency-ms` | p50 glass-to-glass latency over the last 60 stamped frames (empty before one) |
//! | `data-rtt-ms` | last data-channel ping round trip (empty before one) |
//! | `data-fps`, `data-kbps`, `data-resolution` | received video figures from `getStats` (`640x480`) |
//! | `data-drive` | last drive state sent: `forward,turn,seq` |
//! | `data-gamepad` | `1` while a gamepad is connected |
//! | `data-listening` | `1` while the robot's audio plays (after a tap on Listen) |
//! | `data-mic`, `data-camera` | `off`, `starting` or `on`: the page's microphone / camera sent to the robot |
//! | `data-renegotiations` | renegotiations over the data channel completed since page load |
//! | `data-robot-audio-level`, `data-mic-level` | the meters, 0 to 1 (-60 to 0 dBFS) |
//! | `data-robot-audio-hz` | dominant frequency of the robot's audio when last not silent (empty before) |
//! | `data-video-source` | `sfu` while the picture comes through the robot's SFU (Janus), else `robot` (also on `.stage`) |
//! | `data-sfu` | the page's SFU subscription: `off`, `subscribing`, `playing` or `retrying` |
//! | `data-sfu-reason` | why the picture is not (or no longer) the SFU's (empty when none) |
//! | `data-robot-media` | `on` while the robot sends its video and sound to this page, `off` while the SFU's play |
//! | `data-sfu-publisher` | the robot's SFU publisher state from its stats (`publishing`...; empty without one) |
//!
//! `window.__rtcbot` holds the same figures as a plain object (`conn`, `reason`,
//! `attempt`, `sessions`, `frames`, `stampFrame`, `latencyMs`, `rttMs`, `fps`, `kbps`,
//! `width`, `height`, `drive: {forward, turn, seq}`, `status`, `stats`, `listening`,
//! `mic`, `camera`, `renegotiations`, `robotAudio`, `robotAudioLevel`, `robotAudioHz`,
//! `micLevel`, `videoSource`, `sfu`, `sfuReason`, `robotMedia`), refreshed with the
//! attributes.
//!
//! Watching through the SFU: when the robot's stats offer its Janus feed
//! (`sfu.watch`) and the page's "Video" setting (settings panel, kept in
//! `localStorage`) allows it, the page subscribes to Janus and, once that video
//! plays, shows it and turns the robot's own media to the page off (the data
//! channels stay: driving and telemetry are unchanged). A failed or ended
//! subscription gives the picture back to the robot and is retried with backoff. The
//! feed is remembered per connect URL, so the next load goes straight to Janus.
//!
//! Element ids: `video` (the `<video>`), `joystick` (the touch/mouse pad: drag from
//! its centre; pointer events, so CDP mouse events work), `conn-badge`, `telemetry`,
//! `help` (panel, opened by `help-button` or the `?` / `h` key), `retry` (button shown
//! while not live: reconnect now), `robot-audio` (the `<audio>`), `listen-button`,
//! `mic-button`, `camera-button`, `robot-level` and `mic-level` (the meters).
//!
//! Query parameters: `gamepad_hz` (gamepad poll rate, default 10), `connect` (signaling
//! URL, default `connect`, relative to the page), `ice` (comma-separated ICE server
//! URLs, default none: LAN/localhost only).
//!
//! Keyboard: W/A/S/D or arrows drive (forward = W − S, turn = D − A), Shift halves
//! the speed; releasing every key, leaving the window or hiding the tab sends a zero
//! state. The gamepad uses axis 1 (up = forward) and axis 0 (turn) with a 0.1 dead zone.

pub mod audio_meter;
#[cfg(target_arch = "wasm32")]
pub mod connection;
pub mod drive;
pub mod history;
pub mod json;
pub mod latency;
pub mod session;
pub mod sfu;
pub mod util;
pub mod wire;

/// The rtcbot.js-compatible JS API for the npm package (feature `js-api`).
#[cfg(all(feature = "js-api", target_arch = "wasm32"))]
pub mod js_api;

#[cfg(all(feature = "app", target_arch = "wasm32"))]
mod app;
#[cfg(all(feature = "app", target_arch = "wasm32"))]
mod components;
#[cfg(all(feature = "app", target_arch = "wasm32"))]
mod hooks;
#[cfg(all(feature = "app", target_arch = "wasm32"))]
mod state;

/// Mounts the Yew app on `<body>`.
#[cfg(all(feature = "app", target_arch = "wasm32"))]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    app::mount();
}

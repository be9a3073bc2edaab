//! Live settings: an admin's `{"type":"settings",...}` changes the video's size, rate,
//! bitrate or camera while viewers watch.
//!
//! A bitrate alone goes to the running encoder (or, with congestion control, becomes
//! its ceiling). Anything else opens the pipeline again from `[video]` with the new
//! values, on the stream's thread ([`VideoStream::replace`](crate::video::VideoStream::replace)):
//! the encoder restarts, every viewer's next frame is a keyframe, nobody is dropped.
//! Should the new settings fail (a camera that does not open), the old ones come back
//! and the admin is told why. Every peer then gets the settings in force.
//!
//! [`merge`] is the pure part: a request applied to the `[video]` in force, checked.

use super::RobotInner;
use crate::control::PeerId;
use crate::video::config::VideoConfig;
use crate::video::pipeline::open_pipeline;
use crate::video::stream::PipelineOpener;
use shared_protocol::{Control, Telemetry, VideoSettings};
use std::sync::Weak;

/// `request` applied to `current`: the new `[video]`, or why not (for a person).
pub fn merge(current: &VideoConfig, request: &VideoSettings) -> Result<VideoConfig, String> {
    let mut next = current.clone();
    next.width = request.width.unwrap_or(next.width);
    next.height = request.height.unwrap_or(next.height);
    next.fps = request.fps.unwrap_or(next.fps);
    next.bitrate_kbps = request.bitrate_kbps.unwrap_or(next.bitrate_kbps);
    if let Some(camera) = &request.camera {
        next.camera = camera
            .parse()
            .map_err(|e| format!("invalid setting video.camera: {e}"))?;
    }
    next.validate()
        .map_err(|(field, reason)| format!("invalid setting {field}: {reason}"))?;
    Ok(next)
}

/// Whether going from `a` to `b` needs a new pipeline (anything but the bitrate).
pub fn needs_new_pipeline(a: &VideoConfig, b: &VideoConfig) -> bool {
    (a.width, a.height, a.fps, &a.camera) != (b.width, b.height, b.fps, &b.camera)
}

/// The settings in force, as peers are told them.
pub fn in_force(v: &VideoConfig) -> VideoSettings {
    VideoSettings {
        width: Some(v.width),
        height: Some(v.height),
        fps: Some(v.fps),
        bitrate_kbps: Some(v.bitrate_kbps),
        camera: Some(v.camera.to_string()),
        cameras: None,
    }
}

/// The cameras an admin may switch to: the built-in ones and every V4L2 capture
/// device found now.
pub fn cameras() -> Vec<String> {
    let mut names: Vec<String> = ["auto", "test-pattern", "test-pattern:noisy"]
        .into_iter()
        .map(String::from)
        .collect();
    names.extend(
        crate::video::source::v4l2::list_cameras()
            .into_iter()
            .map(|c| c.path.display().to_string()),
    );
    names.truncate(shared_protocol::settings::MAX_CAMERAS);
    names
}

/// What a peer is told: the settings in force and the cameras.
pub fn announce(v: &VideoConfig) -> VideoSettings {
    VideoSettings {
        cameras: Some(cameras()),
        ..in_force(v)
    }
}

/// Applies every admin's settings message until the robot is gone.
pub(super) async fn apply_requests(robot: Weak<RobotInner>) {
    let mut events = match robot.upgrade() {
        Some(robot) => robot.hub.events(),
        None => return,
    };
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        // Only an admin's reach the hub's events (the hub refuses the others').
        let Control::Settings(request) = event.control else {
            continue;
        };
        let Some(robot) = robot.upgrade() else { return };
        if let Err(why) = apply(&robot, &request).await {
            tracing::info!(peer = event.peer, "live settings refused: {why}");
            let _ = reply_error(&robot, event.peer, why);
        }
    }
}

fn reply_error(robot: &RobotInner, peer: PeerId, message: String) -> Option<()> {
    robot
        .registry
        .get(peer)?
        .send(&Telemetry::Error { message })
        .ok()
}

async fn apply(robot: &RobotInner, request: &VideoSettings) -> Result<(), String> {
    if !robot.video_from_config {
        return Err(
            "this robot's video comes from its program, not from [video]: \
                    live settings are off"
                .into(),
        );
    }
    let current = robot.live_video();
    let next = merge(&current, request)?;
    if needs_new_pipeline(&current, &next) {
        let open = opener(next.clone());
        let fallback = (opener(current.clone()), current.frame_period());
        let answer = robot
            .stream
            .replace(open, next.frame_period(), Some(fallback));
        match answer.await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return Err(format!(
                    "the robot could not apply these settings ({why}); it kept the ones before"
                ))
            }
            Err(_) => return Err("the video stopped".into()),
        }
    }
    if !next.congestion_control {
        robot.stream.set_target_bitrate(next.bitrate_kbps);
    }
    tracing::info!(
        "live settings: {}x{}@{} {} kbit/s, camera {}",
        next.width,
        next.height,
        next.fps,
        next.bitrate_kbps,
        next.camera
    );
    let settings = announce(&next);
    *robot.live_video.lock().expect("live video lock") = next;
    *robot.peer_context.settings.lock().expect("settings lock") = Some(settings.clone());
    robot.broadcast(&Telemetry::Settings(settings));
    Ok(())
}

/// Opens `[video]` as `v` says, on the stream's thread.
fn opener(v: VideoConfig) -> PipelineOpener {
    Box::new(move || open_pipeline(&v).map_err(|err| crate::error::chain(&err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_changes_only_what_it_names_and_is_checked() {
        let current = VideoConfig::default();
        let next = merge(
            &current,
            &VideoSettings {
                width: Some(320),
                height: Some(240),
                ..VideoSettings::default()
            },
        )
        .unwrap();
        assert_eq!((next.width, next.height, next.fps), (320, 240, current.fps));
        assert!(needs_new_pipeline(&current, &next));
        let faster = merge(
            &current,
            &VideoSettings {
                bitrate_kbps: Some(600),
                ..VideoSettings::default()
            },
        )
        .unwrap();
        assert!(!needs_new_pipeline(&current, &faster), "a bitrate alone");
        let err = merge(
            &current,
            &VideoSettings {
                width: Some(641),
                ..VideoSettings::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("video.width"), "{err}");
        let err = merge(
            &current,
            &VideoSettings {
                camera: Some("webcam".into()),
                ..VideoSettings::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("video.camera"), "{err}");
        assert_eq!(in_force(&next).width, Some(320));
        assert_eq!(in_force(&next).camera.as_deref(), Some("auto"));
    }
}

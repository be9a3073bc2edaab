//! Congestion control's last step: every [`INTERVAL`], the viewers' bandwidth estimates
//! (each peer's own, from its feedback) go through the configured
//! [`RatePolicy`](crate::video::RatePolicy), and the shared encoder gets the result.

use super::RobotInner;
use crate::video::rate::{worth_changing, ViewerEstimate};
use std::sync::Weak;
use std::time::Duration;

/// How often the encoder's bitrate follows the estimates: as often as viewers send
/// feedback (every 50–100 ms), so a cut reaches the encoder within a few frames.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// Sets the stream's bitrate from the watching viewers' estimates until the robot
/// is gone.
pub(super) async fn follow_viewers(robot: Weak<RobotInner>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut applied = 0u32;
    loop {
        tick.tick().await;
        let Some(robot) = robot.upgrade() else { return };
        let driver = robot.hub.driver();
        let viewers: Vec<ViewerEstimate> = robot
            .registry
            .list()
            .iter()
            .filter(|p| p.watching())
            .map(|p| ViewerEstimate {
                kbps: p.bandwidth_kbps(),
                driving: driver == Some(p.id()),
            })
            .collect();
        let Some(target) = robot.live_video().rate_policy().target_kbps(&viewers) else {
            continue;
        };
        if applied == 0 || worth_changing(applied, target) {
            applied = target;
            robot.stream.set_target_bitrate(target);
        }
    }
}

//! The robot in a relay room: with `[relay]` set, [`Robot::start`](super::Robot::start)
//! runs [`relay::run`](crate::relay::run) with this answerer, which hands each offer
//! to the robot as `/connect` would (without keeping the robot alive: a robot dropped
//! or shut down leaves its room).

use super::{Robot, RobotInner};
use crate::auth::Role;
use crate::relay::Answerer;
use shared_protocol::SessionDescription;
use std::sync::Weak;

/// Answers a relay's offers for the robot, while it lives.
#[derive(Clone)]
pub(super) struct RelayAnswerer(pub(super) Weak<RobotInner>);

impl Answerer for RelayAnswerer {
    fn answer(
        &self,
        offer: SessionDescription,
        role: Role,
    ) -> impl std::future::Future<Output = Result<SessionDescription, String>> + Send {
        let robot = self.0.upgrade().map(|inner| Robot { inner });
        async move {
            let robot = robot.ok_or("the robot has shut down")?;
            robot
                .connect_as(&offer, None, role)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

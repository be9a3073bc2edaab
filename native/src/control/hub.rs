//! The control hub: where drivers' messages land inside the robot.
//!
//! Peers hand every parsed [`Control`] to the [`ControlHub`]. It keeps the latest
//! [`DriveState`] in a `watch` channel (hardware code reads the freshest state) and
//! broadcasts every message as a [`ControlEvent`] (keyboard, gamepad, custom JSON...).
//!
//! Safety is built in:
//! - **one driver at a time**: the first peer to send a drive state holds the drive
//!   until it leaves or goes silent; other peers' drive states are refused with
//!   [`ControlRefused`] (their other messages still reach the robot, and they still see
//!   video);
//! - **dead-man stop**: when the driver sends nothing for [`ControlHub::silence_timeout`]
//!   or leaves, the hub publishes [`DriveState::STOP`] and releases the drive;
//! - a stale drive state (lower `seq` from the same peer) is dropped.
//!
//! Every change of driver and every safety stop is announced as a [`DriveNotice`], so
//! the robot can tell its peers why.

use crate::auth::Role;
use shared_protocol::{Control, DriveState, MotorState, RobotStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{broadcast, watch};

/// Identifies one connected peer for the robot's lifetime.
pub type PeerId = u64;

/// One message from one peer.
#[derive(Debug, Clone)]
pub struct ControlEvent {
    /// Who sent it.
    pub peer: PeerId,
    /// What was sent.
    pub control: Control,
    /// When the robot received it.
    pub at: Instant,
}

/// Why the drive state last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveSource {
    /// A peer sent it.
    Peer(PeerId),
    /// The robot stopped because the driving peer went silent.
    Silence,
    /// The robot stopped because the driving peer left.
    PeerLeft,
    /// Initial state or shutdown.
    Robot,
}

/// A drive state was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlRefused {
    /// Another peer holds the drive.
    #[error(
        "another peer is driving the robot: your drive controls are refused until it \
         leaves or stops sending for {}ms",
        .silence.as_millis()
    )]
    NotDriver {
        /// The peer that drives.
        driver: PeerId,
        /// How long the driver must be silent to lose the drive.
        silence: Duration,
    },
    /// The peer connected with a token that may not change live settings.
    #[error("you connected as a {role}: live settings need an admin's token")]
    NotAdmin {
        /// The peer's role.
        role: Role,
    },
    /// The peer connected with a token that may not drive.
    #[error("you connected as a {role}: drive controls need a driver's or admin's token")]
    NotAllowed {
        /// The peer's role.
        role: Role,
    },
}

/// A change of driver or a safety stop, for telling peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveNotice {
    /// Who drives now.
    pub driver: Option<PeerId>,
    /// Why, for a person (`"control went silent"`...).
    pub reason: String,
    /// The motors were stopped by this change.
    pub stopped: bool,
}

#[derive(Debug, Clone, Copy)]
struct DriveOwner {
    source: DriveSource,
    last_seq: u64,
    at: Instant,
}

/// Receives controls from peers and publishes them to the robot's code.
#[derive(Clone)]
pub struct ControlHub {
    drive: watch::Sender<DriveState>,
    events: broadcast::Sender<ControlEvent>,
    notices: broadcast::Sender<DriveNotice>,
    owner: Arc<Mutex<DriveOwner>>,
    silence_timeout: Duration,
    /// Dead-man stops so far: the motors were running and the driver went silent.
    silence_stops: Arc<std::sync::atomic::AtomicU64>,
}

impl ControlHub {
    /// A hub that stops the drive after `silence_timeout` without drive messages.
    pub fn new(silence_timeout: Duration) -> Self {
        let (drive, _) = watch::channel(DriveState::STOP);
        let (events, _) = broadcast::channel(256);
        let (notices, _) = broadcast::channel(64);
        Self {
            drive,
            events,
            notices,
            owner: Arc::new(Mutex::new(DriveOwner {
                source: DriveSource::Robot,
                last_seq: 0,
                at: Instant::now(),
            })),
            silence_timeout,
            silence_stops: Arc::default(),
        }
    }

    /// How many times the dead-man stopped running motors because the driver went
    /// silent (in `/health` as `silence_stops`).
    pub fn silence_stops(&self) -> u64 {
        self.silence_stops
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long the driver may send nothing before the drive stops and is released.
    pub fn silence_timeout(&self) -> Duration {
        self.silence_timeout
    }

    /// The latest drive state; `changed()` wakes on every new one.
    pub fn drive(&self) -> watch::Receiver<DriveState> {
        self.drive.subscribe()
    }

    /// Every control message from every peer (refused drive states excluded).
    pub fn events(&self) -> broadcast::Receiver<ControlEvent> {
        self.events.subscribe()
    }

    /// Changes of driver and safety stops.
    pub fn notices(&self) -> broadcast::Receiver<DriveNotice> {
        self.notices.subscribe()
    }

    /// The peer holding the drive, if any.
    pub fn driver(&self) -> Option<PeerId> {
        match self.owner.lock().expect("owner lock").source {
            DriveSource::Peer(id) => Some(id),
            _ => None,
        }
    }

    /// Why the drive state last changed.
    pub fn drive_source(&self) -> DriveSource {
        self.owner.lock().expect("owner lock").source
    }

    fn notify(&self, driver: Option<PeerId>, reason: &str, stopped: bool) {
        // No subscriber is fine.
        let _ = self.notices.send(DriveNotice {
            driver,
            reason: reason.to_owned(),
            stopped,
        });
    }

    /// The robot's status as `peer` should see it, saying why it changed when `reason`
    /// is given.
    pub fn status_for(&self, peer: PeerId, reason: Option<String>) -> RobotStatus {
        let driver = self.driver();
        RobotStatus {
            driver: driver.is_some(),
            you_drive: driver == Some(peer),
            motors: if self.drive.borrow().is_stopped() {
                MotorState::Stopped
            } else {
                MotorState::Running
            },
            reason,
        }
    }

    /// Hands one message from `peer` to the robot. A drive state from a peer that does
    /// not hold the drive is refused while another peer does.
    pub fn publish(&self, peer: PeerId, control: Control) -> Result<(), ControlRefused> {
        self.publish_as(peer, Role::Admin, control)
    }

    /// [`ControlHub::publish`] for a peer with `role`: a viewer's drive states are
    /// refused (its other messages reach the robot).
    pub fn publish_as(
        &self,
        peer: PeerId,
        role: Role,
        control: Control,
    ) -> Result<(), ControlRefused> {
        let now = Instant::now();
        if matches!(control, Control::Settings(_)) && !role.may_configure() {
            return Err(ControlRefused::NotAdmin { role });
        }
        if let Control::Drive(state) = &control {
            if !role.may_drive() {
                return Err(ControlRefused::NotAllowed { role });
            }
            let mut owner = self.owner.lock().expect("owner lock");
            let new_driver = match owner.source {
                DriveSource::Peer(driver) if driver != peer => {
                    return Err(ControlRefused::NotDriver {
                        driver,
                        silence: self.silence_timeout,
                    })
                }
                DriveSource::Peer(_) => false,
                _ => true,
            };
            if !new_driver && state.seq != 0 && state.seq <= owner.last_seq {
                tracing::debug!(peer, seq = state.seq, "dropping a stale drive state");
                return Ok(());
            }
            *owner = DriveOwner {
                source: DriveSource::Peer(peer),
                last_seq: state.seq,
                at: now,
            };
            self.drive.send_replace(*state);
            drop(owner);
            if new_driver {
                tracing::info!(peer, "peer took the drive");
                self.notify(Some(peer), "a peer took the drive", false);
            }
        }
        // No subscriber is fine: nobody listens for events yet.
        let _ = self.events.send(ControlEvent {
            peer,
            control,
            at: now,
        });
        Ok(())
    }

    /// Stops and releases the drive if `peer` was driving. Called when a peer leaves.
    pub fn peer_left(&self, peer: PeerId) {
        self.release(peer, "the driving peer left");
    }

    /// Stops and releases the drive if `peer` is driving, for `reason`: any peer may
    /// take it next, `peer` too when it comes back. Returns whether it was the driver.
    pub fn release(&self, peer: PeerId, reason: &str) -> bool {
        let mut owner = self.owner.lock().expect("owner lock");
        if owner.source != DriveSource::Peer(peer) {
            return false;
        }
        *owner = DriveOwner {
            source: DriveSource::PeerLeft,
            last_seq: 0,
            at: Instant::now(),
        };
        drop(owner);
        self.stop(reason);
        true
    }

    /// Stops the drive because of `reason` (logged and announced). The driver, if any,
    /// keeps the drive.
    pub fn stop(&self, reason: &str) {
        let was_moving = !self.drive.borrow().is_stopped();
        if was_moving {
            tracing::info!("stopping motors: {reason}");
        }
        self.drive.send_replace(DriveState::STOP);
        self.notify(self.driver(), reason, was_moving);
    }

    /// Checks for silence once; returns true if it stopped or released the drive.
    pub fn check_silence(&self, now: Instant) -> bool {
        let mut owner = self.owner.lock().expect("owner lock");
        let holding = matches!(owner.source, DriveSource::Peer(_));
        if holding && now.saturating_duration_since(owner.at) >= self.silence_timeout {
            *owner = DriveOwner {
                source: DriveSource::Silence,
                last_seq: 0,
                at: now,
            };
            drop(owner);
            if self.drive.borrow().is_stopped() {
                self.notify(None, "the idle driver released the drive", false);
            } else {
                self.silence_stops
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.stop("control went silent");
            }
            return true;
        }
        false
    }

    /// When the next silence check is due.
    fn next_check(&self, now: Instant) -> Instant {
        let owner = self.owner.lock().expect("owner lock");
        match owner.source {
            DriveSource::Peer(_) => owner.at + self.silence_timeout,
            _ => now + self.silence_timeout,
        }
    }

    /// Runs the silence watchdog until its task is aborted (the robot aborts it when it
    /// shuts down). It sleeps until the driver's deadline exactly, so the stop comes on
    /// time.
    pub async fn watch_silence(self) {
        let mut taken = self.notices();
        loop {
            let deadline = self.next_check(Instant::now());
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                // A new driver: recompute its deadline.
                _ = taken.recv() => {}
            }
            self.check_silence(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(forward: f64, seq: u64) -> Control {
        Control::Drive(DriveState::new(forward, 0.0, seq).unwrap())
    }

    #[test]
    fn latest_state_wins_and_stale_states_are_dropped() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let rx = hub.drive();
        hub.publish(1, drive(0.5, 1)).unwrap();
        hub.publish(1, drive(0.7, 3)).unwrap();
        hub.publish(1, drive(0.1, 2)).unwrap(); // stale
        assert_eq!(rx.borrow().forward, 0.7);
        assert_eq!(hub.driver(), Some(1));
    }

    #[test]
    fn an_interrupted_driver_stops_and_releases_the_drive() {
        let hub = ControlHub::new(Duration::from_secs(60));
        hub.publish(1, drive(1.0, 5)).unwrap();
        assert!(
            !hub.release(2, "not the driver"),
            "another peer's interruption"
        );
        assert_eq!(
            hub.drive().borrow().forward,
            1.0,
            "does not stop the driver"
        );
        assert!(hub.release(1, "interrupted"));
        assert!(
            hub.drive().borrow().is_stopped(),
            "the driver's interruption stops"
        );
        assert_eq!(hub.driver(), None, "and frees the drive");
        hub.publish(1, drive(0.5, 6)).unwrap();
        assert_eq!(hub.drive().borrow().forward, 0.5, "it drives on when back");
        assert!(
            hub.publish(2, drive(1.0, 1)).is_err(),
            "and holds the drive again"
        );
        hub.release(1, "interrupted again");
        hub.publish(2, drive(1.0, 1)).unwrap();
        assert_eq!(hub.driver(), Some(2), "or another peer takes it meanwhile");
    }

    #[test]
    fn stops_when_the_driver_leaves_or_goes_silent() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let rx = hub.drive();
        hub.publish(1, drive(1.0, 1)).unwrap();
        hub.peer_left(2); // not the driver
        assert_eq!(rx.borrow().forward, 1.0);
        hub.peer_left(1);
        assert!(rx.borrow().is_stopped());
        assert_eq!(hub.driver(), None);
        assert_eq!(hub.silence_stops(), 0, "leaving is not a dead-man stop");

        hub.publish(3, drive(1.0, 1)).unwrap();
        let sent = Instant::now();
        assert!(!hub.check_silence(sent + Duration::from_millis(100)));
        assert!(hub.check_silence(sent + Duration::from_millis(400)));
        assert!(rx.borrow().is_stopped());
        assert_eq!(hub.silence_stops(), 1);
    }

    #[test]
    fn a_viewer_never_drives_but_still_talks() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let mut events = hub.events();
        let refused = hub.publish_as(5, Role::Viewer, drive(1.0, 1)).unwrap_err();
        assert_eq!(refused, ControlRefused::NotAllowed { role: Role::Viewer });
        assert!(
            refused.to_string().contains("you connected as a viewer"),
            "{refused}"
        );
        assert_eq!(
            hub.driver(),
            None,
            "a refused viewer does not take the drive"
        );
        assert!(hub.drive().borrow().is_stopped());
        assert!(
            events.try_recv().is_err(),
            "a refused drive state is not an event"
        );
        hub.publish_as(5, Role::Viewer, Control::Text("hi".into()))
            .unwrap();
        assert_eq!(events.try_recv().unwrap().peer, 5);
        hub.publish_as(6, Role::Driver, drive(1.0, 1)).unwrap();
        assert_eq!(hub.driver(), Some(6));
        // Live settings are an admin's.
        let settings = Control::Settings(shared_protocol::VideoSettings {
            fps: Some(15),
            ..Default::default()
        });
        let refused = hub
            .publish_as(6, Role::Driver, settings.clone())
            .unwrap_err();
        assert!(
            refused.to_string().contains("need an admin's token"),
            "{refused}"
        );
        hub.publish_as(7, Role::Admin, settings).unwrap();
    }

    #[tokio::test]
    async fn every_message_is_broadcast() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let mut events = hub.events();
        hub.publish(4, Control::Text("hi".into())).unwrap();
        let event = events.recv().await.unwrap();
        assert_eq!((event.peer, event.control), (4, Control::Text("hi".into())));
    }

    #[test]
    fn one_driver_at_a_time_until_it_leaves_or_goes_silent() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let mut notices = hub.notices();
        let rx = hub.drive();
        hub.publish(1, drive(0.5, 1)).unwrap();
        assert_eq!(notices.try_recv().unwrap().driver, Some(1));
        let refused = hub.publish(2, drive(-1.0, 1)).unwrap_err();
        assert_eq!(
            refused,
            ControlRefused::NotDriver {
                driver: 1,
                silence: Duration::from_millis(300)
            }
        );
        assert!(refused.to_string().contains("another peer is driving"));
        assert_eq!(rx.borrow().forward, 0.5);
        // Other messages from the second peer still go through.
        hub.publish(2, Control::Text("hello".into())).unwrap();

        // A driver that holds a zero state still holds the drive...
        hub.publish(1, drive(0.0, 2)).unwrap();
        assert!(hub.publish(2, drive(1.0, 2)).is_err());
        // ...until it goes silent: then the drive is released and announced.
        let sent = Instant::now();
        assert!(hub.check_silence(sent + Duration::from_millis(301)));
        assert_eq!(hub.driver(), None);
        let notice = notices.try_recv().unwrap();
        assert_eq!(notice.reason, "the idle driver released the drive");
        assert!(!notice.stopped, "it was not moving");
        hub.publish(2, drive(1.0, 3)).unwrap();
        assert_eq!(hub.driver(), Some(2));
        hub.peer_left(2);
        let left: Vec<_> = std::iter::from_fn(|| notices.try_recv().ok()).collect();
        assert!(
            left.iter()
                .any(|n| n.stopped && n.reason == "the driving peer left"),
            "{left:?}"
        );
        hub.publish(1, drive(1.0, 9)).unwrap();
        assert_eq!(hub.driver(), Some(1));
    }

    #[tokio::test]
    async fn the_watchdog_stops_a_silent_driver() {
        let hub = ControlHub::new(Duration::from_millis(50));
        tokio::spawn(hub.clone().watch_silence());
        let mut rx = hub.drive();
        let mut notices = hub.notices();
        hub.publish(1, drive(1.0, 1)).unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|d| d.is_stopped()))
            .await
            .expect("the watchdog stops the drive")
            .unwrap();
        assert_eq!(hub.driver(), None);
        let reasons: Vec<_> = std::iter::from_fn(|| notices.try_recv().ok())
            .map(|n| n.reason)
            .collect();
        assert!(
            reasons.contains(&"control went silent".to_string()),
            "{reasons:?}"
        );
    }
}

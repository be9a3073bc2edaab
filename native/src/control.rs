//! The control hub: where drivers' messages land inside the robot.
//!
//! Peers hand every parsed [`Control`] to the [`ControlHub`]. It keeps the latest
//! [`DriveState`] in a `watch` channel (hardware code reads the freshest state) and
//! broadcasts every message as a [`ControlEvent`] (keyboard, gamepad, custom JSON...).
//!
//! Safety is built in: a stale drive state (lower `seq` from the same peer) is
//! dropped; when the peer that set a moving drive state leaves, or sends nothing for
//! [`ControlHub::silence_timeout`], the hub publishes [`DriveState::STOP`].

use shared_protocol::{Control, DriveState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    owner: Arc<Mutex<DriveOwner>>,
    silence_timeout: Duration,
}

impl ControlHub {
    /// A hub that stops the drive after `silence_timeout` without drive messages.
    pub fn new(silence_timeout: Duration) -> Self {
        let (drive, _) = watch::channel(DriveState::STOP);
        let (events, _) = broadcast::channel(256);
        Self {
            drive,
            events,
            owner: Arc::new(Mutex::new(DriveOwner {
                source: DriveSource::Robot,
                last_seq: 0,
                at: Instant::now(),
            })),
            silence_timeout,
        }
    }

    /// How long a moving drive state survives without a new message.
    pub fn silence_timeout(&self) -> Duration {
        self.silence_timeout
    }

    /// The latest drive state; `changed()` wakes on every new one.
    pub fn drive(&self) -> watch::Receiver<DriveState> {
        self.drive.subscribe()
    }

    /// Every control message from every peer.
    pub fn events(&self) -> broadcast::Receiver<ControlEvent> {
        self.events.subscribe()
    }

    /// The peer whose drive state is in force, if any.
    pub fn driver(&self) -> Option<PeerId> {
        match self.owner.lock().expect("owner lock").source {
            DriveSource::Peer(id) => Some(id),
            _ => None,
        }
    }

    /// Hands one message from `peer` to the robot.
    pub fn publish(&self, peer: PeerId, control: Control) {
        let now = Instant::now();
        if let Control::Drive(state) = &control {
            let mut owner = self.owner.lock().expect("owner lock");
            let same_peer = owner.source == DriveSource::Peer(peer);
            if same_peer && state.seq != 0 && state.seq <= owner.last_seq {
                tracing::debug!(peer, seq = state.seq, "dropping a stale drive state");
                return;
            }
            *owner = DriveOwner {
                source: DriveSource::Peer(peer),
                last_seq: state.seq,
                at: now,
            };
            self.drive.send_replace(*state);
        }
        // No subscriber is fine: nobody listens for events yet.
        let _ = self.events.send(ControlEvent {
            peer,
            control,
            at: now,
        });
    }

    /// Stops the drive if `peer` was driving. Called when a peer leaves.
    pub fn peer_left(&self, peer: PeerId) {
        let mut owner = self.owner.lock().expect("owner lock");
        if owner.source == DriveSource::Peer(peer) {
            *owner = DriveOwner {
                source: DriveSource::PeerLeft,
                last_seq: 0,
                at: Instant::now(),
            };
            self.stop("the driving peer left");
        }
    }

    /// Stops the drive because of `reason` (logged).
    pub fn stop(&self, reason: &str) {
        if !self.drive.borrow().is_stopped() {
            tracing::info!("stopping motors: {reason}");
        }
        self.drive.send_replace(DriveState::STOP);
    }

    /// Checks for silence once; returns true if it stopped the drive.
    pub fn check_silence(&self, now: Instant) -> bool {
        let mut owner = self.owner.lock().expect("owner lock");
        let moving = !self.drive.borrow().is_stopped();
        if moving && now.duration_since(owner.at) >= self.silence_timeout {
            *owner = DriveOwner {
                source: DriveSource::Silence,
                last_seq: 0,
                at: now,
            };
            self.stop("control went silent");
            return true;
        }
        false
    }

    /// Runs the silence watchdog until the hub is dropped everywhere else.
    pub async fn watch_silence(self) {
        let mut tick = tokio::time::interval(self.silence_timeout / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
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
        hub.publish(1, drive(0.5, 1));
        hub.publish(1, drive(0.7, 3));
        hub.publish(1, drive(0.1, 2)); // stale
        assert_eq!(rx.borrow().forward, 0.7);
        assert_eq!(hub.driver(), Some(1));
    }

    #[test]
    fn stops_when_the_driver_leaves_or_goes_silent() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let rx = hub.drive();
        hub.publish(1, drive(1.0, 1));
        hub.peer_left(2); // not the driver
        assert_eq!(rx.borrow().forward, 1.0);
        hub.peer_left(1);
        assert!(rx.borrow().is_stopped());
        assert_eq!(hub.driver(), None);

        hub.publish(3, drive(1.0, 1));
        let sent = Instant::now();
        assert!(!hub.check_silence(sent + Duration::from_millis(100)));
        assert!(hub.check_silence(sent + Duration::from_millis(400)));
        assert!(rx.borrow().is_stopped());
    }

    #[tokio::test]
    async fn every_message_is_broadcast() {
        let hub = ControlHub::new(Duration::from_millis(300));
        let mut events = hub.events();
        hub.publish(4, Control::Text("hi".into()));
        let event = events.recv().await.unwrap();
        assert_eq!((event.peer, event.control), (4, Control::Text("hi".into())));
    }
}

//! The peers the robot serves: added on `/connect`, removed when they are gone, closed
//! at shutdown. Removal frees a peer's tasks and releases the drive if it held it.

use crate::control::{ControlHub, PeerId};
use crate::rtc::peer::{Peer, PeerCounters, PeerError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Peers served at once; more get a clear refusal.
pub const MAX_PEERS: usize = 32;

/// One peer as [`crate::Robot::peers`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id, as in [`crate::control::ControlEvent::peer`] and [`crate::Robot::send`].
    pub id: PeerId,
    /// Its connection is up (false while it is still connecting).
    pub connected: bool,
    /// It asked for video.
    pub video: bool,
    /// It holds the drive.
    pub drives: bool,
    /// Its message counters.
    pub counters: PeerCounters,
}

/// The registry of peers.
pub(crate) struct Registry {
    hub: ControlHub,
    peers: Mutex<HashMap<PeerId, Arc<Peer>>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

impl Registry {
    pub(crate) fn new(hub: ControlHub) -> Self {
        Self {
            hub,
            peers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub(crate) fn next_id(&self) -> PeerId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Adds a peer unless the robot is shutting down or full; gives it back if not.
    pub(crate) fn insert(&self, peer: Peer) -> Result<(), (Peer, PeerError)> {
        let mut peers = self.peers.lock().expect("peers lock");
        if self.shutting_down() {
            return Err((peer, PeerError::ShuttingDown));
        }
        if peers.len() >= MAX_PEERS {
            return Err((peer, PeerError::TooMany(MAX_PEERS)));
        }
        peers.insert(peer.id(), Arc::new(peer));
        Ok(())
    }

    pub(crate) fn count(&self) -> usize {
        self.peers.lock().expect("peers lock").len()
    }

    pub(crate) fn get(&self, id: PeerId) -> Option<Arc<Peer>> {
        self.peers.lock().expect("peers lock").get(&id).cloned()
    }

    /// The peers now, without holding the lock across sends.
    pub(crate) fn list(&self) -> Vec<Arc<Peer>> {
        self.peers
            .lock()
            .expect("peers lock")
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn info(&self) -> Vec<PeerInfo> {
        let driver = self.hub.driver();
        let mut list: Vec<PeerInfo> = self
            .list()
            .iter()
            .map(|p| PeerInfo {
                id: p.id(),
                connected: p.connected(),
                video: p.wants_video(),
                drives: driver == Some(p.id()),
                counters: p.counters(),
            })
            .collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// Removes a peer and frees its resources; safe to call more than once.
    pub(crate) fn remove(&self, id: PeerId, reason: &str) {
        let peer = self.peers.lock().expect("peers lock").remove(&id);
        if let Some(peer) = peer {
            tracing::info!(peer = id, "removing peer: {reason}");
            self.hub.peer_left(id);
            peer.close_soon();
        }
    }

    /// Refuses new peers and closes every one.
    pub(crate) async fn close_all(&self) {
        let peers: Vec<_> = {
            let mut peers = self.peers.lock().expect("peers lock");
            self.shutting_down.store(true, Ordering::SeqCst);
            peers.drain().collect()
        };
        for (id, peer) in peers {
            self.hub.peer_left(id);
            peer.close().await;
        }
    }
}

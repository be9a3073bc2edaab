//! The peers the robot serves: added on `/connect`, removed when they are gone, closed
//! at shutdown. Removal frees a peer's tasks and releases the drive if it held it.
//!
//! **Connecting peers are bounded apart from connected ones.** An offer holds a slot
//! from its `POST` until it connects (or times out), so a flood of offers that never
//! connect could lock everyone out. At most [`MAX_CONNECTING`] peers may be connecting
//! at once, at most [`MAX_CONNECTING_PER_CLIENT`] of them from one address, and they
//! never count against the [`MAX_PEERS`] connected ones: a connected driver is never
//! affected, and a stranger flooding offers locks out only itself.

use crate::control::{ControlHub, PeerId};
use crate::rtc::peer::{LinkStats, Peer, PeerCounters, PeerError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Connected peers served at once; more get a clear refusal.
pub const MAX_PEERS: usize = 32;
/// Peers connecting (negotiating, or answered but not yet connected) at once.
pub const MAX_CONNECTING: usize = 16;
/// Peers connecting at once from one client address.
pub const MAX_CONNECTING_PER_CLIENT: usize = 4;

/// One peer as [`crate::Robot::peers`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its id, as in [`crate::control::ControlEvent::peer`] and [`crate::Robot::send`].
    pub id: PeerId,
    /// Its connection is up now (false while it is still connecting, or while an
    /// interrupted connection has its few seconds to come back).
    pub connected: bool,
    /// It asked for video.
    pub video: bool,
    /// It holds the drive.
    pub drives: bool,
    /// What the token it connected with lets it do.
    pub role: crate::auth::Role,
    /// Its message counters.
    pub counters: PeerCounters,
    /// Its video link (bandwidth estimate, loss, NACKs, round trip); `None` when it
    /// asked for no video.
    pub link: Option<LinkStats>,
    /// Its audio both ways, its camera, its renegotiations.
    pub media: crate::rtc::peer::MediaState,
}

pub use crate::auth::limit::client_key;

/// A registered peer and the address its offer came from (`None`: not known, e.g.
/// [`crate::Robot::connect`] called by a robot program).
struct Entry {
    peer: Arc<Peer>,
    client: Option<IpAddr>,
}

#[derive(Default)]
struct Peers {
    entries: HashMap<PeerId, Entry>,
    /// Offers being negotiated now (not yet in `entries`), by client address.
    negotiating: HashMap<Option<IpAddr>, usize>,
}

impl Peers {
    /// Connecting peers: negotiating, or registered and not connected yet.
    fn connecting(&self, client: Option<IpAddr>) -> (usize, usize) {
        let waiting = self.entries.values().filter(|e| !e.peer.connected());
        let (mut all, mut mine) = (0, 0);
        for entry in waiting {
            all += 1;
            mine += usize::from(client.is_some() && entry.client == client);
        }
        all += self.negotiating.values().sum::<usize>();
        if client.is_some() {
            mine += self.negotiating.get(&client).copied().unwrap_or(0);
        }
        (all, mine)
    }

    /// Gives back one negotiating place of `client`.
    fn release(&mut self, client: Option<IpAddr>) {
        if let Some(n) = self.negotiating.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.negotiating.remove(&client);
            }
        }
    }

    fn connected(&self) -> usize {
        self.entries.values().filter(|e| e.peer.connected()).count()
    }
}

/// The registry of peers.
pub(crate) struct Registry {
    hub: ControlHub,
    peers: Mutex<Peers>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

/// An offer's place among the connecting peers while it is negotiated; given back
/// when dropped.
pub(crate) struct Reservation<'a> {
    registry: &'a Registry,
    client: Option<IpAddr>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut peers = self.registry.peers.lock().expect("peers lock");
        peers.release(self.client);
    }
}

impl Registry {
    pub(crate) fn new(hub: ControlHub) -> Self {
        Self {
            hub,
            peers: Mutex::new(Peers::default()),
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

    /// Checks the limits for an offer from `client` and holds its place among the
    /// connecting peers while it is negotiated.
    pub(crate) fn reserve(&self, client: Option<IpAddr>) -> Result<Reservation<'_>, PeerError> {
        let client = client.map(client_key);
        let mut peers = self.peers.lock().expect("peers lock");
        Self::admit(&peers, self.shutting_down(), client)?;
        *peers.negotiating.entry(client).or_default() += 1;
        Ok(Reservation {
            registry: self,
            client,
        })
    }

    /// Whether one more connecting peer from `client` is allowed.
    fn admit(peers: &Peers, shutting_down: bool, client: Option<IpAddr>) -> Result<(), PeerError> {
        if shutting_down {
            return Err(PeerError::ShuttingDown);
        }
        let (all, mine) = peers.connecting(client);
        // Connecting peers may become connected ones: together they stay in the limit.
        if peers.connected() + all >= MAX_PEERS {
            return Err(PeerError::TooMany(MAX_PEERS));
        }
        if mine >= MAX_CONNECTING_PER_CLIENT {
            return Err(PeerError::TooManyConnecting {
                limit: MAX_CONNECTING_PER_CLIENT,
                per_client: true,
            });
        }
        if all >= MAX_CONNECTING {
            return Err(PeerError::TooManyConnecting {
                limit: MAX_CONNECTING,
                per_client: false,
            });
        }
        Ok(())
    }

    /// Adds a negotiated peer in place of its reservation, unless the robot is
    /// shutting down or full of connected peers; gives it back if not.
    pub(crate) fn insert(
        &self,
        peer: Peer,
        reservation: Reservation<'_>,
    ) -> Result<(), (Peer, PeerError)> {
        let client = reservation.client;
        // The place passes from the reservation to the entry under one lock.
        std::mem::forget(reservation);
        let mut peers = self.peers.lock().expect("peers lock");
        peers.release(client);
        if self.shutting_down() {
            return Err((peer, PeerError::ShuttingDown));
        }
        if peers.connected() >= MAX_PEERS {
            return Err((peer, PeerError::TooMany(MAX_PEERS)));
        }
        let entry = Entry {
            peer: Arc::new(peer),
            client,
        };
        peers.entries.insert(entry.peer.id(), entry);
        Ok(())
    }

    pub(crate) fn count(&self) -> usize {
        self.peers.lock().expect("peers lock").entries.len()
    }

    pub(crate) fn get(&self, id: PeerId) -> Option<Arc<Peer>> {
        let peers = self.peers.lock().expect("peers lock");
        peers.entries.get(&id).map(|e| e.peer.clone())
    }

    /// The peers now, without holding the lock across sends.
    pub(crate) fn list(&self) -> Vec<Arc<Peer>> {
        let peers = self.peers.lock().expect("peers lock");
        peers.entries.values().map(|e| e.peer.clone()).collect()
    }

    pub(crate) fn info(&self) -> Vec<PeerInfo> {
        let driver = self.hub.driver();
        let mut list: Vec<PeerInfo> = self
            .list()
            .iter()
            .map(|p| PeerInfo {
                id: p.id(),
                connected: p.up(),
                video: p.wants_video(),
                drives: driver == Some(p.id()),
                role: p.role(),
                counters: p.counters(),
                link: p.link_stats(),
                media: p.media(),
            })
            .collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// Removes a peer and frees its resources; safe to call more than once.
    pub(crate) fn remove(&self, id: PeerId, reason: &str) {
        let entry = self.peers.lock().expect("peers lock").entries.remove(&id);
        if let Some(Entry { peer, .. }) = entry {
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
            peers.entries.drain().collect()
        };
        for (id, Entry { peer, .. }) in peers {
            self.hub.peer_left(id);
            peer.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn connecting_offers_are_bounded_per_address_and_in_all() {
        let registry = Registry::new(ControlHub::new(Duration::from_secs(1)));
        let mine: Vec<_> = (0..MAX_CONNECTING_PER_CLIENT)
            .map(|_| {
                registry
                    .reserve(ip(1))
                    .expect("within the per-address limit")
            })
            .collect();
        match registry.reserve(ip(1)) {
            Err(PeerError::TooManyConnecting {
                per_client: true,
                limit,
            }) => assert_eq!(limit, MAX_CONNECTING_PER_CLIENT),
            other => panic!("one address past its limit: {:?}", other.err()),
        }
        // Others are not locked out by one address's flood...
        let others: Vec<_> = (0..MAX_CONNECTING - MAX_CONNECTING_PER_CLIENT)
            .map(|i| registry.reserve(ip(10 + i as u8)).expect("another address"))
            .collect();
        // ...until every connecting place is taken.
        assert!(matches!(
            registry.reserve(ip(200)),
            Err(PeerError::TooManyConnecting {
                per_client: false,
                ..
            })
        ));
        assert!(
            registry.reserve(None).is_err(),
            "unknown callers count in all"
        );
        drop(mine);
        registry
            .reserve(ip(1))
            .expect("a finished negotiation gives its place back");
        drop(others);
        assert!(registry.peers.lock().unwrap().negotiating.is_empty());
    }

    #[test]
    fn one_ipv6_network_counts_as_one_client() {
        let registry = Registry::new(ControlHub::new(Duration::from_secs(1)));
        let host = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]));
        let mine: Vec<_> = (0..MAX_CONNECTING_PER_CLIENT as u16)
            .map(|i| registry.reserve(host(i + 1)).expect("within the limit"))
            .collect();
        assert!(
            registry.reserve(host(999)).is_err(),
            "another address of the same /64 is the same client"
        );
        let neighbour = Some(IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]));
        registry
            .reserve(neighbour)
            .expect("another /64 is another client");
        let mapped = Some(IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]));
        let _plain = registry.reserve(ip(1)).expect("10.0.0.1");
        let _also = registry
            .reserve(mapped)
            .expect("::ffff:10.0.0.1 is 10.0.0.1 too");
        drop(mine);
    }

    #[test]
    fn no_offer_is_taken_while_shutting_down() {
        let registry = Registry::new(ControlHub::new(Duration::from_secs(1)));
        registry.shutting_down.store(true, Ordering::SeqCst);
        assert!(matches!(
            registry.reserve(ip(1)),
            Err(PeerError::ShuttingDown)
        ));
    }
}

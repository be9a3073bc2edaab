//! Rooms of browsers: the pages in a room signal each other over one WebSocket each
//! (`GET /<room>/peers`), as the FastAPI "meeting room" tutorial does, so several
//! operators of one robot see each other (their status, or a WebRTC session between
//! them set up with perfect negotiation).
//!
//! The relay only passes messages on; what they say is the pages' business. Each
//! text frame a page sends is a JSON object; the relay adds `"from"` (the sender's
//! id) and hands it to the page named by `"to"`, or to every other page in the room.
//! The relay's own messages:
//!
//! - `{"type":"welcome","id":"p3","peers":["p1","p2"]}`: to a page that joined, with
//!   the ids already there (in the tutorial's terms, those are the polite ones: the
//!   newcomer makes the offers);
//! - `{"type":"join","id":"p3"}` and `{"type":"leave","id":"p3"}`: to the others;
//! - `{"type":"error","error":"..."}`: to a page whose frame was refused (not a JSON
//!   object, over the size limit, over its rate, an unknown `to`).
//!
//! Bounds: [`MAX_PEERS`] pages a room, [`QUEUE`] frames waiting for a page (a page
//! that falls that far behind is dropped, not queued for), a page's frames a second
//! as [`OfferRate`](crate::room::OfferRate) counts them.

use crate::room::{check_name, OfferRate, RoomError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::mpsc;

/// Pages at most in one room.
pub const MAX_PEERS: usize = 32;
/// Frames at most waiting for one page.
pub const QUEUE: usize = 64;
/// A page's frames a second, on average (ICE candidates trickle in bursts).
pub const FRAMES_PER_SECOND: f64 = 50.0;
/// A page's frames at once.
pub const FRAME_BURST: f64 = 100.0;

/// Why a page could not join, or a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerError {
    /// A bad room name.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The room holds [`MAX_PEERS`] pages.
    #[error("room {0:?} has {MAX_PEERS} pages already")]
    Full(String),
    /// Not a JSON object.
    #[error("a frame must be a JSON object")]
    NotAnObject,
    /// Over the page's rate.
    #[error("too many frames: at most {FRAMES_PER_SECOND} a second")]
    TooFast,
    /// `"to"` names no page in the room.
    #[error("no page {0:?} in this room")]
    NoSuchPeer(String),
}

/// A page's place in a room, held by its socket task.
#[derive(Debug)]
pub struct Member {
    /// The room.
    pub room: String,
    /// This page's id.
    pub id: String,
    /// Frames for this page; ends when the relay drops it.
    pub inbox: mpsc::Receiver<String>,
    rate: OfferRate,
}

#[derive(Debug, Default)]
struct Room {
    /// In the order they joined.
    pages: Vec<(String, mpsc::Sender<String>)>,
}

/// Every room's pages.
#[derive(Debug, Default)]
pub struct Peers {
    rooms: Mutex<HashMap<String, Room>>,
    next_id: AtomicU64,
}

impl Peers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a page could join `room` now (before its socket is upgraded).
    pub fn check(&self, room: &str) -> Result<(), PeerError> {
        check_name(room)?;
        if self.count(room) >= MAX_PEERS {
            return Err(PeerError::Full(room.to_owned()));
        }
        Ok(())
    }

    /// A page joins `room`: it gets its welcome, the others a `join`.
    pub fn join(&self, room: &str) -> Result<Member, PeerError> {
        check_name(room)?;
        let mut rooms = self.lock();
        let entry = rooms.entry(room.to_owned()).or_default();
        if entry.pages.len() >= MAX_PEERS {
            return Err(PeerError::Full(room.to_owned()));
        }
        let id = format!("p{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, inbox) = mpsc::channel(QUEUE);
        let others: Vec<&str> = entry.pages.iter().map(|(id, _)| id.as_str()).collect();
        let welcome = serde_json::json!({ "type": "welcome", "id": id, "peers": others });
        // A fresh channel has room for its first frame.
        let _ = tx.try_send(welcome.to_string());
        let join = serde_json::json!({ "type": "join", "id": id }).to_string();
        entry.pages.retain(|(_, page)| deliver(page, join.clone()));
        entry.pages.push((id.clone(), tx));
        Ok(Member {
            room: room.to_owned(),
            id,
            inbox,
            rate: OfferRate::new(FRAMES_PER_SECOND, FRAME_BURST),
        })
    }

    /// The page `member` left (or was dropped): the others get a `leave`.
    pub fn leave(&self, member: &Member) {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(&member.room) else {
            return;
        };
        entry.pages.retain(|(id, _)| *id != member.id);
        let leave = serde_json::json!({ "type": "leave", "id": member.id }).to_string();
        entry.pages.retain(|(_, page)| deliver(page, leave.clone()));
        if entry.pages.is_empty() {
            rooms.remove(&member.room);
        }
    }

    /// Passes `frame` from `member` on: to its `"to"`, or to every other page.
    pub fn relay(&self, member: &mut Member, frame: &str) -> Result<(), PeerError> {
        let (to, frame) = stamp(&member.id, frame)?;
        if !member.rate.take(std::time::Instant::now()) {
            return Err(PeerError::TooFast);
        }
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(&member.room) else {
            return Ok(());
        };
        match to {
            Some(to) => {
                let page = entry.pages.iter().find(|(id, _)| *id == to);
                let Some((_, page)) = page else {
                    return Err(PeerError::NoSuchPeer(to));
                };
                if !deliver(page, frame) {
                    entry.pages.retain(|(id, _)| *id != to);
                }
            }
            None => entry
                .pages
                .retain(|(id, page)| *id == member.id || deliver(page, frame.clone())),
        }
        Ok(())
    }

    /// Pages in `room` now.
    pub fn count(&self, room: &str) -> usize {
        self.lock().get(room).map_or(0, |r| r.pages.len())
    }
}

/// Queues `frame` for a page; false when the page is gone or too far behind (it is
/// then dropped: its inbox ends, so its socket task closes it).
fn deliver(page: &mpsc::Sender<String>, frame: String) -> bool {
    page.try_send(frame).is_ok()
}

/// Checks a page's frame and adds `"from"`: its `"to"` and the frame to pass on.
pub fn stamp(from: &str, frame: &str) -> Result<(Option<String>, String), PeerError> {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(frame) else {
        return Err(PeerError::NotAnObject);
    };
    let to = map.get("to").and_then(|t| t.as_str()).map(str::to_owned);
    map.insert("from".into(), from.into());
    Ok((to, serde_json::Value::Object(map).to_string()))
}

/// The shared registry, as handlers hold it.
pub type SharedPeers = Arc<Peers>;

#[cfg(test)]
mod tests {
    use super::*;

    fn next(member: &mut Member) -> serde_json::Value {
        let frame = member.inbox.try_recv().expect("a frame waiting");
        serde_json::from_str(&frame).unwrap()
    }

    #[test]
    fn a_newcomer_is_welcomed_with_the_pages_already_there_and_they_hear_of_it() {
        let peers = Peers::default();
        let mut a = peers.join("r").unwrap();
        assert_eq!(next(&mut a)["peers"], serde_json::json!([]));
        let mut b = peers.join("r").unwrap();
        let welcome = next(&mut b);
        assert_eq!(welcome["type"], "welcome");
        assert_eq!(welcome["id"], b.id.as_str());
        assert_eq!(welcome["peers"], serde_json::json!([a.id]));
        assert_eq!(
            next(&mut a),
            serde_json::json!({"type": "join", "id": b.id})
        );
        peers.leave(&b);
        assert_eq!(
            next(&mut a),
            serde_json::json!({"type": "leave", "id": b.id})
        );
        assert_eq!(peers.count("r"), 1);
        peers.leave(&a);
        assert_eq!(peers.count("r"), 0);
    }

    #[test]
    fn frames_go_to_every_other_page_or_to_the_one_named() {
        let peers = Peers::default();
        let mut a = peers.join("r").unwrap();
        let mut b = peers.join("r").unwrap();
        let mut c = peers.join("r").unwrap();
        let mut other_room = peers.join("s").unwrap();
        for m in [&mut a, &mut b, &mut c, &mut other_room] {
            while m.inbox.try_recv().is_ok() {}
        }
        peers
            .relay(&mut a, r#"{"type":"status","live":true}"#)
            .unwrap();
        for m in [&mut b, &mut c] {
            let got = next(m);
            assert_eq!(got["from"], a.id.as_str());
            assert_eq!(got["live"], true);
        }
        assert!(a.inbox.try_recv().is_err(), "not back to its sender");
        assert!(other_room.inbox.try_recv().is_err(), "not to another room");
        let to_c = format!(r#"{{"type":"offer","to":"{}","sdp":"x"}}"#, c.id);
        peers.relay(&mut b, &to_c).unwrap();
        assert_eq!(next(&mut c)["from"], b.id.as_str());
        assert!(a.inbox.try_recv().is_err(), "only to the one named");
    }

    #[test]
    fn bad_frames_unknown_pages_floods_and_full_rooms_are_refused() {
        let peers = Peers::default();
        let mut a = peers.join("r").unwrap();
        assert_eq!(peers.relay(&mut a, "[1]"), Err(PeerError::NotAnObject));
        assert_eq!(peers.relay(&mut a, "not json"), Err(PeerError::NotAnObject));
        assert_eq!(
            peers.relay(&mut a, r#"{"to":"p999"}"#),
            Err(PeerError::NoSuchPeer("p999".into()))
        );
        let refused = (0..200)
            .filter(|_| peers.relay(&mut a, "{}") == Err(PeerError::TooFast))
            .count();
        assert!(refused >= 90, "only {refused} of 200 refused");
        assert!(matches!(peers.join("a b"), Err(PeerError::Room(_))));
        let _members: Vec<Member> = (1..MAX_PEERS).map(|_| peers.join("r").unwrap()).collect();
        assert_eq!(peers.check("r"), Err(PeerError::Full("r".into())));
        assert_eq!(peers.check("s"), Ok(()));
        assert_eq!(peers.join("r").unwrap_err(), PeerError::Full("r".into()));
    }

    #[test]
    fn a_page_that_reads_nothing_is_dropped_not_queued_for() {
        let peers = Peers::default();
        let mut talker = peers.join("r").unwrap();
        let silent = peers.join("r").unwrap();
        let mut sent = 0;
        while peers.count("r") == 2 && sent < 10 * QUEUE {
            // Stay under the rate: a fresh member each burst.
            talker.rate = OfferRate::new(FRAMES_PER_SECOND, FRAME_BURST);
            peers.relay(&mut talker, "{}").unwrap();
            sent += 1;
        }
        assert_eq!(peers.count("r"), 1, "the silent page was dropped");
        assert!(sent <= QUEUE + 1, "after {sent} frames");
        drop(silent);
    }
}

//! The rooms in memory: which robot is in which room, and the offers on their way to
//! it. A robot's socket task holds a [`Registration`]; a browser's `POST` calls
//! [`Rooms::forward`], which queues the offer for that task and waits for its answer.

use crate::config::RelayConfig;
use crate::room::{check_name, Claim, OfferRate, RoomError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// An offer on its way to a robot, and where its answer goes.
#[derive(Debug)]
pub struct Forward {
    /// The offer as the browser sent it (JSON text).
    pub offer: String,
    /// The robot's answer (JSON text).
    pub answer: oneshot::Sender<String>,
}

/// A robot's place in a room, held by its socket task.
#[derive(Debug)]
pub struct Registration {
    /// The room.
    pub room: String,
    /// This robot's id (a robot that replaces it has another).
    pub id: u64,
    /// The offers for it; ends when another robot takes the room.
    pub offers: mpsc::Receiver<Forward>,
}

/// Why an offer got no answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ForwardError {
    /// Not a room name the relay takes.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// No robot is connected to the room.
    #[error("no robot is connected to room {0:?}")]
    NoRobot(String),
    /// The room is over its offers per second.
    #[error("room {0:?} takes no more offers just now: try again in a second")]
    TooMany(String),
    /// Too many offers wait for the room's robot.
    #[error("room {0:?}'s robot has too many offers waiting")]
    Busy(String),
    /// The robot did not answer in time.
    #[error("room {0:?}'s robot did not answer within {1} s")]
    Timeout(String, f64),
    /// The robot left (or was replaced) before it answered.
    #[error("room {0:?}'s robot left before it answered")]
    Left(String),
    /// The rooms shared through Redis cannot be reached (the reason says what).
    #[error("{0}")]
    Shared(String),
}

/// Why a robot could not take a room.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegisterError {
    /// A bad name or a wrong key.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The relay holds as many rooms as it may.
    #[error("the relay is full ({0} rooms)")]
    Full(usize),
}

#[derive(Debug)]
struct Robot {
    id: u64,
    offers: mpsc::Sender<Forward>,
}

#[derive(Debug)]
struct Room {
    claim: Claim,
    robot: Option<Robot>,
    rate: OfferRate,
}

/// Every room of this relay.
#[derive(Debug)]
pub struct Rooms {
    config: Arc<RelayConfig>,
    rooms: Mutex<HashMap<String, Room>>,
    next_id: AtomicU64,
}

/// Figures for `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoomCounts {
    /// Rooms known (with a robot, or claimed).
    pub rooms: usize,
    /// Robots connected.
    pub robots: usize,
}

impl Rooms {
    /// No robots yet; the configured keys claim their rooms.
    pub fn new(config: Arc<RelayConfig>) -> Self {
        let rooms = config
            .room_keys
            .iter()
            .map(|(name, key)| {
                let room = Room {
                    claim: Claim::Key(key.clone()),
                    robot: None,
                    rate: rate(&config),
                };
                (name.clone(), room)
            })
            .collect();
        Self {
            config,
            rooms: Mutex::new(rooms),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A robot with `key` (or none) takes `room`; a robot already there is replaced
    /// (its offers channel ends, so its socket task closes).
    pub fn register(&self, room: &str, key: Option<&str>) -> Result<Registration, RegisterError> {
        check_name(room)?;
        let mut rooms = self.lock();
        let full = rooms.len() >= self.config.max_rooms && !rooms.contains_key(room);
        if full {
            return Err(RegisterError::Full(self.config.max_rooms));
        }
        let entry = rooms.entry(room.to_owned()).or_insert_with(|| Room {
            claim: Claim::Open,
            robot: None,
            rate: rate(&self.config),
        });
        if let Err(err) = entry.claim.admit(room, key) {
            if entry.robot.is_none() && !entry.claim.claimed() {
                rooms.remove(room);
            }
            return Err(err.into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.offer_queue);
        entry.robot = Some(Robot { id, offers: tx });
        Ok(Registration {
            room: room.to_owned(),
            id,
            offers: rx,
        })
    }

    /// The robot `id` left `room` (a robot that replaced it stays); an open room with
    /// no robot is forgotten.
    pub fn unregister(&self, room: &str, id: u64) {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return;
        };
        if entry.robot.as_ref().is_some_and(|r| r.id == id) {
            entry.robot = None;
            if !entry.claim.claimed() {
                rooms.remove(room);
            }
        }
    }

    /// The rooms with a robot here, and the key that claims each (if one does).
    pub fn robot_rooms(&self) -> Vec<(String, Option<String>)> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.robot.is_some())
            .map(|(name, r)| {
                let key = match &r.claim {
                    Claim::Key(key) => Some(key.clone()),
                    Claim::Open => None,
                };
                (name.clone(), key)
            })
            .collect()
    }

    /// Sends `room`'s robot away (a robot on another relay took the room): its offers
    /// channel ends, so its socket task closes. Whether there was one.
    pub fn evict(&self, room: &str) -> bool {
        let mut rooms = self.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return false;
        };
        let had = entry.robot.take().is_some();
        if !entry.claim.claimed() {
            rooms.remove(room);
        }
        had
    }

    /// The settings.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Whether a robot is in `room`.
    pub fn present(&self, room: &str) -> bool {
        self.lock().get(room).is_some_and(|r| r.robot.is_some())
    }

    /// Rooms and robots now.
    pub fn counts(&self) -> RoomCounts {
        let rooms = self.lock();
        RoomCounts {
            rooms: rooms.len(),
            robots: rooms.values().filter(|r| r.robot.is_some()).count(),
        }
    }

    /// Hands `offer` to the robot in `room` and waits for its answer.
    pub async fn forward(&self, room: &str, offer: String) -> Result<String, ForwardError> {
        check_name(room)?;
        let (answer, answered) = oneshot::channel();
        {
            let mut rooms = self.lock();
            let Some(entry) = rooms.get_mut(room).filter(|r| r.robot.is_some()) else {
                return Err(ForwardError::NoRobot(room.to_owned()));
            };
            if !entry.rate.take(Instant::now()) {
                return Err(ForwardError::TooMany(room.to_owned()));
            }
            let robot = entry.robot.as_ref().expect("checked above");
            robot
                .offers
                .try_send(Forward { offer, answer })
                .map_err(|err| match err {
                    mpsc::error::TrySendError::Full(_) => ForwardError::Busy(room.to_owned()),
                    mpsc::error::TrySendError::Closed(_) => ForwardError::Left(room.to_owned()),
                })?;
        }
        let timeout = self.config.offer_timeout();
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ForwardError::Left(room.to_owned())),
            Err(_) => Err(ForwardError::Timeout(
                room.to_owned(),
                self.config.offer_timeout_s,
            )),
        }
    }
}

fn rate(config: &RelayConfig) -> OfferRate {
    OfferRate::new(config.offers_per_second, f64::from(config.offer_burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms::new(Arc::new(RelayConfig {
            offer_timeout_s: 0.2,
            room_keys: [("kept".to_owned(), "k".to_owned())].into(),
            ..RelayConfig::default()
        }))
    }

    #[tokio::test]
    async fn an_offer_reaches_the_robot_and_its_answer_comes_back() {
        let rooms = Arc::new(rooms());
        let mut robot = rooms.register("r", None).unwrap();
        assert!(rooms.present("r"));
        let answering = tokio::spawn(async move {
            let forward = robot.offers.recv().await.unwrap();
            forward
                .answer
                .send(format!("answer to {}", forward.offer))
                .unwrap();
            robot
        });
        let answer = rooms.forward("r", "offer".into()).await.unwrap();
        assert_eq!(answer, "answer to offer");
        let robot = answering.await.unwrap();
        rooms.unregister("r", robot.id);
        assert!(!rooms.present("r"));
        assert_eq!(
            rooms.counts(),
            RoomCounts {
                rooms: 1,
                robots: 0
            },
            "the kept room stays"
        );
    }

    #[tokio::test]
    async fn no_robot_a_silent_robot_and_a_replaced_robot_are_told_apart() {
        let rooms = rooms();
        assert_eq!(
            rooms.forward("nobody", "o".into()).await,
            Err(ForwardError::NoRobot("nobody".into()))
        );
        let _silent = rooms.register("quiet", None).unwrap();
        assert!(matches!(
            rooms.forward("quiet", "o".into()).await,
            Err(ForwardError::Timeout(_, _))
        ));
        let first = rooms.register("r", None).unwrap();
        let second = rooms.register("r", None).unwrap();
        // The first robot's registration no longer removes the room.
        rooms.unregister("r", first.id);
        assert!(rooms.present("r"));
        rooms.unregister("r", second.id);
        assert!(!rooms.present("r"));
    }

    #[test]
    fn a_claimed_room_takes_only_its_key() {
        let rooms = rooms();
        let err = rooms.register("kept", None).unwrap_err();
        assert!(err.to_string().contains("claimed"), "{err}");
        assert!(rooms.register("kept", Some("k")).is_ok());
        // A robot claims an open room with its own key.
        let mine = rooms.register("mine", Some("m")).unwrap();
        rooms.unregister("mine", mine.id);
        assert!(rooms.register("mine", Some("other")).is_err());
        assert!(rooms.register("mine", Some("m")).is_ok());
    }

    #[tokio::test]
    async fn a_flood_of_offers_is_turned_away_and_other_rooms_go_on() {
        let rooms = rooms();
        let mut flooded = rooms.register("flooded", None).unwrap();
        let other = rooms.register("other", None).unwrap();
        let mut refused = 0;
        for _ in 0..30 {
            // Nobody answers: each offer waits its 0.2 s out, so run them at once.
            let forward = rooms.forward("flooded", "o".into());
            if let Ok(Err(ForwardError::TooMany(_) | ForwardError::Busy(_))) =
                tokio::time::timeout(std::time::Duration::from_millis(1), forward).await
            {
                refused += 1;
            }
        }
        assert!(refused >= 10, "only {refused} of 30 offers refused");
        while flooded.offers.try_recv().is_ok() {}
        // The other room's rate is its own.
        let mut other = other;
        let answering = tokio::spawn(async move {
            let f = other.offers.recv().await.unwrap();
            f.answer.send("a".into()).unwrap();
        });
        assert_eq!(rooms.forward("other", "o".into()).await.unwrap(), "a");
        answering.await.unwrap();
    }

    #[test]
    fn bad_names_and_a_full_relay_are_refused() {
        let rooms = Rooms::new(Arc::new(RelayConfig {
            max_rooms: 1,
            ..RelayConfig::default()
        }));
        assert!(matches!(
            rooms.register("a b", None),
            Err(RegisterError::Room(RoomError::BadName(_)))
        ));
        let _one = rooms.register("one", None).unwrap();
        assert_eq!(
            rooms.register("two", None).unwrap_err(),
            RegisterError::Full(1)
        );
    }
}

//! Rooms shared between relays through Redis (`--redis URL`, `redis_url`), so one
//! address scales out over several relay processes: a robot connected to relay A is
//! reached by a browser POSTing to relay B. Without Redis none of this runs and the
//! rooms stay in memory ([`Rooms`]) as they always were.
//!
//! The design:
//!
//! - **instances**: each relay process picks a random instance id at start and listens
//!   on its own pub/sub channel, `rtcbot:relay:<id>`;
//! - **presence**: the relay holding a room's robot sets `rtcbot:room:<room>` = its id,
//!   expiring after [`PRESENCE_TTL`], refreshed every [`REFRESH_INTERVAL`] while the
//!   robot stays, and deleted when it leaves (only if it still names this relay, a
//!   Lua script making the test and the delete one step). A relay that dies without
//!   cleaning up leaves a key that lapses on its own; before that, an offer sent to
//!   it reaches no subscriber (`PUBLISH` counts 0), which tells the asking relay at
//!   once that the robot is gone: it answers 404 and deletes the stale key (`/status`
//!   and the room's page ask `PUBSUB NUMSUB` the same question). A relay whose own
//!   link to Redis dropped looks the same to the others for that while: its robots'
//!   rooms are 404 elsewhere until it reconnects and writes them again;
//! - **shutting down** cleanly ([`crate::Relay::serve`]'s end), a relay deletes the
//!   presence of its rooms, so the others answer 404 at once;
//! - **the newest robot wins across relays**, as it does on one: a robot taking a room
//!   held on another relay sets the key to its own relay and tells the old one
//!   (`taken`), whose robot is sent away at once; a refresh that finds another relay
//!   named does the same, should a `taken` be lost;
//! - **forwarding**: relay B, with no robot of its own in room R, reads R's presence
//!   and publishes `{offer, room, reply_to, id}` on the holder's channel; the holder
//!   hands it to its robot exactly as a local POST ([`Rooms::forward`]: same rate
//!   limit, queue, timeout and errors) and publishes the answer or the error's kind on
//!   B's channel; B maps it to the same HTTP status as a local offer gets;
//! - **claims** hold across relays: `rtcbot:claim:<room>` keeps a hash of the room and
//!   the robot's key ([`wire::claim_hash`]; never the key), expiring after
//!   [`CLAIM_TTL`] without a robot, refreshed while one is there. A robot whose key does
//!   not match is refused (403) on every relay. `room_keys` from the config are
//!   written at each connection to Redis, the config being the authority;
//! - **Redis away**: every relay keeps its own rooms working (robots register, local
//!   offers are answered, claims are checked against what this relay knows); an offer
//!   that needs another relay gets 503 with a message naming Redis. The link
//!   reconnects with backoff ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]) and, once
//!   back, writes its rooms' presence and claims again (a Redis restarted empty
//!   relearns them at once, not after a refresh). Nothing here panics: every Redis
//!   error is a log line and a clear HTTP error.
//!
//! The client is redis-rs (the `redis` crate): the maintained Rust client, async on
//! tokio, with a multiplexed connection (many handlers' commands share one socket
//! without a pool) and an async pub/sub connection. The link task below owns the
//! reconnection instead of redis-rs's `ConnectionManager`, so that an offer fails at
//! once while Redis is away (rather than waiting out a reconnection's retries), the
//! outage is one clear state (`/health`'s `redis`), and presence is written again on
//! every reconnection.
//!
//! What goes over Redis is in [`wire`], apart from the I/O and unit-tested.

pub mod wire;

use crate::room::{check_name, RoomError};
use crate::rooms::{ForwardError, RegisterError, Rooms};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{oneshot, watch};
use wire::{Message, Outcome};

/// How long a room's presence lasts without a refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// How often a relay refreshes its rooms' presence.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a claim lasts with no robot in the room to refresh it.
pub const CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The first wait before connecting to Redis again; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest wait before connecting to Redis again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long connecting to Redis, or one command, may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Offers at most waiting on other relays' answers (more get 503).
pub const MAX_PENDING: usize = 1024;
/// How much longer than its offer timeout an offer waits for another relay's reply
/// (the robot's relay times out first, and says so).
const REPLY_MARGIN: Duration = Duration::from_secs(2);

/// Why the shared rooms could not be set up.
#[derive(Debug, Error)]
pub enum SharedError {
    /// Not a Redis URL the client takes.
    #[error("redis_url {url:?}: {reason} (expected redis://[:PASSWORD@]HOST:PORT[/DB])")]
    BadUrl {
        /// The URL with any password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// `Relay::new` ran outside a tokio runtime.
    #[error("the Redis link needs a tokio runtime")]
    NoRuntime,
}

/// How the link to Redis goes (`/health`'s `redis`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedisStatus {
    /// This relay's instance id.
    pub instance: String,
    /// Connected and subscribed now.
    pub connected: bool,
    /// Times it connected.
    pub connects: u64,
    /// Why the last connection failed or ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One relay's part in the rooms shared through Redis.
pub struct Shared {
    instance: String,
    channel: String,
    /// Where Redis is, for log lines (no password).
    addr: String,
    client: redis::Client,
    rooms: Arc<Rooms>,
    connection: Mutex<Option<MultiplexedConnection>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_id: AtomicU64,
    status: watch::Sender<RedisStatus>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("instance", &self.instance)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// `url` with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Checks a Redis URL without connecting.
pub fn check_url(url: &str) -> Result<(), SharedError> {
    open(url).map(drop)
}

fn open(url: &str) -> Result<redis::Client, SharedError> {
    redis::Client::open(url).map_err(|e| SharedError::BadUrl {
        url: redact(url),
        reason: e.to_string(),
    })
}

/// A command with [`COMMAND_TIMEOUT`].
async fn timed<T>(
    what: &str,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no reply within {COMMAND_TIMEOUT:?}")),
    }
}

impl Shared {
    /// The shared rooms over Redis at `url` (nothing connects yet: [`Shared::start`]).
    pub fn new(url: &str, rooms: Arc<Rooms>) -> Result<Arc<Self>, SharedError> {
        let client = open(url)?;
        let instance = wire::new_instance_id();
        let status = watch::channel(RedisStatus {
            instance: instance.clone(),
            ..RedisStatus::default()
        })
        .0;
        Ok(Arc::new(Self {
            channel: wire::channel(&instance),
            instance,
            addr: redact(url),
            client,
            rooms,
            connection: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            status,
        }))
    }

    /// Starts the link to Redis on the current tokio runtime.
    pub fn start(self: &Arc<Self>) -> Result<tokio::task::JoinHandle<()>, SharedError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SharedError::NoRuntime)?;
        Ok(handle.spawn(self.clone().link()))
    }

    /// This relay's instance id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How the link goes now, and every change.
    pub fn status(&self) -> watch::Receiver<RedisStatus> {
        self.status.subscribe()
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_connection(&self, connection: Option<MultiplexedConnection>) {
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = connection;
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Outcome>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unreachable(&self, room: &str) -> ForwardError {
        let why = self
            .status
            .borrow()
            .last_error
            .clone()
            .unwrap_or_else(|| "not connected yet".into());
        ForwardError::Shared(format!(
            "room {room:?} has no robot on this relay, and Redis ({}), which says which \
             relay has it, is unreachable ({why}): try again shortly",
            self.addr
        ))
    }

    // ---- The link ----

    /// Connects, serves, and connects again with backoff, for ever.
    async fn link(self: Arc<Self>) {
        let mut backoff = BACKOFF_MIN;
        let mut failures = 0u32;
        loop {
            match self.connect().await {
                Ok((connection, messages)) => {
                    backoff = BACKOFF_MIN;
                    failures = 0;
                    self.set_connection(Some(connection.clone()));
                    self.reassert(connection.clone()).await;
                    self.status.send_modify(|s| {
                        s.connected = true;
                        s.connects += 1;
                        s.last_error = None;
                    });
                    tracing::info!(
                        instance = self.instance,
                        "redis: connected to {}: rooms are shared with the other relays",
                        self.addr
                    );
                    let why = self.serve(connection, messages).await;
                    self.set_connection(None);
                    // Offers waiting on other relays will get no reply: they end now.
                    self.pending().clear();
                    tracing::warn!(
                        "redis: lost {}: {why}; local rooms go on, offers for robots on \
                         other relays get 503; connecting again in {backoff:?}",
                        self.addr
                    );
                    self.status.send_modify(|s| {
                        s.connected = false;
                        s.last_error = Some(why);
                    });
                }
                Err(why) => {
                    failures += 1;
                    // The first failures, then every 16th: a long outage is not a flood.
                    if failures <= 3 || failures % 16 == 0 {
                        tracing::warn!(
                            "redis: cannot connect to {} ({failures} tries): {why}; local \
                             rooms go on; trying again in {backoff:?}",
                            self.addr
                        );
                    }
                    self.status.send_modify(|s| s.last_error = Some(why));
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<(MultiplexedConnection, redis::aio::PubSubStream), String> {
        let mut connection =
            timed("connecting", self.client.get_multiplexed_async_connection()).await?;
        connection.set_response_timeout(COMMAND_TIMEOUT);
        let mut pubsub = timed("connecting to subscribe", self.client.get_async_pubsub()).await?;
        timed("subscribing", pubsub.subscribe(&self.channel)).await?;
        Ok((connection, pubsub.into_on_message()))
    }

    /// Handles this relay's messages and refreshes its presence until the link fails;
    /// why it did.
    async fn serve(
        self: &Arc<Self>,
        mut connection: MultiplexedConnection,
        mut messages: redis::aio::PubSubStream,
    ) -> String {
        let mut refresh = tokio::time::interval(REFRESH_INTERVAL);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return "the subscription ended (Redis closed the connection)".into();
                    };
                    match Message::decode(message.get_payload_bytes()) {
                        Ok(message) => self.handle(message),
                        Err(err) => tracing::warn!("redis: on {}: {err}", self.channel),
                    }
                }
                _ = refresh.tick() => {
                    if let Err(err) = self.refresh(&mut connection).await {
                        return err;
                    }
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, message: Message) {
        match message {
            Message::Offer {
                id,
                room,
                reply_to,
                offer,
            } => {
                let this = self.clone();
                tokio::spawn(async move {
                    let result = if this.rooms.present(&room) {
                        this.rooms.forward(&room, offer).await
                    } else {
                        Err(ForwardError::NoRobot(room.clone()))
                    };
                    let reply = Message::Reply {
                        id,
                        outcome: Outcome::of(result),
                    };
                    if let Err(err) = this.publish(&reply_to, &reply).await {
                        tracing::warn!(
                            room,
                            "redis: the answer for relay {reply_to} was lost: {err}"
                        );
                    }
                });
            }
            Message::Reply { id, outcome } => {
                if let Some(waiting) = self.pending().remove(&id) {
                    let _ = waiting.send(outcome);
                }
            }
            Message::Taken { room } => {
                let this = self.clone();
                tokio::spawn(async move {
                    let Some(mut connection) = this.connection() else {
                        return;
                    };
                    let holder: Result<Option<String>, String> = timed(
                        "reading a room's presence",
                        redis::cmd("GET")
                            .arg(wire::presence_key(&room))
                            .query_async(&mut connection),
                    )
                    .await;
                    if let Ok(Some(holder)) = holder {
                        if holder != this.instance && this.rooms.evict(&room) {
                            tracing::info!(
                                room,
                                "a robot on relay {holder} took the room: the one here goes"
                            );
                        }
                    }
                });
            }
        }
    }

    /// Publishes `message` on relay `instance`'s channel; how many listened.
    async fn publish(&self, instance: &str, message: &Message) -> Result<u64, String> {
        let mut connection = self.connection().ok_or("Redis is unreachable")?;
        timed(
            "publishing",
            redis::cmd("PUBLISH")
                .arg(wire::channel(instance))
                .arg(message.encode())
                .query_async(&mut connection),
        )
        .await
    }

    /// Refreshes the presence of this relay's rooms; a room another relay's robot took
    /// sends its robot here away. An error means the link is broken.
    async fn refresh(&self, connection: &mut MultiplexedConnection) -> Result<(), String> {
        for (room, key) in self.rooms.robot_rooms() {
            if let Some(key) = key {
                self.admit_with(connection, &room, Some(&key)).await?;
            }
            let ours: i64 = timed(
                "refreshing a room's presence",
                redis::Script::new(wire::REFRESH)
                    .key(wire::presence_key(&room))
                    .arg(&self.instance)
                    .arg(PRESENCE_TTL.as_secs())
                    .invoke_async(connection),
            )
            .await?;
            if ours == 0 && self.rooms.evict(&room) {
                tracing::info!(
                    room,
                    "a robot on another relay took the room: the one here goes"
                );
            }
        }
        Ok(())
    }

    /// After (re)connecting: the configured claims, then this relay's rooms (their
    /// claims, then their presence), written again.
    async fn reassert(&self, mut connection: MultiplexedConnection) {
        let mut written = Ok(());
        for (room, key) in &self.rooms.config().room_keys {
            written = timed(
                "writing a configured claim",
                redis::cmd("SET")
                    .arg(wire::claim_key(room))
                    .arg(wire::claim_hash(room, key))
                    .arg("EX")
                    .arg(CLAIM_TTL.as_secs())
                    .query_async::<()>(&mut connection),
            )
            .await;
            if written.is_err() {
                break;
            }
        }
        for (room, key) in self.rooms.robot_rooms() {
            if written.is_err() {
                break;
            }
            match self
                .admit_with(&mut connection, &room, key.as_deref())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    self.rooms.evict(&room);
                    tracing::warn!(
                        room,
                        "another key claimed the room on another relay while Redis was away: \
                         the robot here goes"
                    );
                    continue;
                }
                Err(err) => written = Err(err),
            }
        }
        // The presence goes in with the refresh's rules (another relay's robot wins).
        if written.is_ok() {
            written = self.refresh(&mut connection).await;
        }
        if let Err(err) = written {
            tracing::warn!("redis: writing this relay's rooms again: {err}");
        }
    }

    async fn admit_with(
        &self,
        connection: &mut MultiplexedConnection,
        room: &str,
        key: Option<&str>,
    ) -> Result<bool, String> {
        let hash = key.map(|k| wire::claim_hash(room, k)).unwrap_or_default();
        let admitted: i64 = timed(
            "checking a room's claim",
            redis::Script::new(wire::ADMIT)
                .key(wire::claim_key(room))
                .arg(hash)
                .arg(CLAIM_TTL.as_secs())
                .invoke_async(connection),
        )
        .await?;
        Ok(admitted == 1)
    }

    // ---- What the routes call ----

    /// Whether a robot with `key` may take `room` as far as the other relays know (a
    /// key claims a room no key claims yet). With Redis away, this relay's own rules
    /// decide alone.
    pub async fn admit(&self, room: &str, key: Option<&str>) -> Result<(), RegisterError> {
        check_name(room)?;
        let Some(mut connection) = self.connection() else {
            tracing::warn!(
                room,
                "redis is unreachable: the robot's key is checked against this relay's rooms only"
            );
            return Ok(());
        };
        match self.admit_with(&mut connection, room, key).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RoomError::WrongKey(room.to_owned()).into()),
            Err(err) => {
                tracing::warn!(room, "redis: {err}; the robot's key is checked here only");
                Ok(())
            }
        }
    }

    /// A robot of this relay took `room`: the room names this relay, and a relay whose
    /// robot it replaces sends that one away.
    pub async fn arrived(&self, room: &str) {
        let Some(mut connection) = self.connection() else {
            return;
        };
        let previous: Result<String, String> = timed(
            "writing a room's presence",
            redis::Script::new(wire::ARRIVE)
                .key(wire::presence_key(room))
                .arg(&self.instance)
                .arg(PRESENCE_TTL.as_secs())
                .invoke_async(&mut connection),
        )
        .await;
        match previous {
            Ok(previous) if !previous.is_empty() && previous != self.instance => {
                let taken = Message::Taken {
                    room: room.to_owned(),
                };
                if let Err(err) = self.publish(&previous, &taken).await {
                    tracing::warn!(room, "redis: telling relay {previous}: {err}");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(room, "redis: {err}"),
        }
    }

    /// A robot of this relay left `room`: unless another robot took it here since, the
    /// room no longer names this relay.
    pub async fn left(&self, room: &str) {
        if self.rooms.present(room) {
            return;
        }
        if let Err(err) = self.leave(room).await {
            tracing::warn!(room, "redis: {err} (the room's presence lapses by itself)");
        }
    }

    async fn leave(&self, room: &str) -> Result<(), String> {
        self.delete_presence(room, &self.instance).await
    }

    /// Deletes `room`'s presence if it still names relay `instance`.
    async fn delete_presence(&self, room: &str, instance: &str) -> Result<(), String> {
        let mut connection = self.connection().ok_or("Redis is unreachable")?;
        timed(
            "deleting a room's presence",
            redis::Script::new(wire::LEAVE)
                .key(wire::presence_key(room))
                .arg(instance)
                .invoke_async::<i64>(&mut connection),
        )
        .await
        .map(drop)
    }

    /// Shutting down: every room of this relay stops naming it, so the other relays
    /// answer 404 at once rather than after the presence lapses.
    pub async fn leave_all(&self) {
        for (room, _) in self.rooms.robot_rooms() {
            if let Err(err) = self.leave(&room).await {
                tracing::warn!(room, "redis: {err}");
            }
        }
    }

    /// Whether `room` has a robot here or on another relay. With Redis away, here only.
    pub async fn present(&self, room: &str) -> bool {
        if self.rooms.present(room) {
            return true;
        }
        match self.holder(room).await {
            // A relay that died leaves its key until it lapses: one that no longer
            // listens on its channel holds no robot.
            Ok(Some(holder)) if holder != self.instance => {
                self.listening(&holder).await.unwrap_or(false)
            }
            _ => false,
        }
    }

    /// Whether relay `instance` listens on its channel.
    async fn listening(&self, instance: &str) -> Result<bool, String> {
        let mut connection = self.connection().ok_or("Redis is unreachable")?;
        let (_, listeners): (String, u64) = timed(
            "counting a relay's listeners",
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(wire::channel(instance))
                .query_async(&mut connection),
        )
        .await?;
        Ok(listeners > 0)
    }

    async fn holder(&self, room: &str) -> Result<Option<String>, String> {
        let mut connection = self.connection().ok_or("Redis is unreachable")?;
        timed(
            "reading a room's presence",
            redis::cmd("GET")
                .arg(wire::presence_key(room))
                .query_async(&mut connection),
        )
        .await
    }

    /// Hands `offer` to `room`'s robot, here or on the relay that has it, and waits for
    /// its answer.
    pub async fn forward(&self, room: &str, offer: String) -> Result<String, ForwardError> {
        if self.rooms.present(room) {
            return self.rooms.forward(room, offer).await;
        }
        check_name(room)?;
        if self.connection().is_none() {
            return Err(self.unreachable(room));
        }
        let holder = match self.holder(room).await {
            Ok(Some(holder)) if holder != self.instance => holder,
            Ok(_) => return Err(ForwardError::NoRobot(room.to_owned())),
            Err(_) => return Err(self.unreachable(room)),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, replied) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING {
                return Err(ForwardError::Busy(room.to_owned()));
            }
            pending.insert(id, reply);
        }
        // However this ends, the offer no longer waits.
        let _waiting = Pending { shared: self, id };
        let message = Message::Offer {
            id,
            room: room.to_owned(),
            reply_to: self.instance.clone(),
            offer,
        };
        match self.publish(&holder, &message).await {
            Ok(0) => {
                // The relay named died without cleaning up: its key goes now.
                tracing::info!(room, "relay {holder} is gone: its presence is deleted");
                let _ = self.delete_presence(room, &holder).await;
                return Err(ForwardError::NoRobot(room.to_owned()));
            }
            Ok(_) => {}
            Err(_) => return Err(self.unreachable(room)),
        }
        let timeout = self.rooms.config().offer_timeout();
        match tokio::time::timeout(timeout + REPLY_MARGIN, replied).await {
            Ok(Ok(outcome)) => outcome.into_result(room),
            Ok(Err(_)) => Err(ForwardError::Shared(format!(
                "Redis ({}) went away before room {room:?}'s relay answered: try again shortly",
                self.addr
            ))),
            Err(_) => Err(ForwardError::Timeout(
                room.to_owned(),
                self.rooms.config().offer_timeout_s,
            )),
        }
    }
}

/// An offer waiting on another relay; dropping it stops the wait.
struct Pending<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_log_lines() {
        assert_eq!(
            redact("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://user:pw@host"), "redis://user:***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn bad_urls_are_refused_with_the_url_named() {
        assert!(check_url("redis://127.0.0.1:6379").is_ok());
        let err = check_url("http://127.0.0.1").unwrap_err().to_string();
        assert!(err.starts_with("redis_url \"http://127.0.0.1\""), "{err}");
    }
}

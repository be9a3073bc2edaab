//! When the page watches through the SFU, as pure decisions: whether to subscribe to
//! Janus (and which subscription is current), where the picture comes from, whether
//! the robot should send its own media to this page, and what to remember about the
//! robot for the next page load. The hook (`use_sfu`) feeds it what happens and does
//! what it says.
//!
//! The robot offers its Janus feed in its stream figures (`stats.sfu.watch`). While
//! the setting allows it and the robot offers a feed, the page subscribes; once the
//! subscription's video plays, the picture comes from Janus and the robot's media to
//! this page is turned off. A subscription that fails, ends or does not play in time
//! gives the picture back to the robot (its media on again) and is tried again with a
//! backoff while the robot still offers the feed.
//!
//! The feed is remembered per robot: the next page load subscribes at once and starts
//! with the robot's media off, and gives that up if the robot's figures do not offer
//! the feed within [`GRACE_MS`] of the session going live.

use crate::json::{self, Field, Parsed};
use shared_protocol::SfuWatch;

/// How long after going live a remembered feed waits for the robot to offer it.
pub const GRACE_MS: f64 = 5000.0;
/// How long a subscription may take to play video (said as "10 s").
pub const PLAY_TIMEOUT_MS: f64 = 10_000.0;
/// First delay before subscribing again.
pub const MIN_BACKOFF_MS: f64 = 1000.0;
/// Longest delay before subscribing again.
pub const MAX_BACKOFF_MS: f64 = 15_000.0;

/// Where the picture comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The robot's own stream to this page.
    Robot,
    /// The SFU.
    Sfu,
}

impl Source {
    /// The name in `data-video-source`: `robot` or `sfu`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Robot => "robot",
            Self::Sfu => "sfu",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No subscription.
    Off,
    /// Subscription `id` is being set up; no video yet. `blind`: started from a
    /// remembered feed, with the robot's media off.
    Subscribing { id: u32, since_ms: f64, blind: bool },
    /// Subscription `id` plays.
    Playing { id: u32 },
    /// Waiting before subscribing again.
    Backoff { until_ms: f64 },
}

/// The page's SFU decisions (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    prefer: bool,
    target: Option<SfuWatch>,
    /// `target` is remembered from an earlier page load, not yet offered in this one.
    provisional: bool,
    live_since_ms: Option<f64>,
    phase: Phase,
    last_id: u32,
    failures: u32,
    reason: Option<String>,
    /// What to store for the next page load, once: `Some(None)` forgets.
    memory: Option<Option<SfuWatch>>,
}

impl Plan {
    /// A page that prefers the SFU (the setting) or not, and the feed this robot
    /// offered on an earlier load, if any.
    pub fn new(prefer: bool, remembered: Option<SfuWatch>) -> Self {
        Self {
            prefer,
            provisional: remembered.is_some(),
            target: remembered,
            live_since_ms: None,
            phase: Phase::Off,
            last_id: 0,
            failures: 0,
            reason: None,
            memory: None,
        }
    }

    /// The setting changed.
    pub fn set_prefer(&mut self, prefer: bool, now_ms: f64) {
        self.prefer = prefer;
        self.step(now_ms);
    }

    /// The session to the robot went live (or stopped being live).
    pub fn live(&mut self, live: bool, now_ms: f64) {
        self.live_since_ms = live.then_some(now_ms);
    }

    /// The robot's figures arrived, offering `watch` or nothing.
    pub fn stats(&mut self, watch: Option<&SfuWatch>, now_ms: f64) {
        match watch {
            Some(watch) => {
                if self.target.as_ref() != Some(watch) {
                    self.target = Some(watch.clone());
                    self.stop(None);
                    self.failures = 0;
                    self.memory = Some(Some(watch.clone()));
                } else if self.provisional {
                    self.memory = Some(Some(watch.clone()));
                }
                self.provisional = false;
            }
            None => {
                if self.target.take().is_some() {
                    self.stop(Some("the robot does not offer the SFU now".to_owned()));
                    self.memory = Some(None);
                }
                self.provisional = false;
            }
        }
        self.step(now_ms);
    }

    /// Subscription `id`'s video plays.
    pub fn playing(&mut self, id: u32) {
        if matches!(self.phase, Phase::Subscribing { id: current, .. } if current == id) {
            self.phase = Phase::Playing { id };
            self.failures = 0;
            self.reason = None;
        }
    }

    /// Subscription `id` failed or ended, for `reason`.
    pub fn ended(&mut self, id: u32, reason: String, now_ms: f64) {
        let current = match self.phase {
            Phase::Subscribing { id, .. } | Phase::Playing { id } => Some(id),
            _ => None,
        };
        if current == Some(id) {
            let delay =
                (MIN_BACKOFF_MS * f64::from(1u32 << self.failures.min(8))).min(MAX_BACKOFF_MS);
            self.failures += 1;
            self.phase = Phase::Backoff {
                until_ms: now_ms + delay,
            };
            self.reason = Some(reason);
        }
    }

    /// Time passes: a remembered feed the robot did not offer in time is forgotten, a
    /// subscription that did not play in time ends, a backoff that ran out
    /// subscribes again.
    pub fn tick(&mut self, now_ms: f64) {
        if self.provisional && self.live_since_ms.is_some_and(|t| now_ms - t >= GRACE_MS) {
            self.provisional = false;
            self.target = None;
            self.memory = Some(None);
            self.stop(Some("the robot did not offer the SFU".to_owned()));
        }
        if let Phase::Subscribing { id, since_ms, .. } = self.phase {
            if now_ms - since_ms >= PLAY_TIMEOUT_MS {
                // A fixed text: formatting a float would link core's float printing.
                self.ended(id, "no video from the SFU in 10 s".to_owned(), now_ms);
            }
        }
        self.step(now_ms);
    }

    fn stop(&mut self, reason: Option<String>) {
        self.phase = Phase::Off;
        if reason.is_some() {
            self.reason = reason;
        }
    }

    fn step(&mut self, now_ms: f64) {
        if !self.prefer || self.target.is_none() {
            if self.phase != Phase::Off {
                self.phase = Phase::Off;
            }
            return;
        }
        let start = match self.phase {
            Phase::Off => true,
            Phase::Backoff { until_ms } => now_ms >= until_ms,
            _ => false,
        };
        if start {
            self.last_id += 1;
            self.phase = Phase::Subscribing {
                id: self.last_id,
                since_ms: now_ms,
                // Only the first try: after a failure the robot's media stay on
                // until the SFU plays (no flip-flop while retrying).
                blind: self.provisional && self.failures == 0,
            };
        }
    }

    /// The subscription that should exist now: its id and the feed.
    pub fn subscription(&self) -> Option<(u32, &SfuWatch)> {
        match self.phase {
            Phase::Subscribing { id, .. } | Phase::Playing { id } => {
                self.target.as_ref().map(|t| (id, t))
            }
            _ => None,
        }
    }

    /// Where the picture comes from.
    pub fn source(&self) -> Source {
        match self.phase {
            Phase::Playing { .. } => Source::Sfu,
            _ => Source::Robot,
        }
    }

    /// Whether the robot should send its video and sound to this page: not while the
    /// SFU's play, nor while a remembered feed is being subscribed to (the robot's
    /// media stays off from the page load until the SFU plays or fails).
    pub fn robot_media(&self) -> bool {
        match self.phase {
            Phase::Playing { .. } => false,
            Phase::Subscribing { blind, .. } => !blind,
            _ => true,
        }
    }

    /// Why the picture is not (or no longer) the SFU's, when it is worth saying.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The SFU side's state in a word: `off`, `subscribing`, `playing` or
    /// `retrying`.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Off => "off",
            Phase::Subscribing { .. } => "subscribing",
            Phase::Playing { .. } => "playing",
            Phase::Backoff { .. } => "retrying",
        }
    }

    /// What to store for the next page load, once (`Some(None)`: forget the feed).
    pub fn take_memory(&mut self) -> Option<Option<SfuWatch>> {
        self.memory.take()
    }
}

/// A feed as the page stores it: `{"url":..,"room":..,"feed":..,"pin":..}`.
pub fn watch_text(watch: &SfuWatch) -> String {
    let mut fields = vec![
        ("url", Field::Str(&watch.url)),
        ("room", Field::Num(watch.room as f64)),
        ("feed", Field::Num(watch.feed as f64)),
    ];
    if let Some(pin) = &watch.pin {
        fields.push(("pin", Field::Str(pin)));
    }
    json::object(&fields)
}

/// A stored feed (see [`watch_text`]); `None` for anything else.
pub fn read_watch(text: &str) -> Option<SfuWatch> {
    watch_of(&json::Value::parse(text)?)
}

/// The feed in a parsed `{url, room, feed, pin}` object.
pub fn watch_of<V: Parsed>(value: &V) -> Option<SfuWatch> {
    let id = |key: &str| {
        value
            .field(key)?
            .as_f64()
            .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= 9_007_199_254_740_991.0)
            .map(|n| n as u64)
    };
    Some(SfuWatch {
        url: value.field("url")?.as_string()?,
        room: id("room")?,
        feed: id("feed")?,
        pin: value.field("pin").and_then(|p| p.as_string()),
    })
}

/// The `localStorage` key for the feed of the robot at `connect_url`.
pub fn memory_key(connect_url: &str) -> String {
    format!("rtcbot-sfu:{connect_url}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(n: u64) -> SfuWatch {
        SfuWatch {
            url: "http://10.0.0.1:8088/janus".into(),
            room: 1234,
            feed: n,
            pin: None,
        }
    }

    #[test]
    fn an_offered_feed_is_watched_once_it_plays() {
        let mut plan = Plan::new(true, None);
        plan.live(true, 0.0);
        assert_eq!(plan.subscription(), None);
        assert!(plan.robot_media());
        plan.stats(Some(&feed(7)), 1000.0);
        assert_eq!(plan.subscription(), Some((1, &feed(7))));
        assert_eq!(plan.take_memory(), Some(Some(feed(7))));
        assert_eq!(plan.take_memory(), None, "told once");
        // Until it plays, the robot's picture stays.
        assert!(plan.robot_media());
        assert_eq!(plan.source(), Source::Robot);
        plan.stats(Some(&feed(7)), 2000.0);
        assert_eq!(plan.subscription(), Some((1, &feed(7))), "the same one");
        plan.playing(1);
        assert_eq!(plan.source(), Source::Sfu);
        assert!(!plan.robot_media());
        assert_eq!(plan.state_name(), "playing");
        assert_eq!(plan.take_memory(), None);
    }

    #[test]
    fn a_failed_subscription_gives_the_picture_back_and_retries_with_backoff() {
        let mut plan = Plan::new(true, None);
        plan.live(true, 0.0);
        plan.stats(Some(&feed(7)), 0.0);
        plan.playing(1);
        plan.ended(1, "Janus hung up".into(), 100.0);
        assert_eq!(plan.source(), Source::Robot);
        assert!(plan.robot_media());
        assert_eq!(plan.reason(), Some("Janus hung up"));
        assert_eq!(plan.subscription(), None);
        assert_eq!(plan.state_name(), "retrying");
        plan.tick(100.0 + MIN_BACKOFF_MS - 1.0);
        assert_eq!(plan.subscription(), None);
        plan.tick(100.0 + MIN_BACKOFF_MS);
        assert_eq!(plan.subscription(), Some((2, &feed(7))));
        // Stale news of the old one changes nothing.
        plan.ended(1, "late".into(), 2000.0);
        assert_eq!(plan.subscription(), Some((2, &feed(7))));
        // Failing again doubles the wait.
        plan.ended(2, "cannot reach Janus".into(), 2000.0);
        plan.tick(2000.0 + MIN_BACKOFF_MS);
        assert_eq!(plan.subscription(), None);
        plan.tick(2000.0 + 2.0 * MIN_BACKOFF_MS);
        assert_eq!(plan.subscription(), Some((3, &feed(7))));
        // Not playing in time is a failure too.
        plan.tick(4000.0 + PLAY_TIMEOUT_MS);
        assert_eq!(plan.subscription(), None);
        assert!(
            plan.reason().unwrap().contains("no video"),
            "{:?}",
            plan.reason()
        );
    }

    #[test]
    fn the_robot_no_longer_offering_ends_it_and_is_forgotten() {
        let mut plan = Plan::new(true, None);
        plan.live(true, 0.0);
        plan.stats(Some(&feed(7)), 0.0);
        plan.playing(1);
        plan.take_memory();
        plan.stats(None, 1000.0);
        assert_eq!(plan.subscription(), None);
        assert!(plan.robot_media());
        assert_eq!(plan.source(), Source::Robot);
        assert_eq!(plan.take_memory(), Some(None));
        assert!(plan.reason().is_some());
        // Offered again: subscribed again at once.
        plan.stats(Some(&feed(7)), 2000.0);
        assert_eq!(plan.subscription(), Some((2, &feed(7))));
        // Another feed: a new subscription.
        plan.stats(Some(&feed(8)), 3000.0);
        assert_eq!(plan.subscription(), Some((3, &feed(8))));
    }

    #[test]
    fn a_remembered_feed_starts_without_the_robots_media_until_disproved() {
        let mut plan = Plan::new(true, Some(feed(7)));
        plan.tick(0.0);
        assert_eq!(plan.subscription(), Some((1, &feed(7))));
        assert!(!plan.robot_media(), "straight to the SFU");
        plan.live(true, 500.0);
        plan.tick(500.0 + GRACE_MS - 1.0);
        assert!(!plan.robot_media());
        plan.tick(500.0 + GRACE_MS);
        assert!(plan.robot_media(), "no offer in time");
        assert_eq!(plan.subscription(), None);
        assert_eq!(plan.take_memory(), Some(None));

        // Confirmed by the robot: kept, and a failure then brings the robot's media.
        let mut plan = Plan::new(true, Some(feed(7)));
        plan.tick(0.0);
        plan.live(true, 0.0);
        plan.stats(Some(&feed(7)), 1000.0);
        assert_eq!(
            plan.subscription(),
            Some((1, &feed(7))),
            "the same subscription"
        );
        assert!(
            !plan.robot_media(),
            "confirmed: still off until the SFU plays or fails"
        );
        plan.tick(1000.0 + GRACE_MS);
        assert_eq!(plan.subscription(), Some((1, &feed(7))));
        // A remembered feed that fails: the robot's media at once.
        let mut plan = Plan::new(true, Some(feed(7)));
        plan.tick(0.0);
        plan.ended(1, "cannot reach Janus".into(), 10.0);
        assert!(plan.robot_media());
        // Tried again (still unconfirmed): the robot's media stay on meanwhile.
        plan.tick(10.0 + MIN_BACKOFF_MS);
        assert_eq!(plan.subscription(), Some((2, &feed(7))));
        assert!(plan.robot_media(), "no flip-flop while retrying");
    }

    #[test]
    fn the_setting_always_from_the_robot_never_subscribes() {
        let mut plan = Plan::new(false, Some(feed(7)));
        plan.tick(0.0);
        assert_eq!(plan.subscription(), None);
        assert!(plan.robot_media());
        plan.stats(Some(&feed(7)), 0.0);
        assert_eq!(plan.subscription(), None);
        assert_eq!(plan.take_memory(), Some(Some(feed(7))), "still remembered");
        plan.set_prefer(true, 10.0);
        assert_eq!(plan.subscription(), Some((1, &feed(7))));
        plan.playing(1);
        plan.set_prefer(false, 20.0);
        assert_eq!(plan.subscription(), None);
        assert_eq!(plan.source(), Source::Robot);
        assert!(plan.robot_media());
    }

    #[test]
    fn feeds_are_stored_and_read_back() {
        let mut pinned = feed(9_007_199_254_740_991);
        pinned.pin = Some("p\"1".into());
        for watch in [feed(7), pinned] {
            let text = watch_text(&watch);
            assert_eq!(read_watch(&text), Some(watch.clone()), "{text}");
            let theirs: SfuWatch = serde_json::from_str(&text).unwrap();
            assert_eq!(theirs, watch, "shared-protocol reads it alike");
        }
        assert_eq!(read_watch("{\"url\":\"x\",\"room\":-1,\"feed\":1}"), None);
        assert_eq!(read_watch("nonsense"), None);
        assert_eq!(memory_key("connect"), "rtcbot-sfu:connect");
    }
}

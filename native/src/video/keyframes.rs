//! When the shared encoder forces a keyframe (pure, the time passed in, unit-tested).
//!
//! Every viewer shares one encode, so one viewer's keyframe is every viewer's: a
//! viewer sending PLI or FIR in a loop would make the whole stream keyframes (large,
//! slow, blurry). [`KeyframePolicy`] lets viewers' requests force at most one keyframe
//! per [`KEYFRAME_REQUEST_INTERVAL`] for the whole stream: a request inside that
//! window is kept and served when it ends (so a viewer that lost a picture still gets
//! one within the window), and further requests meanwhile are merged into it and
//! counted as dropped. A new (or lagging) viewer, which cannot show anything until its
//! first keyframe, bypasses the throttle: the next frame is a keyframe.

use std::time::{Duration, Instant};

/// The shortest time between two keyframes forced by viewers' requests (PLI, FIR).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Decides, frame by frame, whether the encoder must make a keyframe.
#[derive(Debug, Clone)]
pub struct KeyframePolicy {
    interval: Duration,
    /// When a keyframe was last forced.
    last_forced: Option<Instant>,
    /// A viewer needs its first keyframe: the next frame, whatever the throttle.
    viewer_waiting: bool,
    /// A PLI or FIR is waiting for the throttle window to end.
    request_pending: bool,
    /// Requests that got no keyframe of their own (merged into one already due).
    dropped: u64,
}

impl Default for KeyframePolicy {
    fn default() -> Self {
        Self::new(KEYFRAME_REQUEST_INTERVAL)
    }
}

impl KeyframePolicy {
    /// Viewers' requests force at most one keyframe per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_forced: None,
            viewer_waiting: false,
            request_pending: false,
            dropped: 0,
        }
    }

    /// A viewer joined (or fell behind) and needs a keyframe: the next frame is one.
    pub fn viewer_needs_keyframe(&mut self) {
        self.viewer_waiting = true;
    }

    /// A viewer sent a PLI or FIR: served at the first frame outside the
    /// throttle window; merged (and counted as dropped) when a keyframe is already due.
    pub fn request(&mut self) {
        if self.viewer_waiting || self.request_pending {
            self.dropped += 1;
        } else {
            self.request_pending = true;
        }
    }

    /// Asked once per frame, before encoding it at `now`: true when it must be a
    /// keyframe (and then it counts as forced at `now`).
    pub fn force(&mut self, now: Instant) -> bool {
        let window_over = self
            .last_forced
            .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        let force = self.viewer_waiting || (self.request_pending && window_over);
        if force {
            self.viewer_waiting = false;
            self.request_pending = false;
            self.last_forced = Some(now);
        }
        force
    }

    /// The frame [`force`](Self::force) asked for did not come out (the encoder failed
    /// or held it back): the next frame is the keyframe instead.
    pub fn retry(&mut self) {
        self.viewer_waiting = true;
    }

    /// The encoder made a keyframe on its own (its periodic one): pending requests are
    /// answered by it.
    pub fn keyframe_sent(&mut self) {
        self.request_pending = false;
    }

    /// Requests that got no keyframe of their own since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(33);

    /// Runs `frames` frames from `start`, calling `each(policy)` before each one;
    /// returns the numbers of the frames forced to be keyframes.
    fn run(
        policy: &mut KeyframePolicy,
        start: Instant,
        frames: u32,
        mut each: impl FnMut(&mut KeyframePolicy),
    ) -> Vec<u32> {
        (0..frames)
            .filter(|&n| {
                let now = start + FRAME * n;
                each(policy);
                policy.force(now)
            })
            .collect()
    }

    #[test]
    fn a_viewer_flooding_requests_forces_at_most_one_keyframe_per_interval() {
        let mut policy = KeyframePolicy::default();
        let start = Instant::now();
        // Ten requests before every frame for 3 s (about 91 frames).
        let forced = run(&mut policy, start, 91, |p| {
            for _ in 0..10 {
                p.request();
            }
        });
        // Frame 0 at once, then each first frame at least 500 ms (16 frames) later.
        assert_eq!(forced, [0, 16, 32, 48, 64, 80]);
        for pair in forced.windows(2) {
            assert!(FRAME * (pair[1] - pair[0]) >= KEYFRAME_REQUEST_INTERVAL);
        }
        // 910 requests, 6 keyframes, one request waiting for the next window.
        assert_eq!(policy.dropped(), 910 - 6 - 1);
    }

    #[test]
    fn a_request_inside_the_window_is_served_when_it_ends() {
        let mut policy = KeyframePolicy::default();
        let start = Instant::now();
        policy.request();
        assert!(policy.force(start));
        // One lost picture 100 ms later: not now, but at the first frame 500 ms after
        // the last forced keyframe, and only once.
        policy.request();
        assert!(!policy.force(start + Duration::from_millis(100)));
        assert!(!policy.force(start + Duration::from_millis(499)));
        assert!(policy.force(start + Duration::from_millis(500)));
        assert!(!policy.force(start + Duration::from_millis(2000)));
        assert_eq!(policy.dropped(), 0);
    }

    #[test]
    fn new_viewers_bypass_the_throttle() {
        let mut policy = KeyframePolicy::default();
        let start = Instant::now();
        policy.request();
        assert!(policy.force(start));
        // A viewer joins one frame later: its keyframe is the very next frame.
        policy.viewer_needs_keyframe();
        assert!(policy.force(start + FRAME));
        // A PLI right after is within the window: it waits.
        policy.request();
        assert!(!policy.force(start + FRAME * 2));
        // Another viewer joins: the waiting PLI is served by its keyframe, at once.
        policy.viewer_needs_keyframe();
        assert!(policy.force(start + FRAME * 3));
        assert!(!policy.force(start + Duration::from_secs(5)));
        // A request while a viewer's keyframe is due is merged into it.
        policy.viewer_needs_keyframe();
        policy.request();
        assert_eq!(policy.dropped(), 1);
        assert!(policy.force(start + Duration::from_secs(6)));
    }

    #[test]
    fn a_keyframe_that_did_not_come_out_is_retried_and_natural_ones_answer_requests() {
        let mut policy = KeyframePolicy::default();
        let start = Instant::now();
        policy.viewer_needs_keyframe();
        assert!(policy.force(start));
        policy.retry();
        assert!(policy.force(start + FRAME));
        // A request inside the window, then the encoder's periodic keyframe: answered.
        policy.request();
        policy.keyframe_sent();
        assert!(!policy.force(start + Duration::from_secs(1)));
    }
}

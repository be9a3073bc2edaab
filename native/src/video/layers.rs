//! Which temporal layers each viewer gets (pure policy, unit-tested; each peer's video
//! task asks it before every frame).
//!
//! The one shared encode has two temporal layers (openh264's temporal scalability):
//! the base layer (layer 0, every other frame, half the frame rate) references only
//! itself, so a viewer can skip every frame of layer 1 and still decode the rest. A
//! viewer whose path carries clearly less than the encoder's target gets the base
//! layer only, at about two thirds of the bits, rather than a queue that grows; the
//! others keep every frame. That is also what happens at the bitrate floor: once the
//! encoder's target cannot go lower, the frame rate gives way.
//!
//! **Hysteresis.** A viewer drops to the base layer when its estimate has stayed under
//! [`DOWN`] × the target for [`DOWN_AFTER`] (the viewer the encoder follows is under
//! it only while the target catches up with a cut, or at the floor), and goes back to every frame when its estimate reaches the
//! target again after at least [`MIN_BASE`] on the base layer. On the base layer the
//! estimate grows as soon as the queue has drained, whatever the path carries, so
//! going back is a probe: one that fails (the viewer is back on the base layer within
//! [`PROBE_WINDOW`]) doubles the wait before the next, up to [`MAX_BASE`].
//!
//! Sources without layers (the hardware encoder, a camera's own H.264) mark every
//! frame layer 0: the choice then changes nothing.

use std::time::{Duration, Instant};

/// Under this share of the encoder's target, a viewer gets the base layer only.
pub const DOWN: f64 = 0.85;
/// How long a viewer's estimate stays under [`DOWN`] × the target before it gets the
/// base layer only.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);
/// The least time on the base layer before every frame comes back.
pub const MIN_BASE: Duration = Duration::from_secs(4);
/// The longest wait on the base layer after failed probes.
pub const MAX_BASE: Duration = Duration::from_secs(60);
/// Back on the base layer this soon after getting every frame again: the probe failed.
pub const PROBE_WINDOW: Duration = Duration::from_secs(10);

/// The layers a viewer gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layers {
    /// Every frame.
    #[default]
    All,
    /// The base layer (temporal layer 0) only.
    Base,
}

impl Layers {
    /// Whether a frame of temporal layer `layer` goes to this viewer.
    pub fn carries(self, layer: u8) -> bool {
        match self {
            Self::All => true,
            Self::Base => layer == 0,
        }
    }

    /// The highest temporal layer this viewer gets.
    pub fn highest(self) -> u8 {
        match self {
            Self::All => 1,
            Self::Base => 0,
        }
    }
}

/// One viewer's layer choice over time.
#[derive(Debug, Clone, Default)]
pub struct LayerChoice {
    layers: Layers,
    /// When it went to the base layer.
    since: Option<Instant>,
    /// Since when its estimate has been under the line, while it gets every frame.
    below_since: Option<Instant>,
    /// When it last went back to every frame.
    up_at: Option<Instant>,
    /// The wait on the base layer now (doubled by each failed probe).
    hold: Option<Duration>,
    switches: u64,
}

impl LayerChoice {
    /// What the viewer gets now, given its estimate (kbit/s; `None` before its first
    /// feedback) and the encoder's target (kbit/s).
    pub fn update(&mut self, now: Instant, estimate_kbps: Option<u32>, target_kbps: u32) -> Layers {
        let Some(estimate) = estimate_kbps else {
            return self.layers;
        };
        let (estimate, target) = (f64::from(estimate), f64::from(target_kbps.max(1)));
        let below = estimate < target * DOWN;
        self.below_since = if below && self.layers == Layers::All {
            Some(self.below_since.unwrap_or(now))
        } else {
            None
        };
        let next = match self.layers {
            Layers::All
                if self
                    .below_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= DOWN_AFTER) =>
            {
                Layers::Base
            }
            Layers::Base
                if estimate >= target
                    && self
                        .since
                        .is_none_or(|t| now.saturating_duration_since(t) >= self.hold()) =>
            {
                Layers::All
            }
            same => same,
        };
        if next != self.layers {
            self.switches += 1;
            self.layers = next;
            match next {
                Layers::Base => {
                    self.since = Some(now);
                    let failed = self
                        .up_at
                        .is_some_and(|t| now.saturating_duration_since(t) < PROBE_WINDOW);
                    self.hold = Some(if failed {
                        (self.hold() * 2).min(MAX_BASE)
                    } else {
                        MIN_BASE
                    });
                }
                Layers::All => self.up_at = Some(now),
            }
        }
        self.layers
    }

    /// The wait on the base layer before the next probe.
    pub fn hold(&self) -> Duration {
        self.hold.unwrap_or(MIN_BASE)
    }

    /// What the viewer gets.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// Times the choice changed.
    pub fn switches(&self) -> u64 {
        self.switches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_without_an_estimate_gets_every_frame() {
        let mut choice = LayerChoice::default();
        assert_eq!(choice.update(Instant::now(), None, 1000), Layers::All);
        assert_eq!(choice.switches(), 0);
    }

    #[test]
    fn a_slow_viewer_gets_the_base_layer_and_a_fast_one_every_frame() {
        let now = Instant::now();
        let (mut slow, mut fast) = (LayerChoice::default(), LayerChoice::default());
        // Not at once: the target may be catching up with a cut.
        assert_eq!(slow.update(now, Some(700), 1000), Layers::All);
        assert_eq!(
            slow.update(now + DOWN_AFTER / 2, Some(700), 1000),
            Layers::All
        );
        assert_eq!(slow.update(now + DOWN_AFTER, Some(700), 1000), Layers::Base);
        assert_eq!(fast.update(now, Some(1000), 1000), Layers::All);
        // Just under the target is not enough to lose frames.
        assert_eq!(
            fast.update(now + DOWN_AFTER * 2, Some(860), 1000),
            Layers::All
        );
    }

    #[test]
    fn a_short_dip_under_the_line_keeps_every_frame() {
        let now = Instant::now();
        let mut choice = LayerChoice::default();
        choice.update(now, Some(700), 1000);
        // The target caught up (or the estimate came back) before the second was up.
        choice.update(now + DOWN_AFTER / 2, Some(700), 700);
        assert_eq!(
            choice.update(now + DOWN_AFTER, Some(700), 1000),
            Layers::All
        );
        assert_eq!(choice.switches(), 0);
    }

    #[test]
    fn every_frame_comes_back_only_after_the_hold_and_at_the_target() {
        let start = Instant::now();
        let mut choice = LayerChoice::default();
        choice.update(start - DOWN_AFTER, Some(500), 1000);
        assert_eq!(choice.update(start, Some(500), 1000), Layers::Base);
        let early = start + MIN_BASE / 2;
        assert_eq!(choice.update(early, Some(1200), 1000), Layers::Base);
        let later = start + MIN_BASE;
        assert_eq!(choice.update(later, Some(950), 1000), Layers::Base);
        assert_eq!(choice.update(later, Some(1000), 1000), Layers::All);
        assert_eq!(choice.switches(), 2);
        // And down again a second after the path narrows.
        choice.update(later, Some(600), 1000);
        assert_eq!(
            choice.update(later + DOWN_AFTER, Some(600), 1000),
            Layers::Base
        );
    }

    #[test]
    fn each_failed_probe_doubles_the_wait_and_a_good_one_resets_it() {
        let mut t = Instant::now();
        let mut choice = LayerChoice::default();
        let down = |choice: &mut LayerChoice, t: &mut Instant| {
            choice.update(*t, Some(500), 1000);
            *t += DOWN_AFTER;
            assert_eq!(choice.update(*t, Some(500), 1000), Layers::Base);
        };
        down(&mut choice, &mut t);
        assert_eq!(choice.hold(), MIN_BASE);
        for expected in [MIN_BASE * 2, MIN_BASE * 4, MIN_BASE * 8] {
            t += choice.hold();
            assert_eq!(choice.update(t, Some(1000), 1000), Layers::All, "the probe");
            t += Duration::from_secs(1);
            down(&mut choice, &mut t);
            assert_eq!(choice.hold(), expected);
        }
        for _ in 0..10 {
            t += choice.hold();
            choice.update(t, Some(1000), 1000);
            t += Duration::from_secs(1);
            down(&mut choice, &mut t);
        }
        assert_eq!(choice.hold(), MAX_BASE, "the wait is bounded");
        // A probe that holds past the window: the next drop waits the least again.
        t += choice.hold();
        assert_eq!(choice.update(t, Some(1000), 1000), Layers::All);
        t += PROBE_WINDOW;
        down(&mut choice, &mut t);
        assert_eq!(choice.hold(), MIN_BASE);
    }

    #[test]
    fn the_base_layer_carries_only_layer_zero() {
        assert!(Layers::Base.carries(0));
        assert!(!Layers::Base.carries(1));
        assert!(Layers::All.carries(1));
        assert_eq!(Layers::Base.highest(), 0);
        assert_eq!(Layers::All.highest(), 1);
    }

    #[test]
    fn a_zero_target_does_not_divide_by_zero() {
        let (mut choice, now) = (LayerChoice::default(), Instant::now());
        choice.update(now, Some(0), 0);
        assert_eq!(choice.update(now + DOWN_AFTER, Some(0), 0), Layers::Base);
    }
}

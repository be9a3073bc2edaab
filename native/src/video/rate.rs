//! The shared encoder's bitrate from the viewers' bandwidth estimates (pure policy,
//! unit-tested; the robot's rate task feeds it, the stream applies what it decides).
//!
//! Every viewer shares one encode, so one number has to serve them all. By default it
//! follows the **driver** (the person steering by this video must see it live); with
//! [`Follow::Slowest`] it follows the slowest viewer instead. A viewer with no estimate
//! yet does not count. The result stays within `[min_kbps, max_kbps]`; with no
//! estimate at all the configured bitrate holds.

use serde::{Deserialize, Serialize};

/// Whose estimate the encoder follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Follow {
    /// The driving viewer's; the slowest viewer's while nobody drives.
    #[default]
    Driver,
    /// The slowest viewer's, always.
    Slowest,
}

impl std::str::FromStr for Follow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "driver" => Ok(Self::Driver),
            "slowest" => Ok(Self::Slowest),
            _ => Err(format!("{s:?} must be driver or slowest")),
        }
    }
}

/// One viewer's say in the bitrate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewerEstimate {
    /// What the path to it carries, kbit/s, by its congestion control; `None` before
    /// its first feedback.
    pub kbps: Option<u32>,
    /// It holds the drive.
    pub driving: bool,
}

/// The bounds and whom to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// The lowest target, kbit/s.
    pub min_kbps: u32,
    /// The highest target, kbit/s.
    pub max_kbps: u32,
    /// Whose estimate counts.
    pub follow: Follow,
}

impl RatePolicy {
    /// The encoder's target for these viewers, kbit/s; `None` when no viewer has an
    /// estimate (the configured bitrate holds).
    pub fn target_kbps(&self, viewers: &[ViewerEstimate]) -> Option<u32> {
        let slowest = || viewers.iter().filter_map(|v| v.kbps).min();
        let kbps = match self.follow {
            Follow::Driver => viewers
                .iter()
                .find(|v| v.driving)
                .and_then(|v| v.kbps)
                .or_else(slowest),
            Follow::Slowest => slowest(),
        }?;
        Some(kbps.clamp(self.min_kbps, self.max_kbps.max(self.min_kbps)))
    }
}

/// Whether a new target differs enough from the applied one to tell the encoder
/// (3%: estimates move by small steps all the time, and each change resets part of the
/// encoder's rate control).
pub fn worth_changing(applied: u32, target: u32) -> bool {
    applied.abs_diff(target) * 100 > applied.max(1) * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        min_kbps: 150,
        max_kbps: 2000,
        follow: Follow::Driver,
    };

    fn viewer(kbps: Option<u32>, driving: bool) -> ViewerEstimate {
        ViewerEstimate { kbps, driving }
    }

    #[test]
    fn follows_the_driver_even_when_a_watcher_is_slower() {
        let viewers = [viewer(Some(300), false), viewer(Some(1200), true)];
        assert_eq!(POLICY.target_kbps(&viewers), Some(1200));
        let slowest = RatePolicy {
            follow: Follow::Slowest,
            ..POLICY
        };
        assert_eq!(slowest.target_kbps(&viewers), Some(300));
    }

    #[test]
    fn without_a_driver_estimate_the_slowest_viewer_counts() {
        let viewers = [
            viewer(Some(900), false),
            viewer(None, true),
            viewer(Some(400), false),
        ];
        assert_eq!(POLICY.target_kbps(&viewers), Some(400));
        assert_eq!(POLICY.target_kbps(&[viewer(None, false)]), None);
        assert_eq!(POLICY.target_kbps(&[]), None);
    }

    #[test]
    fn stays_within_the_bounds() {
        assert_eq!(POLICY.target_kbps(&[viewer(Some(20), true)]), Some(150));
        assert_eq!(
            POLICY.target_kbps(&[viewer(Some(90_000), true)]),
            Some(2000)
        );
        let inverted = RatePolicy {
            min_kbps: 500,
            max_kbps: 100,
            follow: Follow::Driver,
        };
        assert_eq!(inverted.target_kbps(&[viewer(Some(20), true)]), Some(500));
    }

    #[test]
    fn small_moves_are_not_worth_a_change() {
        assert!(!worth_changing(1000, 1020));
        assert!(worth_changing(1000, 1040));
        assert!(worth_changing(1000, 800));
        assert!(worth_changing(0, 150));
    }

    #[test]
    fn follow_parses_from_its_config_words() {
        assert_eq!("driver".parse(), Ok(Follow::Driver));
        assert_eq!("slowest".parse(), Ok(Follow::Slowest));
        assert!("fastest"
            .parse::<Follow>()
            .unwrap_err()
            .contains("driver or slowest"));
    }
}

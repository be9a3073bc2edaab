//! How steady the stream is: the frame rate and the longest gap between two frames over
//! the last few seconds ([`FrameTimes`]).
//!
//! A one-second average hides a skipped frame (29 of 30 reads as 29.x, within noise),
//! while a viewer sees it as a picture held for two frame periods; so the stream keeps
//! the times of its recent frames and reports both figures over [`WINDOW`]. Pure data:
//! the stream records, the stats reporter and `/health` read.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the figures cover.
pub const WINDOW: Duration = Duration::from_secs(5);

/// Frame times kept at most (a 120 fps stream over [`WINDOW`]).
const MAX_TIMES: usize = 600;

/// The figures over the last [`WINDOW`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Steadiness {
    /// Frames per second over the window (or since the first frame, if later).
    pub fps: f64,
    /// The longest time between two frames in the window, or since the last one.
    pub max_gap: Duration,
}

/// The times of the recent frames.
#[derive(Debug, Default)]
pub struct FrameTimes {
    times: VecDeque<Instant>,
}

impl FrameTimes {
    /// Notes a frame made at `at` (times only go forward).
    pub fn record(&mut self, at: Instant) {
        if self.times.len() == MAX_TIMES {
            self.times.pop_front();
        }
        self.times.push_back(at);
        self.forget_before(at);
    }

    fn forget_before(&mut self, now: Instant) {
        // One frame before the window stays: it starts the window's first gap.
        while self.times.len() > 1 && now.duration_since(self.times[1]) > WINDOW {
            self.times.pop_front();
        }
    }

    /// The figures at `now`; zeros before the second frame. A stream that stopped shows
    /// its silence as the gap since its last frame.
    pub fn steadiness(&self, now: Instant) -> Steadiness {
        let (Some(first), Some(last)) = (self.times.front(), self.times.back()) else {
            return Steadiness::default();
        };
        let gaps = self
            .times
            .iter()
            .zip(self.times.iter().skip(1))
            .map(|(a, b)| b.duration_since(*a));
        let max_gap = gaps
            .chain([now.duration_since(*last)])
            .max()
            .unwrap_or_default();
        let in_window = self
            .times
            .iter()
            .filter(|t| now.duration_since(**t) <= WINDOW)
            .count();
        let since_first = now.duration_since(*first);
        let fps = if self.times.len() < 2 || since_first.is_zero() {
            0.0
        } else if since_first < WINDOW {
            // Fence posts: n frames since the first make n - 1 periods.
            (self.times.len() - 1) as f64 / since_first.as_secs_f64()
        } else {
            in_window as f64 / WINDOW.as_secs_f64()
        };
        Steadiness { fps, max_gap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(33);

    fn stream(start: Instant, frames: u32, skip: impl Fn(u32) -> bool) -> FrameTimes {
        let mut times = FrameTimes::default();
        for n in (0..frames).filter(|n| !skip(*n)) {
            times.record(start + PERIOD * n);
        }
        times
    }

    #[test]
    fn a_steady_stream_reads_its_rate_and_period() {
        let start = Instant::now();
        let times = stream(start, 300, |_| false);
        let s = times.steadiness(start + PERIOD * 299);
        assert!((s.fps - 30.3).abs() < 0.3, "{s:?}");
        assert_eq!(s.max_gap, PERIOD);
    }

    #[test]
    fn one_skipped_frame_shows_as_a_double_gap_for_the_whole_window() {
        let start = Instant::now();
        let times = stream(start, 300, |n| n == 250);
        let now = start + PERIOD * 299;
        let s = times.steadiness(now);
        assert_eq!(s.max_gap, PERIOD * 2, "{s:?}");
        // Gone once it left the window.
        let mut later = times;
        for n in 300..500 {
            later.record(start + PERIOD * n);
        }
        assert_eq!(later.steadiness(start + PERIOD * 499).max_gap, PERIOD);
    }

    #[test]
    fn a_stalled_stream_shows_the_time_since_its_last_frame() {
        let start = Instant::now();
        let times = stream(start, 30, |_| false);
        let s = times.steadiness(start + PERIOD * 29 + Duration::from_secs(2));
        assert_eq!(s.max_gap, Duration::from_secs(2));
        assert!(s.fps < 30.0, "{s:?}");
    }

    #[test]
    fn nothing_or_one_frame_reads_zero_fps() {
        let start = Instant::now();
        assert_eq!(
            FrameTimes::default().steadiness(start),
            Steadiness::default()
        );
        let mut one = FrameTimes::default();
        one.record(start);
        assert_eq!(one.steadiness(start).fps, 0.0);
    }

    #[test]
    fn memory_is_bounded_whatever_the_rate() {
        let start = Instant::now();
        let mut times = FrameTimes::default();
        for n in 0..10_000u32 {
            times.record(start + Duration::from_micros(100) * n);
        }
        assert!(times.times.len() <= MAX_TIMES);
    }
}

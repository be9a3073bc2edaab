//! The robot's bandwidth estimator: what the path to one viewer carries, from that
//! viewer's transport-wide congestion control feedback (pure: every instant passed in,
//! unit-tested; webrtc-rs's congestion control interceptor feeds it).
//!
//! **Why our own.** webrtc-rs 0.21 ships a port of Google Congestion Control behind
//! the same seam ([`BandwidthEstimator`]). Through an 800 kbit/s link with a deep
//! queue, carrying the robot's 1000 kbit/s, it lowered its estimate once, 2–3 s late,
//! then raised it back to 1000 kbit/s while the queue grew by 400 ms every second
//! (glass-to-glass latency past 4 s; `tests/tests/lossy.rs`'s narrowing link). A robot
//! needs the queue kept empty, above all else, so this estimator watches it directly:
//!
//! - **queueing delay**: each packet's one-way delay (arrival on the viewer's clock
//!   minus departure on ours; the two clocks' offset cancels out) above the lowest
//!   one seen over the last [`BASELINE_WINDOW`];
//! - **what arrives**: the bits the viewer received over the last [`RATE_WINDOW`].
//!
//! When the queue passes [`HIGH_QUEUE`], the estimate drops below what arrives (the
//! fuller the queue, the further, down to half), so the queue drains within a second
//! or two, then holds for [`HOLD`] to let the encoder follow. Below [`LOW_QUEUE`] it
//! grows by [`GROWTH_PER_SECOND`]; in between it holds. Heavy loss (over 10% of a
//! report) cuts it too. It stays within the configured bounds.

use rtc::interceptor::{BandwidthEstimator, PacketReport};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Queueing delay above which the path is taken as overused.
pub const HIGH_QUEUE: Duration = Duration::from_millis(25);
/// Queueing delay below which the estimate may grow.
pub const LOW_QUEUE: Duration = Duration::from_millis(15);
/// How long after a cut the estimate neither cuts again nor grows: the encoder takes
/// a frame or two, and the queue a round trip, to show the cut.
pub const HOLD: Duration = Duration::from_millis(250);
/// Growth per second while the queue is empty (so 800 → 1000 kbit/s in about 1.1 s).
pub const GROWTH_PER_SECOND: f64 = 0.2;
/// The window of what arrives.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);
/// The window of the lowest delay (the empty-queue baseline).
pub const BASELINE_WINDOW: Duration = Duration::from_secs(20);

/// Watches one viewer's queue; see the module docs.
#[derive(Debug)]
pub struct QueueDelayEstimator {
    target: f64,
    min: f64,
    max: f64,
    /// The first departure: delays are measured from it.
    epoch: Option<Instant>,
    /// Lowest delays, one per second of departures: (that second's start, its lowest).
    baseline: VecDeque<(Instant, f64)>,
    /// Received packets' arrival times (s, viewer's clock) and sizes (bits).
    arrivals: VecDeque<(f64, f64)>,
    last_update: Option<Instant>,
    last_cut: Option<Instant>,
    /// The last report's queueing delay, seconds.
    queue: f64,
}

impl QueueDelayEstimator {
    /// Starts at `initial` bit/s, kept within `min..=max`.
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        let max = max.max(min);
        Self {
            target: initial.clamp(min, max),
            min,
            max,
            epoch: None,
            baseline: VecDeque::new(),
            arrivals: VecDeque::new(),
            last_update: None,
            last_cut: None,
            queue: 0.0,
        }
    }

    /// The queueing delay of the last report.
    pub fn queue_delay(&self) -> Duration {
        Duration::from_secs_f64(self.queue.max(0.0))
    }

    /// What arrived over the last [`RATE_WINDOW`], bit/s (`None` until it spans one).
    fn received_bps(&self) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?.0, self.arrivals.back()?.0);
        let span = last - first;
        if span < RATE_WINDOW.as_secs_f64() * 0.5 {
            return None;
        }
        let bits: f64 = self.arrivals.iter().map(|(_, bits)| bits).sum();
        Some(bits / span.max(1e-3))
    }

    fn note_delay(&mut self, departure: Instant, delay: f64) {
        match self.baseline.back_mut() {
            Some((start, lowest))
                if departure.saturating_duration_since(*start) < Duration::from_secs(1) =>
            {
                *lowest = lowest.min(delay);
            }
            _ => self.baseline.push_back((departure, delay)),
        }
        while self
            .baseline
            .front()
            .is_some_and(|(start, _)| departure.saturating_duration_since(*start) > BASELINE_WINDOW)
        {
            self.baseline.pop_front();
        }
    }

    fn lowest_delay(&self) -> f64 {
        self.baseline
            .iter()
            .map(|(_, d)| *d)
            .fold(f64::INFINITY, f64::min)
    }
}

impl BandwidthEstimator for QueueDelayEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let epoch = *self.epoch.get_or_insert(reports[0].departure);
        // The report's least-delayed packet: a frame's packets leave together and
        // queue behind each other, so the first of them shows the link's own queue.
        let mut report_delay = f64::INFINITY;
        let (mut lost, mut total) = (0usize, 0usize);
        for report in reports {
            total += 1;
            let Some(arrival) = report.arrival.filter(|_| report.arrived) else {
                lost += usize::from(!report.arrived);
                continue;
            };
            let arrival = arrival.as_secs_f64();
            let sent = report
                .departure
                .saturating_duration_since(epoch)
                .as_secs_f64();
            let delay = arrival - sent;
            self.note_delay(report.departure, delay);
            report_delay = report_delay.min(delay);
            self.arrivals.push_back((arrival, report.size as f64 * 8.0));
        }
        if let Some(&(newest, _)) = self.arrivals.back() {
            while self
                .arrivals
                .front()
                .is_some_and(|(t, _)| newest - t > RATE_WINDOW.as_secs_f64())
            {
                self.arrivals.pop_front();
            }
        }
        let dt = self.last_update.map_or(0.0, |t| {
            now.saturating_duration_since(t).as_secs_f64().min(0.5)
        });
        self.last_update = Some(now);
        if report_delay.is_finite() {
            self.queue = report_delay - self.lowest_delay();
        }
        let held = self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < HOLD);
        let loss = lost as f64 / total.max(1) as f64;
        if held {
            // The last cut is still on its way through the encoder and the queue.
        } else if self.queue > HIGH_QUEUE.as_secs_f64() {
            // Below what arrives, so the queue drains: by 10%, and by more the fuller
            // it is (a 300 ms queue: 40%); never more than half of the estimate at once
            // (what arrived in the window may be a quiet moment of the encoder's).
            let factor = (0.9 - self.queue).clamp(0.5, 0.9);
            let base = self.received_bps().unwrap_or(self.target).min(self.target);
            self.target = (base * factor).max(self.target * 0.5);
            self.last_cut = Some(now);
        } else if loss > 0.1 {
            self.target *= 1.0 - 0.5 * loss;
            self.last_cut = Some(now);
        } else if self.queue < LOW_QUEUE.as_secs_f64() {
            self.target *= 1.0 + GROWTH_PER_SECOND * dt;
        }
        self.target = self.target.clamp(self.min, self.max);
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// A sender at `send_bps` through a link of `link_bps` with a queue, in 1200-byte
    /// packets, reported every 100 ms; returns the estimate after each report and the
    /// estimator. `send_bps` follows the estimate when `follow` (an encoder obeying).
    struct Link {
        start: Instant,
        link_bps: f64,
        /// When the link is free again, seconds from start.
        busy_until: f64,
        sent: f64,
        id: u64,
    }

    impl Link {
        fn new(link_bps: f64) -> Self {
            Self {
                start: Instant::now(),
                link_bps,
                busy_until: 0.0,
                sent: 0.0,
                id: 0,
            }
        }

        /// Sends for 100 ms at `bps`; the reports of what left.
        fn send(&mut self, bps: f64) -> (Instant, Vec<PacketReport>) {
            let packet_bits = 1200.0 * 8.0;
            let mut reports = Vec::new();
            let end = self.sent + 0.1;
            let gap = packet_bits / bps;
            while self.sent < end {
                let leave = self.sent;
                // 20 ms of propagation plus the queue.
                let start = self.busy_until.max(leave);
                self.busy_until = start + packet_bits / self.link_bps;
                let arrive = self.busy_until + 0.02;
                self.id += 1;
                reports.push(PacketReport {
                    ssrc: 1,
                    id: self.id,
                    rtp_sequence_number: self.id as u16,
                    is_twcc: true,
                    twcc_sequence_number: self.id as u16,
                    size: 1200,
                    arrived: true,
                    departure: self.start + Duration::from_secs_f64(leave),
                    // The viewer's clock is 5 s off ours: only differences count.
                    arrival: Some(Duration::from_secs_f64(arrive + 5.0)),
                    ecn: Ecn::default(),
                });
                self.sent += gap;
            }
            (self.start + Duration::from_secs_f64(end), reports)
        }
    }

    fn run(est: &mut QueueDelayEstimator, link: &mut Link, seconds: f64) -> Vec<f64> {
        let mut targets = Vec::new();
        for _ in 0..(seconds * 10.0) as usize {
            let (now, reports) = link.send(est.target_bitrate());
            est.on_reports(now, &reports);
            targets.push(est.target_bitrate());
        }
        targets
    }

    #[test]
    fn a_narrow_link_brings_the_estimate_under_it_and_keeps_the_queue_short() {
        let mut est = QueueDelayEstimator::new(1_000_000.0, 150_000.0, 1_000_000.0);
        let mut link = Link::new(800_000.0);
        let targets = run(&mut est, &mut link, 20.0);
        // After the first seconds, the queue stays short and the estimate near the link.
        let mut worst_queue = 0.0f64;
        for _ in 0..50 {
            run(&mut est, &mut link, 0.1);
            worst_queue = worst_queue.max(est.queue_delay().as_secs_f64());
        }
        assert!(
            worst_queue < 0.2,
            "queue up to {worst_queue:.3} s on a steady narrow link"
        );
        let late = &targets[100..];
        let mean = late.iter().sum::<f64>() / late.len() as f64;
        assert!(
            (450_000.0..=850_000.0).contains(&mean),
            "the estimate averaged {mean:.0} bit/s on an 800 kbit/s link"
        );
    }

    #[test]
    fn a_wide_link_lets_the_estimate_grow_to_the_ceiling() {
        let mut est = QueueDelayEstimator::new(300_000.0, 150_000.0, 1_000_000.0);
        let mut link = Link::new(5_000_000.0);
        let targets = run(&mut est, &mut link, 12.0);
        assert_eq!(*targets.last().unwrap(), 1_000_000.0, "{targets:?}");
    }

    #[test]
    fn the_estimate_comes_back_when_the_link_widens() {
        let mut est = QueueDelayEstimator::new(1_000_000.0, 150_000.0, 1_000_000.0);
        let mut link = Link::new(800_000.0);
        run(&mut est, &mut link, 10.0);
        link.link_bps = 5_000_000.0;
        let targets = run(&mut est, &mut link, 10.0);
        let back = targets.iter().position(|t| *t >= 900_000.0);
        assert!(
            back.is_some_and(|i| i <= 60),
            "back within 6 s: {targets:?}"
        );
    }

    #[test]
    fn heavy_loss_cuts_the_estimate_and_it_stays_in_bounds() {
        let mut est = QueueDelayEstimator::new(1_000_000.0, 150_000.0, 1_000_000.0);
        let mut link = Link::new(5_000_000.0);
        for _ in 0..30 {
            let (now, mut reports) = link.send(est.target_bitrate());
            for r in reports.iter_mut().step_by(3) {
                r.arrived = false;
                r.arrival = None;
            }
            est.on_reports(now, &reports);
        }
        let cut = est.target_bitrate();
        assert!(
            (150_000.0..400_000.0).contains(&cut),
            "a third lost for 3 s left {cut:.0} bit/s"
        );
        for _ in 0..50 {
            let (now, mut reports) = link.send(est.target_bitrate());
            for r in reports.iter_mut() {
                r.arrived = false;
                r.arrival = None;
            }
            est.on_reports(now, &reports);
        }
        assert_eq!(est.target_bitrate(), 150_000.0, "never below the floor");
        est.on_reports(Instant::now(), &[]);
        assert_eq!(
            est.target_bitrate(),
            150_000.0,
            "an empty report is no news"
        );
    }
}

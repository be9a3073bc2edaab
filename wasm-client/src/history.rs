//! The last minute of the page's figures (latency, round trip, bitrate), one sample a
//! stats period, for the overlay's small plots. Pure: the reducer pushes, the plots
//! read.

use std::collections::VecDeque;

/// Samples kept: a minute at the default one-second stats period.
pub const SAMPLES: usize = 60;

/// One figure's recent values; a missing sample is `None` (a gap in the plot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series(VecDeque<Option<f64>>);

impl Series {
    /// Adds a sample, dropping the oldest past [`SAMPLES`].
    pub fn push(&mut self, value: Option<f64>) {
        if self.0.len() == SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(value.filter(|v| v.is_finite()));
    }

    /// The samples, oldest first.
    pub fn values(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.0.iter().copied()
    }

    /// The latest sample.
    pub fn last(&self) -> Option<f64> {
        self.0.back().copied().flatten()
    }

    /// The largest sample.
    pub fn max(&self) -> Option<f64> {
        self.values().flatten().reduce(f64::max)
    }

    /// An SVG polyline's `points` for a `w`x`h` box, in whole units (integers keep
    /// float formatting out of the wasm bundle): samples left to right across
    /// [`SAMPLES`] places (the newest at the right), 0 at the bottom and the larger
    /// of `floor` and the largest sample at the top. Gaps split it into runs, one
    /// string each.
    pub fn polylines(&self, w: f64, h: f64, floor: f64) -> Vec<String> {
        let top = self.max().unwrap_or(0.0).max(floor).max(f64::MIN_POSITIVE);
        let step = w / (SAMPLES - 1) as f64;
        let offset = SAMPLES - self.0.len();
        let mut runs = Vec::new();
        let mut run = Vec::new();
        for (i, value) in self.values().enumerate() {
            match value {
                Some(v) => {
                    let x = (offset + i) as f64 * step;
                    let y = h - (crate::util::clamp(v, 0.0, top) / top) * h;
                    run.push(format!("{},{}", x.round() as i64, y.round() as i64));
                }
                None if !run.is_empty() => runs.push(std::mem::take(&mut run).join(" ")),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run.join(" "));
        }
        runs
    }
}

/// The figures the overlay plots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Glass-to-glass latency, ms.
    pub latency_ms: Series,
    /// Ping round trip, ms.
    pub rtt_ms: Series,
    /// Received video bitrate, kbit/s.
    pub kbps: Series,
}

impl History {
    /// One sample of each.
    pub fn push(&mut self, latency_ms: Option<f64>, rtt_ms: Option<f64>, kbps: Option<f64>) {
        self.latency_ms.push(latency_ms);
        self.rtt_ms.push(rtt_ms);
        self.kbps.push(kbps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_keeps_a_minute_and_plots_it_right_aligned() {
        let mut s = Series::default();
        for i in 0..70 {
            s.push(Some(f64::from(i)));
        }
        assert_eq!(s.values().count(), SAMPLES);
        assert_eq!((s.last(), s.max()), (Some(69.0), Some(69.0)));
        let lines = s.polylines(590.0, 100.0, 1.0);
        assert_eq!(lines.len(), 1);
        let points: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(points.len(), SAMPLES);
        assert_eq!(points[0], "0,86", "the oldest kept, 10, at the left");
        assert_eq!(
            points[59], "590,0",
            "the newest, the largest, at the top right"
        );
    }

    #[test]
    fn gaps_split_the_line_and_a_young_series_starts_at_the_right() {
        let mut s = Series::default();
        s.push(Some(5.0));
        s.push(None);
        s.push(Some(f64::NAN));
        s.push(Some(10.0));
        let lines = s.polylines(590.0, 100.0, 20.0);
        assert_eq!(lines, vec!["560,75".to_owned(), "590,50".to_owned()]);
        assert!(Series::default().polylines(590.0, 100.0, 1.0).is_empty());
    }
}

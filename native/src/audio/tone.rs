//! The test tone and the arithmetic that finds it again: pure, no I/O.
//!
//! The tone is [`TONE_HZ`] in bursts of [`BURST_US`] that start at every wall-clock
//! multiple of [`BURST_PERIOD_US`], silence between them. A sample's value depends
//! only on its wall-clock time, so a receiver on the same clock (or a synchronised
//! one) knows when each burst was sent without any stamp in the signal: a burst whose
//! onset it hears at `t` was sent at `t` rounded down to [`BURST_PERIOD_US`]
//! ([`burst_latency_us`]), which holds while the latency stays under the period. The
//! video test pattern's painted stamp plays the same part for frames.
//!
//! [`goertzel_power`] measures one frequency in a block (a receiver checks that what
//! it hears is the tone, or a browser's), [`dominant_hz`] the loudest of a few, and
//! [`onset`] finds where a burst starts in a block.

/// The tone's frequency, Hz.
pub const TONE_HZ: f64 = 1000.0;
/// A burst's length, microseconds.
pub const BURST_US: u64 = 100_000;
/// Bursts start at every multiple of this, microseconds of wall-clock time.
pub const BURST_PERIOD_US: u64 = 500_000;
/// The tone's amplitude (of full scale).
pub const AMPLITUDE: f64 = 0.4;

/// The tone's sample at wall-clock time `wall_us`, microseconds since the Unix epoch.
pub fn sample_at(wall_us: u64) -> i16 {
    if wall_us % BURST_PERIOD_US >= BURST_US {
        return 0;
    }
    // The phase counts from the burst's start, so every burst begins at zero.
    let t = (wall_us % BURST_PERIOD_US) as f64 / 1e6;
    let v = (2.0 * std::f64::consts::PI * TONE_HZ * t).sin() * AMPLITUDE;
    (v * f64::from(i16::MAX)) as i16
}

/// Fills `out` with the tone from wall-clock time `start_us` on, at `rate` Hz.
pub fn fill(out: &mut [i16], start_us: u64, rate: u32) {
    for (i, s) in out.iter_mut().enumerate() {
        let offset = i as u64 * 1_000_000 / u64::from(rate);
        *s = sample_at(start_us + offset);
    }
}

/// The power of `hz` in `samples` at `rate` Hz (Goertzel), normalised by the block
/// length: a full-scale sine gives about 0.25, silence 0.
pub fn goertzel_power(samples: &[i16], hz: f64, rate: u32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / f64::from(i16::MAX) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f64 * samples.len() as f64)
}

/// Of `candidates`, the frequency with the most power in `samples`, and its power.
pub fn dominant_hz(samples: &[i16], candidates: &[f64], rate: u32) -> Option<(f64, f64)> {
    candidates
        .iter()
        .map(|&hz| (hz, goertzel_power(samples, hz, rate)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The mean square of `samples`, of full scale (a full-scale sine: 0.5).
pub fn mean_square(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let v = f64::from(s) / f64::from(i16::MAX);
            v * v
        })
        .sum();
    sum / samples.len() as f64
}

/// Samples per window when looking for an onset (2.5 ms at 48 kHz).
const ONSET_WINDOW: usize = 120;
/// The mean square above which a window counts as sound (the tone gives ~0.08).
const SOUND: f64 = 0.005;

/// Where sound starts in `samples`, given whether the samples just before them were
/// silent: the index of the first loud window after a quiet one, to [`ONSET_WINDOW`]
/// samples; `None` when no burst starts in this block. Also returns whether the block
/// ends in sound, to pass as `quiet_before == !that` for the next block.
pub fn onset(samples: &[i16], quiet_before: bool) -> (Option<usize>, bool) {
    let mut quiet = quiet_before;
    let mut found = None;
    for (i, window) in samples.chunks(ONSET_WINDOW).enumerate() {
        let loud = mean_square(window) > SOUND;
        if loud && quiet && found.is_none() {
            found = Some(i * ONSET_WINDOW);
        }
        quiet = !loud;
    }
    (found, !quiet)
}

/// The latency of a burst whose onset was heard at wall-clock `heard_us`: the time
/// since the burst period began (valid while latency is under [`BURST_PERIOD_US`]).
pub fn burst_latency_us(heard_us: u64) -> u64 {
    heard_us % BURST_PERIOD_US
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;

    #[test]
    fn bursts_start_at_period_multiples_and_are_the_tone() {
        let start = 1_700_000_000_000_000u64; // a multiple of the period
        let mut block = vec![0i16; 4800]; // 100 ms
        fill(&mut block, start, RATE);
        let tone = goertzel_power(&block, TONE_HZ, RATE);
        assert!(tone > 0.03, "tone power {tone}");
        assert!(goertzel_power(&block, 660.0, RATE) < tone / 100.0);
        assert_eq!(
            dominant_hz(&block, &[440.0, 660.0, 1000.0], RATE)
                .unwrap()
                .0,
            TONE_HZ
        );
        // Between bursts: silence.
        fill(&mut block, start + BURST_US, RATE);
        assert!(block.iter().all(|&s| s == 0));
    }

    #[test]
    fn an_onset_is_found_where_the_burst_starts() {
        let period_start = 1_700_000_000_000_000u64;
        // A 20 ms block that starts 10 ms before a burst.
        let mut block = vec![0i16; 960];
        fill(&mut block, period_start - 10_000, RATE);
        let (at, loud_at_end) = onset(&block, true);
        assert_eq!(at, Some(480));
        assert!(loud_at_end);
        // The next block continues the burst: no new onset.
        fill(&mut block, period_start + 10_000, RATE);
        assert_eq!(onset(&block, !loud_at_end).0, None);
        // Silence has none.
        assert_eq!(onset(&[0; 960], true), (None, false));
        assert_eq!(burst_latency_us(period_start + 37_000), 37_000);
    }

    #[test]
    fn empty_input_is_harmless() {
        assert_eq!(goertzel_power(&[], 1000.0, RATE), 0.0);
        assert_eq!(mean_square(&[]), 0.0);
        assert_eq!(dominant_hz(&[], &[], RATE), None);
    }
}

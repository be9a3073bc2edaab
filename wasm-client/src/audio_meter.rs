//! Audio level meters: how loud a `MediaStream` is and which frequency dominates it.
//! No UI framework.
//!
//! [`Meter`] taps a stream with a WebAudio `AnalyserNode` (no output: it plays
//! nothing) and [`Meter::read`] takes one window of samples and its spectrum. The
//! arithmetic is pure and tested natively: [`rms`] of the samples, [`level`] (the
//! RMS on a -60..0 dBFS scale as a 0..1 bar) and [`dominant_frequency`] (the loudest
//! bin of the spectrum, refined between bins), reported only when the window is not
//! silence ([`SILENCE_RMS`]).

#[cfg(target_arch = "wasm32")]
pub use browser::Meter;

/// RMS below which a window is silence (about -46 dBFS): no frequency is read from it.
pub const SILENCE_RMS: f64 = 0.005;
/// The quietest level the bar shows, dBFS.
pub const FLOOR_DB: f64 = -60.0;

/// One reading of a meter.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// Loudness as a bar, 0 (silence, [`FLOOR_DB`] or less) to 1 (full scale).
    pub level: f64,
    /// The dominant frequency in Hz, when the window is not silence.
    pub hz: Option<f64>,
}

impl Reading {
    /// The reading of a window of `samples` (-1..1) and its `spectrum` (dB per bin,
    /// `samples.len() / 2` bins up to Nyquist) at `sample_rate`.
    pub fn of(samples: &[f32], spectrum_db: &[f32], sample_rate: f64) -> Self {
        let rms = rms(samples);
        Self {
            level: level(rms),
            hz: (rms >= SILENCE_RMS)
                .then(|| dominant_frequency(spectrum_db, sample_rate))
                .flatten(),
        }
    }
}

/// Root mean square of `samples`; 0 for none.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let s = if s.is_finite() { f64::from(s) } else { 0.0 };
            s * s
        })
        .sum();
    (sum / samples.len() as f64).sqrt()
}

/// An RMS as a bar from 0 ([`FLOOR_DB`] or quieter) to 1 (0 dBFS or louder).
pub fn level(rms: f64) -> f64 {
    if rms.is_nan() || rms <= 0.0 {
        return 0.0;
    }
    let db = 20.0 * rms.log10();
    crate::util::clamp((db - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0)
}

/// The frequency of the loudest bin of `spectrum_db` (the analyser's bins, from 0 Hz
/// up to Nyquist, `sample_rate / 2`), refined by a parabola through it and its
/// neighbours. `None` for an empty spectrum or one without a finite value.
pub fn dominant_frequency(spectrum_db: &[f32], sample_rate: f64) -> Option<f64> {
    let bins = spectrum_db.len();
    if bins < 2 || sample_rate.is_nan() || sample_rate <= 0.0 {
        return None;
    }
    // Bin 0 is DC: never the tone.
    let (peak, _) = spectrum_db
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let bin_hz = sample_rate / 2.0 / bins as f64;
    let at = |i: usize| f64::from(spectrum_db[i]);
    let mut offset = 0.0;
    if peak + 1 < bins && spectrum_db[peak - 1].is_finite() && spectrum_db[peak + 1].is_finite() {
        let (a, b, c) = (at(peak - 1), at(peak), at(peak + 1));
        let denominator = a - 2.0 * b + c;
        if denominator.abs() > f64::EPSILON {
            offset = crate::util::clamp(0.5 * (a - c) / denominator, -0.5, 0.5);
        }
    }
    Some((peak as f64 + offset) * bin_hz)
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::Reading;
    use crate::util::js_error;
    use std::cell::RefCell;
    use web_sys::{AnalyserNode, AudioContext, MediaStream, MediaStreamAudioSourceNode};

    /// Samples per window: about 43 ms at 48 kHz, bins of 23 Hz.
    const FFT_SIZE: u32 = 2048;

    /// An analyser on one stream (see the module doc).
    pub struct Meter {
        source: MediaStreamAudioSourceNode,
        analyser: AnalyserNode,
        sample_rate: f64,
        samples: RefCell<Vec<f32>>,
        spectrum: RefCell<Vec<f32>>,
    }

    impl Meter {
        /// Taps `stream` (which must have an audio track) in `context`.
        pub fn new(context: &AudioContext, stream: &MediaStream) -> Result<Self, String> {
            let source = context
                .create_media_stream_source(stream)
                .map_err(|e| js_error(&e))?;
            let analyser = context.create_analyser().map_err(|e| js_error(&e))?;
            analyser.set_fft_size(FFT_SIZE);
            // Each reading is its own window: the tone's bursts are not smeared.
            analyser.set_smoothing_time_constant(0.0);
            source
                .connect_with_audio_node(&analyser)
                .map_err(|e| js_error(&e))?;
            Ok(Self {
                source,
                analyser,
                sample_rate: f64::from(context.sample_rate()),
                samples: RefCell::new(vec![0.0; FFT_SIZE as usize]),
                spectrum: RefCell::new(vec![0.0; FFT_SIZE as usize / 2]),
            })
        }

        /// The newest window's reading.
        pub fn read(&self) -> Reading {
            let mut samples = self.samples.borrow_mut();
            let mut spectrum = self.spectrum.borrow_mut();
            self.analyser.get_float_time_domain_data(&mut samples);
            self.analyser.get_float_frequency_data(&mut spectrum);
            Reading::of(&samples, &spectrum, self.sample_rate)
        }
    }

    impl Drop for Meter {
        fn drop(&mut self) {
            let _ = self.source.disconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: f64 = 48_000.0;
    const N: usize = 2048;

    fn sine(hz: f64, amplitude: f64) -> Vec<f32> {
        (0..N)
            .map(|i| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / RATE).sin()) as f32)
            .collect()
    }

    /// The analyser's spectrum: a Blackman window, then |DFT| in dB, N/2 bins.
    fn spectrum(samples: &[f32]) -> Vec<f32> {
        let n = samples.len() as f64;
        let windowed: Vec<f64> = samples
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / n;
                f64::from(s) * (0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos())
            })
            .collect();
        (0..samples.len() / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, s) in windowed.iter().enumerate() {
                    let phase = 2.0 * std::f64::consts::PI * (k * i) as f64 / n;
                    re += s * phase.cos();
                    im -= s * phase.sin();
                }
                (20.0 * ((re * re + im * im).sqrt() / n).max(1e-12).log10()) as f32
            })
            .collect()
    }

    #[test]
    fn rms_of_a_sine_is_its_amplitude_over_root_two() {
        let s = sine(1000.0, 0.5);
        assert!((rms(&s) - 0.5 / 2f64.sqrt()).abs() < 0.005);
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(
            rms(&[f32::NAN, f32::INFINITY]),
            0.0,
            "bad samples count as silence"
        );
    }

    #[test]
    fn the_level_bar_spans_sixty_decibels() {
        assert_eq!(level(0.0), 0.0);
        assert_eq!(level(f64::NAN), 0.0);
        assert_eq!(level(1.0), 1.0);
        assert_eq!(level(4.0), 1.0);
        assert!((level(0.001) - 0.0).abs() < 1e-9, "-60 dBFS");
        assert!((level(0.1) - 2.0 / 3.0).abs() < 1e-9, "-20 dBFS");
    }

    #[test]
    fn the_dominant_frequency_is_found_between_bins() {
        for hz in [440.0, 660.0, 1000.0, 3210.0] {
            let s = sine(hz, 0.3);
            let found = dominant_frequency(&spectrum(&s), RATE).unwrap();
            assert!((found - hz).abs() < 6.0, "{hz} Hz read as {found}");
        }
    }

    #[test]
    fn silence_and_bad_spectra_have_no_frequency() {
        let quiet = vec![0.0f32; N];
        assert_eq!(Reading::of(&quiet, &spectrum(&quiet), RATE).hz, None);
        assert_eq!(dominant_frequency(&[], RATE), None);
        assert_eq!(dominant_frequency(&[f32::NEG_INFINITY; 8], RATE), None);
        assert_eq!(dominant_frequency(&[1.0, 2.0], 0.0), None);
        let loud = sine(1000.0, 0.3);
        let reading = Reading::of(&loud, &spectrum(&loud), RATE);
        assert!(
            (reading.level - 0.775).abs() < 0.01,
            "-13.5 dBFS: {}",
            reading.level
        );
        assert!((reading.hz.unwrap() - 1000.0).abs() < 6.0);
    }
}

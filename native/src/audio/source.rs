//! Where the robot's sound comes from: one 20 ms block of 48 kHz mono at a time.
//!
//! [`AudioSource`] is the trait (yours too: a robot program can hand
//! `RobotBuilder::audio` any source); the
//! built-in ones are [`ToneSource`] (the test tone, [`super::tone`]), [`WavSource`]
//! (a WAV file, looped) and the ALSA capture device (`super::alsa`). Sources that are
//! not a device pace themselves on the clock, as a sound card would.

use super::config::AudioSourceSpec;
use super::{AudioError, FRAME_SAMPLES, SAMPLE_RATE};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One block of sound as captured.
#[derive(Debug, Clone)]
pub struct AudioBlock {
    /// [`FRAME_SAMPLES`] samples of 48 kHz mono.
    pub samples: Vec<i16>,
    /// When its last sample was captured.
    pub captured: Instant,
    /// Its first sample's wall-clock time, microseconds since the Unix epoch.
    pub wall_us: u64,
}

/// A sound source: blocks of [`FRAME_SAMPLES`] samples of 48 kHz mono, each
/// returned once captured (a call blocks until then).
pub trait AudioSource: Send {
    /// What it is, for logs and `/health`, e.g. `tone` or `alsa:hw:1,0`.
    fn name(&self) -> String;
    /// The next block; an error says why, for a person (the stream logs it and
    /// tries again, then gives up).
    fn read(&mut self) -> Result<AudioBlock, AudioError>;
    /// Called when listeners come back after none: a device drops what it buffered
    /// meanwhile, a paced source restarts its clock.
    fn resume(&mut self) {}
}

/// Paces blocks on the clock: block `n` is ready `(n + 1) × 20 ms` after the start.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    start_wall_us: u64,
    blocks: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    /// A pacer starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            start_wall_us: crate::video::now_us(),
            blocks: 0,
        }
    }

    /// Waits until the next block is due; returns its first sample's wall-clock time
    /// and when it was due (its last sample's capture).
    pub fn wait(&mut self) -> (u64, Instant) {
        let offset_us = self.blocks * FRAME_US;
        self.blocks += 1;
        let due = self.start + Duration::from_micros(offset_us + FRAME_US);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        (self.start_wall_us + offset_us, due)
    }
}

/// A block's length, microseconds.
pub const FRAME_US: u64 = FRAME_SAMPLES as u64 * 1_000_000 / SAMPLE_RATE as u64;

/// The test tone, paced on the clock (see [`super::tone`]).
#[derive(Debug, Default)]
pub struct ToneSource {
    pacer: Pacer,
}

impl AudioSource for ToneSource {
    fn name(&self) -> String {
        "tone".into()
    }

    fn read(&mut self) -> Result<AudioBlock, AudioError> {
        let (wall_us, captured) = self.pacer.wait();
        let mut samples = vec![0; FRAME_SAMPLES];
        super::tone::fill(&mut samples, wall_us, SAMPLE_RATE);
        Ok(AudioBlock {
            samples,
            captured,
            wall_us,
        })
    }

    fn resume(&mut self) {
        self.pacer = Pacer::new();
    }
}

/// A WAV file (48 kHz, 16-bit integer, mono or stereo mixed down), read whole at
/// open and looped, paced on the clock.
#[derive(Debug)]
pub struct WavSource {
    path: PathBuf,
    samples: Vec<i16>,
    position: usize,
    pacer: Pacer,
}

/// The longest WAV file a source reads (10 minutes of 48 kHz stereo, 110 MB).
pub const MAX_WAV_SAMPLES: u64 = 600 * SAMPLE_RATE as u64 * 2;

impl WavSource {
    /// Opens and reads `path`, refusing a format it cannot play with why.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let what = |e: String| AudioError::File(format!("{}: {e}", path.display()));
        let reader = hound::WavReader::open(path).map_err(|e| what(e.to_string()))?;
        let spec = reader.spec();
        if spec.sample_rate != SAMPLE_RATE {
            return Err(what(format!(
                "the sample rate is {} Hz: the robot needs {SAMPLE_RATE} Hz (convert it, e.g. \
                 ffmpeg -i in.wav -ar 48000 -ac 1 -c:a pcm_s16le out.wav)",
                spec.sample_rate
            )));
        }
        if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
            return Err(what(format!(
                "the samples are {}-bit {:?}: the robot needs 16-bit integers (pcm_s16le)",
                spec.bits_per_sample, spec.sample_format
            )));
        }
        if !(1..=2).contains(&spec.channels) {
            return Err(what(format!(
                "{} channels: the robot reads mono or stereo",
                spec.channels
            )));
        }
        if u64::from(reader.len()) > MAX_WAV_SAMPLES {
            return Err(what("longer than 10 minutes".into()));
        }
        let channels = usize::from(spec.channels);
        let raw: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(|e| what(e.to_string()))?;
        let samples: Vec<i16> = raw
            .chunks_exact(channels)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
            .collect();
        if samples.len() < FRAME_SAMPLES {
            return Err(what("shorter than one 20 ms block".into()));
        }
        Ok(Self {
            path: path.to_owned(),
            samples,
            position: 0,
            pacer: Pacer::new(),
        })
    }
}

impl AudioSource for WavSource {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn read(&mut self) -> Result<AudioBlock, AudioError> {
        let (wall_us, captured) = self.pacer.wait();
        let mut samples = Vec::with_capacity(FRAME_SAMPLES);
        while samples.len() < FRAME_SAMPLES {
            let end = (self.position + FRAME_SAMPLES - samples.len()).min(self.samples.len());
            samples.extend_from_slice(&self.samples[self.position..end]);
            self.position = if end == self.samples.len() { 0 } else { end };
        }
        Ok(AudioBlock {
            samples,
            captured,
            wall_us,
        })
    }

    fn resume(&mut self) {
        self.pacer = Pacer::new();
    }
}

/// Opens the source `spec` names; `Ok(None)` for `none`, and for `auto` on a machine
/// without a capture device (or whose first one does not open: logged).
pub fn open(spec: &AudioSourceSpec) -> Result<Option<Box<dyn AudioSource>>, AudioError> {
    match spec {
        AudioSourceSpec::None => Ok(None),
        AudioSourceSpec::Tone => Ok(Some(Box::new(ToneSource::default()))),
        AudioSourceSpec::File(path) => Ok(Some(Box::new(WavSource::open(path)?))),
        AudioSourceSpec::Alsa(device) => super::alsa::open_capture(device).map(Some),
        AudioSourceSpec::Auto => Ok(super::alsa::open_auto(
            super::alsa::Direction::Capture,
            super::alsa::open_capture,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, channels: u16, bits: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            if bits == 16 {
                w.write_sample(s).unwrap();
            } else {
                w.write_sample(i32::from(s)).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn a_wav_file_loops_and_stereo_is_mixed_down() {
        let dir = std::env::temp_dir().join(format!("rtcbot-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        // 1.5 blocks of stereo: left 100, right 300.
        let frames = FRAME_SAMPLES * 3 / 2;
        let samples: Vec<i16> = (0..frames).flat_map(|_| [100, 300]).collect();
        write_wav(&path, SAMPLE_RATE, 2, 16, &samples);
        let mut source = WavSource::open(&path).unwrap();
        for _ in 0..3 {
            let block = source.read().unwrap();
            assert_eq!(block.samples.len(), FRAME_SAMPLES);
            assert!(block.samples.iter().all(|&s| s == 200));
        }
        assert!(source.name().starts_with("file:"));
    }

    #[test]
    fn wav_files_of_the_wrong_format_are_refused_with_why() {
        let dir = std::env::temp_dir().join(format!("rtcbot-badwav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, u32, u16, u16, usize, &str); 4] = [
            ("rate.wav", 44_100, 1, 16, 2000, "44100 Hz"),
            ("bits.wav", SAMPLE_RATE, 1, 24, 2000, "16-bit"),
            ("short.wav", SAMPLE_RATE, 1, 16, 10, "shorter"),
            ("channels.wav", SAMPLE_RATE, 3, 16, 3000, "3 channels"),
        ];
        for (name, rate, channels, bits, n, why) in cases {
            let path = dir.join(name);
            write_wav(&path, rate, channels, bits, &vec![0; n]);
            let err = WavSource::open(&path).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
        let garbage = dir.join("garbage.wav");
        std::fs::write(&garbage, b"RIFF\x00\x00not a wav at all").unwrap();
        assert!(WavSource::open(&garbage).is_err());
        assert!(WavSource::open(&dir.join("missing.wav")).is_err());
    }

    #[test]
    fn the_tone_is_paced_on_the_clock() {
        let mut tone = ToneSource::default();
        let first = tone.read().unwrap();
        let second = tone.read().unwrap();
        assert_eq!(second.wall_us - first.wall_us, FRAME_US);
        assert!(second.captured >= first.captured + Duration::from_millis(20));
        assert!(Instant::now() >= second.captured);
    }
}

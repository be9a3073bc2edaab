//! Where browsers' sound goes: a speaker (ALSA, `super::alsa`), a WAV file
//! ([`WavSink`]), or yours ([`AudioSink`]).

use super::config::AudioSinkSpec;
use super::{AudioError, SAMPLE_RATE};
use std::path::{Path, PathBuf};

/// Somewhere to play 48 kHz mono sound. `write` may block for as long as the
/// samples take to play (a device); the robot calls it on a thread of its own.
pub trait AudioSink: Send {
    /// What it is, for logs and `/health`.
    fn name(&self) -> String;
    /// Plays (or stores) `samples`.
    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError>;
}

/// Blocks between header updates of a [`WavSink`]: every 200 ms of sound the file is
/// a complete WAV that any reader can open.
const WAV_FLUSH_BLOCKS: u32 = 10;

/// A WAV file, 48 kHz mono 16-bit, created (or emptied) when opened.
pub struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    unflushed: u32,
}

impl WavSink {
    /// Creates `path`.
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec)
            .map_err(|e| AudioError::File(format!("{}: {e}", path.display())))?;
        writer
            .flush()
            .map_err(|e| AudioError::File(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            writer,
            unflushed: 0,
        })
    }
}

impl AudioSink for WavSink {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
        let fail = |e: hound::Error| AudioError::File(format!("{}: {e}", self.path.display()));
        for &s in samples {
            self.writer.write_sample(s).map_err(fail)?;
        }
        self.unflushed += 1;
        if self.unflushed >= WAV_FLUSH_BLOCKS {
            self.unflushed = 0;
            self.writer.flush().map_err(fail)?;
        }
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        let _ = self.writer.flush();
    }
}

/// Opens the sink `spec` names; `Ok(None)` for `none`, and for `auto` on a machine
/// without a playback device (or whose first one does not open: logged).
pub fn open(spec: &AudioSinkSpec) -> Result<Option<Box<dyn AudioSink>>, AudioError> {
    match spec {
        AudioSinkSpec::None => Ok(None),
        AudioSinkSpec::File(path) => Ok(Some(Box::new(WavSink::create(path)?))),
        AudioSinkSpec::Alsa(device) => super::alsa::open_playback(device).map(Some),
        AudioSinkSpec::Auto => Ok(super::alsa::open_auto(
            super::alsa::Direction::Playback,
            super::alsa::open_playback,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_sink_is_readable_while_it_is_written() {
        let dir = std::env::temp_dir().join(format!("rtcbot-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.wav");
        let mut sink = WavSink::create(&path).unwrap();
        for i in 0..WAV_FLUSH_BLOCKS {
            sink.write(&[i as i16; 960]).unwrap();
        }
        // Still open: the header already counts what was written.
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, SAMPLE_RATE);
        assert_eq!(reader.len(), 960 * WAV_FLUSH_BLOCKS);
        drop(sink);
        let err = WavSink::create(&dir.join("no/such/dir/x.wav"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
}

//! ALSA capture and playback (the `alsa` crate, over the system's libasound), and
//! which device `auto` means.
//!
//! Devices open at 48 kHz, mono, 16-bit, 20 ms periods; use a `plughw:` name (what
//! `auto` picks) when the card itself cannot do that, and ALSA converts. A device
//! that is missing or busy fails to open with ALSA's reason and the device's name; an
//! overrun or underrun is recovered from and counted, not fatal.
//!
//! `auto` takes the first device of `/proc/asound/pcm` that can capture (or play):
//! [`first_device`] over the pure [`parse_proc_pcm`]. Built without the `alsa`
//! feature, opening a device says so.

use super::sink::AudioSink;
use super::source::AudioSource;
use super::AudioError;

/// Capture or playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A microphone.
    Capture,
    /// A speaker.
    Playback,
}

/// The first device in `/proc/asound/pcm`'s `text` that can go `direction`, as a
/// `plughw:CARD,DEVICE` name; lines look like
/// `00-01: Loopback PCM : Loopback PCM : playback 8 : capture 8`.
pub fn parse_proc_pcm(text: &str, direction: Direction) -> Option<String> {
    let wanted = match direction {
        Direction::Capture => "capture",
        Direction::Playback => "playback",
    };
    text.lines().find_map(|line| {
        let (id, rest) = line.split_once(':')?;
        let (card, device) = id.trim().split_once('-')?;
        let (card, device) = (card.parse::<u32>().ok()?, device.parse::<u32>().ok()?);
        rest.split(':')
            .any(|field| field.trim().starts_with(wanted))
            .then(|| format!("plughw:{card},{device}"))
    })
}

/// The first ALSA device of this machine that can go `direction`; `None` without
/// one (or without `/proc/asound`).
pub fn first_device(direction: Direction) -> Option<String> {
    let text = std::fs::read_to_string("/proc/asound/pcm").ok()?;
    parse_proc_pcm(&text, direction)
}

/// What `auto` means: the first device that can go `direction`, opened with `open`;
/// `None` without one, or when it does not open (logged: a card that is there but
/// busy or odd is no reason for the robot not to start).
pub fn open_auto<T>(
    direction: Direction,
    open: impl FnOnce(&str) -> Result<T, AudioError>,
) -> Option<T> {
    let device = first_device(direction)?;
    match open(&device) {
        Ok(opened) => Some(opened),
        Err(err) => {
            tracing::warn!(
                "audio: auto found {device} but it does not open ({err}); going without"
            );
            None
        }
    }
}

#[cfg(feature = "alsa")]
mod device {
    use super::super::sink::AudioSink;
    use super::super::source::{AudioBlock, AudioSource};
    use super::super::{AudioError, FRAME_SAMPLES, SAMPLE_RATE};
    use alsa::pcm::{Access, Format, HwParams, PCM};
    use alsa::ValueOr;
    use std::time::Instant;

    fn open(device: &str, direction: alsa::Direction) -> Result<PCM, AudioError> {
        let what = match direction {
            alsa::Direction::Capture => "capture",
            alsa::Direction::Playback => "playback",
        };
        let fail = |step: &str, e: alsa::Error| {
            AudioError::Device(format!("ALSA {what} device {device:?}: {step}: {e}"))
        };
        let pcm = PCM::new(device, direction, false).map_err(|e| fail("cannot open it", e))?;
        {
            let hw = HwParams::any(&pcm).map_err(|e| fail("reading its parameters", e))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(|e| fail("interleaved access", e))?;
            hw.set_format(Format::s16())
                .map_err(|e| fail("16-bit samples (try a plughw: device)", e))?;
            hw.set_channels(1)
                .map_err(|e| fail("one channel (try a plughw: device)", e))?;
            hw.set_rate(SAMPLE_RATE, ValueOr::Nearest)
                .map_err(|e| fail("48 kHz", e))?;
            hw.set_period_size_near(FRAME_SAMPLES as alsa::pcm::Frames, ValueOr::Nearest)
                .map_err(|e| fail("20 ms periods", e))?;
            hw.set_buffer_size_near(4 * FRAME_SAMPLES as alsa::pcm::Frames)
                .map_err(|e| fail("the buffer size", e))?;
            pcm.hw_params(&hw)
                .map_err(|e| fail("applying its parameters", e))?;
            let rate = hw.get_rate().map_err(|e| fail("reading its rate", e))?;
            if rate != SAMPLE_RATE {
                return Err(AudioError::Device(format!(
                    "ALSA {what} device {device:?} runs at {rate} Hz, not {SAMPLE_RATE}: use \
                     plughw: to convert"
                )));
            }
        }
        pcm.prepare().map_err(|e| fail("preparing it", e))?;
        Ok(pcm)
    }

    /// Recovers `pcm` from an over- or underrun so the next call goes on; anything
    /// else starts the device over for the next call and is the error.
    fn recover(pcm: &PCM, err: alsa::Error, what: &str, device: &str) -> Result<(), AudioError> {
        pcm.try_recover(err, true).map_err(|e| {
            let _ = pcm.drop();
            let _ = pcm.prepare();
            AudioError::Device(format!("ALSA {what} {device}: {e}"))
        })
    }

    /// An ALSA capture device.
    pub struct Capture {
        device: String,
        pcm: PCM,
        /// Overruns recovered from.
        pub overruns: u64,
    }

    impl Capture {
        pub fn open(device: &str) -> Result<Self, AudioError> {
            let pcm = open(device, alsa::Direction::Capture)?;
            Ok(Self {
                device: device.to_owned(),
                pcm,
                overruns: 0,
            })
        }
    }

    impl AudioSource for Capture {
        fn name(&self) -> String {
            format!("alsa:{}", self.device)
        }

        fn read(&mut self) -> Result<AudioBlock, AudioError> {
            let mut samples = vec![0i16; FRAME_SAMPLES];
            let mut filled = 0;
            while filled < FRAME_SAMPLES {
                let io = self
                    .pcm
                    .io_i16()
                    .map_err(|e| AudioError::Device(format!("ALSA {}: {e}", self.device)))?;
                match io.readi(&mut samples[filled..]) {
                    Ok(n) => filled += n,
                    Err(err) => {
                        // An overrun: the lost sound is gone.
                        self.overruns += 1;
                        recover(&self.pcm, err, "capture", &self.device)?;
                    }
                }
            }
            let captured = Instant::now();
            let wall_us = crate::video::now_us().saturating_sub(super::super::source::FRAME_US);
            Ok(AudioBlock {
                samples,
                captured,
                wall_us,
            })
        }

        fn resume(&mut self) {
            let _ = self.pcm.drop();
            let _ = self.pcm.prepare();
        }
    }

    /// An ALSA playback device.
    pub struct Playback {
        device: String,
        pcm: PCM,
        /// Underruns recovered from.
        pub underruns: u64,
    }

    impl Playback {
        pub fn open(device: &str) -> Result<Self, AudioError> {
            let pcm = open(device, alsa::Direction::Playback)?;
            Ok(Self {
                device: device.to_owned(),
                pcm,
                underruns: 0,
            })
        }
    }

    impl AudioSink for Playback {
        fn name(&self) -> String {
            format!("alsa:{}", self.device)
        }

        fn write(&mut self, samples: &[i16]) -> Result<(), AudioError> {
            let mut done = 0;
            while done < samples.len() {
                let io = self
                    .pcm
                    .io_i16()
                    .map_err(|e| AudioError::Device(format!("ALSA {}: {e}", self.device)))?;
                match io.writei(&samples[done..]) {
                    Ok(n) => done += n,
                    Err(err) => {
                        self.underruns += 1;
                        recover(&self.pcm, err, "playback", &self.device)?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Opens an ALSA capture device.
pub fn open_capture(device: &str) -> Result<Box<dyn AudioSource>, AudioError> {
    #[cfg(feature = "alsa")]
    {
        Ok(Box::new(device::Capture::open(device)?))
    }
    #[cfg(not(feature = "alsa"))]
    {
        Err(AudioError::Device(format!(
            "ALSA device {device:?}: this robot was built without the alsa feature"
        )))
    }
}

/// Opens an ALSA playback device.
pub fn open_playback(device: &str) -> Result<Box<dyn AudioSink>, AudioError> {
    #[cfg(feature = "alsa")]
    {
        Ok(Box::new(device::Playback::open(device)?))
    }
    #[cfg(not(feature = "alsa"))]
    {
        Err(AudioError::Device(format!(
            "ALSA device {device:?}: this robot was built without the alsa feature"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_capable_device_is_found_in_proc_asound_pcm() {
        let text = "00-00: HDMI 0 : HDMI 0 : playback 1\n\
                    01-00: USB Audio : USB Audio : playback 1 : capture 1\n\
                    02-01: Loopback PCM : Loopback PCM : playback 8 : capture 8\n";
        assert_eq!(
            parse_proc_pcm(text, Direction::Capture).as_deref(),
            Some("plughw:1,0")
        );
        assert_eq!(
            parse_proc_pcm(text, Direction::Playback).as_deref(),
            Some("plughw:0,0")
        );
        assert_eq!(parse_proc_pcm("", Direction::Capture), None);
        assert_eq!(
            parse_proc_pcm("garbage\n:::\nxx-yy: a : capture 1", Direction::Capture),
            None
        );
    }

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let err = open_capture("hw:97,0")
            .err()
            .expect("no card 97")
            .to_string();
        assert!(err.contains("hw:97,0"), "{err}");
        let err = open_playback("hw:97,0")
            .err()
            .expect("no card 97")
            .to_string();
        assert!(err.contains("hw:97,0"), "{err}");
    }
}

//! The `[audio]` settings: where the robot's sound comes from, where the browsers'
//! sound goes, and whose is played. Pure: parsing and display, no device is opened.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;

/// Where the audio the robot sends comes from (`--audio`, `[audio] source`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioSourceSpec {
    /// The first ALSA capture device; no audio when there is none.
    #[default]
    Auto,
    /// No audio.
    None,
    /// The built-in test tone: 1 kHz bursts of 100 ms starting at every wall-clock
    /// multiple of 500 ms, so a receiver on a synchronised clock reads each burst's
    /// send time from its onset (see [`super::tone`]).
    Tone,
    /// An ALSA capture device, e.g. `hw:1,0`, `plughw:CARD=Loopback,DEV=1`, `default`.
    Alsa(String),
    /// A WAV file (48 kHz, 16-bit, mono or stereo), looped.
    File(PathBuf),
}

/// Where the audio browsers send goes (`--speaker`, `[audio] speaker`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioSinkSpec {
    /// The first ALSA playback device; nowhere when there is none.
    #[default]
    Auto,
    /// Nowhere (a program can still subscribe to it).
    None,
    /// An ALSA playback device, e.g. `hw:1,0` or `default`.
    Alsa(String),
    /// A WAV file, 48 kHz mono 16-bit, rewritten from the start at each robot start;
    /// its header is kept up to date while it is written.
    File(PathBuf),
}

/// Whose audio the speaker plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayFrom {
    /// The driver's alone (another peer's would talk over it).
    #[default]
    Driver,
    /// Every peer's, mixed.
    Everyone,
}

impl std::str::FromStr for PlayFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "driver" => Ok(Self::Driver),
            "everyone" => Ok(Self::Everyone),
            _ => Err(format!("play-audio-from {s:?} must be driver or everyone")),
        }
    }
}

/// The audio settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// What the robot sends: `auto`, `none`, `tone`, `alsa:DEVICE`, `file:PATH.wav`.
    pub source: AudioSourceSpec,
    /// Where browsers' audio plays: `auto`, `none`, `alsa:DEVICE`, `file:PATH.wav`.
    pub speaker: AudioSinkSpec,
    /// Whose audio plays: `driver` (the default) or `everyone`.
    pub play_from: PlayFrom,
    /// The Opus bitrate of what the robot sends, kbit/s (6 to 510).
    pub bitrate_kbps: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            source: AudioSourceSpec::Auto,
            speaker: AudioSinkSpec::Auto,
            play_from: PlayFrom::Driver,
            bitrate_kbps: 32,
        }
    }
}

impl AudioConfig {
    /// Checks what parsing cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(6..=510).contains(&self.bitrate_kbps) {
            return Err(format!(
                "audio.bitrate_kbps must be 6 to 510 (Opus), not {}",
                self.bitrate_kbps
            ));
        }
        Ok(())
    }
}

fn device_or_path(kind: &str, s: &str) -> Result<Option<(bool, String)>, String> {
    if let Some(device) = s.strip_prefix("alsa:") {
        if device.is_empty() {
            return Err(format!(
                "{kind} alsa: needs a device, e.g. alsa:hw:1,0 or alsa:default"
            ));
        }
        return Ok(Some((true, device.to_owned())));
    }
    if let Some(path) = s.strip_prefix("file:") {
        if path.is_empty() {
            return Err(format!("{kind} file: needs a path, e.g. file:sound.wav"));
        }
        return Ok(Some((false, path.to_owned())));
    }
    Ok(None)
}

impl std::str::FromStr for AudioSourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => return Ok(Self::Auto),
            "none" => return Ok(Self::None),
            "tone" => return Ok(Self::Tone),
            _ => {}
        }
        match device_or_path("audio", s)? {
            Some((true, device)) => Ok(Self::Alsa(device)),
            Some((false, path)) => Ok(Self::File(path.into())),
            None => Err(format!(
                "audio source {s:?} must be auto, none, tone, alsa:DEVICE or file:PATH.wav"
            )),
        }
    }
}

impl std::str::FromStr for AudioSinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => return Ok(Self::Auto),
            "none" => return Ok(Self::None),
            _ => {}
        }
        match device_or_path("speaker", s)? {
            Some((true, device)) => Ok(Self::Alsa(device)),
            Some((false, path)) => Ok(Self::File(path.into())),
            None => Err(format!(
                "speaker {s:?} must be auto, none, alsa:DEVICE or file:PATH.wav"
            )),
        }
    }
}

impl std::fmt::Display for AudioSourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::Tone => f.write_str("tone"),
            Self::Alsa(d) => write!(f, "alsa:{d}"),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl std::fmt::Display for AudioSinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::Alsa(d) => write!(f, "alsa:{d}"),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

macro_rules! serde_by_str {
    ($ty:ty, $field:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|e| serde::de::Error::custom(format!("{}: {e}", $field)))
            }
        }
    };
}

serde_by_str!(AudioSourceSpec, "audio.source");
serde_by_str!(AudioSinkSpec, "audio.speaker");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for spec in ["auto", "none", "tone", "alsa:hw:1,0", "file:a.wav"] {
            assert_eq!(spec.parse::<AudioSourceSpec>().unwrap().to_string(), spec);
        }
        for spec in [
            "auto",
            "none",
            "alsa:plughw:CARD=Loopback,DEV=1",
            "file:/tmp/x.wav",
        ] {
            assert_eq!(spec.parse::<AudioSinkSpec>().unwrap().to_string(), spec);
        }
        assert!("mic"
            .parse::<AudioSourceSpec>()
            .unwrap_err()
            .contains("must be auto"));
        assert!("tone"
            .parse::<AudioSinkSpec>()
            .unwrap_err()
            .contains("must be auto"));
        assert!("alsa:"
            .parse::<AudioSourceSpec>()
            .unwrap_err()
            .contains("needs a device"));
        assert!("file:"
            .parse::<AudioSinkSpec>()
            .unwrap_err()
            .contains("needs a path"));
        assert!("all".parse::<PlayFrom>().is_err());
    }

    #[test]
    fn the_section_reads_from_toml_with_clear_errors() {
        let config: AudioConfig = toml::from_str(
            "source = \"tone\"\nspeaker = \"file:out.wav\"\nplay_from = \"everyone\"",
        )
        .unwrap();
        assert_eq!(config.source, AudioSourceSpec::Tone);
        assert_eq!(config.speaker, AudioSinkSpec::File("out.wav".into()));
        assert_eq!(config.play_from, PlayFrom::Everyone);
        let err = toml::from_str::<AudioConfig>("source = \"loud\"").unwrap_err();
        assert!(err.to_string().contains("audio.source"), "{err}");
        let bad = AudioConfig {
            bitrate_kbps: 1,
            ..AudioConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("6 to 510"));
    }
}

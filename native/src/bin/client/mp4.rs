//! The robot's H.264 into an MP4 file as it arrives, without re-encoding: access
//! units from the first keyframe on become length-prefixed samples (parameter sets
//! and delimiters go to the `avcC` box), timed by when they arrived.

use anyhow::{bail, Context};
use rtcbot::video::h264::{nal_type, split_nals, sps_size, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS};
use std::io::{Seek, Write};
use std::time::Instant;

/// The track's clock, ticks a second (RTP's video clock).
const TIMESCALE: u32 = 90_000;

/// One access unit as an MP4 sample: its slices and SEI length-prefixed, its
/// parameter sets and delimiters left out; whether it is a keyframe; and the SPS and
/// PPS it carried.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Length-prefixed (4 bytes, big-endian) NAL units.
    pub avcc: Vec<u8>,
    /// Holds an IDR slice.
    pub keyframe: bool,
    /// The unit's sequence parameter set, if it had one.
    pub sps: Option<Vec<u8>>,
    /// The unit's picture parameter set, if it had one.
    pub pps: Option<Vec<u8>>,
}

/// Splits an Annex B access unit into an MP4 [`Sample`].
pub fn to_sample(annexb: &[u8]) -> Sample {
    let mut sample = Sample::default();
    for nal in split_nals(annexb) {
        match nal_type(nal) {
            NAL_SPS => sample.sps = Some(nal.to_vec()),
            NAL_PPS => sample.pps = Some(nal.to_vec()),
            NAL_AUD => {}
            t => {
                sample.keyframe |= t == NAL_IDR;
                sample
                    .avcc
                    .extend_from_slice(&(nal.len() as u32).to_be_bytes());
                sample.avcc.extend_from_slice(nal);
            }
        }
    }
    sample
}

/// An MP4 file being written: one H.264 track.
pub struct Recorder<W: Write + Seek> {
    state: State<W>,
    /// The previous sample, written once the next one tells its duration.
    pending: Option<(Sample, Instant)>,
    start: Option<Instant>,
    /// Samples written.
    written: u32,
    /// The picture size from the SPS.
    size: (u32, u32),
}

enum State<W: Write + Seek> {
    /// No keyframe with parameter sets yet.
    Waiting(W),
    Writing(Box<mp4::Mp4Writer<W>>),
    Done,
}

impl<W: Write + Seek> Recorder<W> {
    /// A recorder that writes into `out` from the first keyframe on.
    pub fn new(out: W) -> Self {
        Self {
            state: State::Waiting(out),
            pending: None,
            start: None,
            written: 0,
            size: (0, 0),
        }
    }

    /// The picture size, once recording started.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Adds one access unit that arrived at `received`; units before the first
    /// keyframe that carries an SPS and PPS are skipped (false).
    pub fn push(&mut self, annexb: &[u8], received: Instant) -> anyhow::Result<bool> {
        let sample = to_sample(annexb);
        if sample.avcc.is_empty() {
            return Ok(false);
        }
        if let State::Waiting(_) = self.state {
            let (Some(sps), Some(pps), true) = (&sample.sps, &sample.pps, sample.keyframe) else {
                return Ok(false);
            };
            self.begin(sps.clone(), pps.clone())?;
        }
        if let Some((previous, at)) = self.pending.take() {
            let ticks = ticks(received.saturating_duration_since(at));
            self.write(previous, at, ticks.max(1))?;
        }
        self.start.get_or_insert(received);
        self.pending = Some((sample, received));
        Ok(true)
    }

    fn begin(&mut self, sps: Vec<u8>, pps: Vec<u8>) -> anyhow::Result<()> {
        let (width, height) = sps_size(&sps).context("the robot's SPS")?;
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            bail!("a {width}x{height} picture is too large for MP4's header");
        };
        let State::Waiting(out) = std::mem::replace(&mut self.state, State::Done) else {
            bail!("recording already started");
        };
        let config = mp4::Mp4Config {
            major_brand: "isom".parse()?,
            minor_version: 512,
            compatible_brands: ["isom", "iso2", "avc1", "mp41"]
                .iter()
                .map(|b| b.parse())
                .collect::<Result<_, _>>()?,
            timescale: 1000,
        };
        let mut writer = mp4::Mp4Writer::write_start(out, &config)?;
        writer.add_track(&mp4::TrackConfig {
            track_type: mp4::TrackType::Video,
            timescale: TIMESCALE,
            language: "und".into(),
            media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                width: w,
                height: h,
                seq_param_set: sps,
                pic_param_set: pps,
            }),
        })?;
        self.size = (width, height);
        self.state = State::Writing(Box::new(writer));
        Ok(())
    }

    fn write(&mut self, sample: Sample, at: Instant, duration: u32) -> anyhow::Result<()> {
        let State::Writing(writer) = &mut self.state else {
            bail!("no recording to write into");
        };
        let start = self
            .start
            .map_or(0, |s| ticks(at.saturating_duration_since(s)));
        writer.write_sample(
            1,
            &mp4::Mp4Sample {
                start_time: u64::from(start),
                duration,
                rendering_offset: 0,
                is_sync: sample.keyframe,
                bytes: sample.avcc.into(),
            },
        )?;
        self.written += 1;
        Ok(())
    }

    /// Writes the last sample (lasting as long as the average one) and the index;
    /// the frames written.
    pub fn finish(mut self) -> anyhow::Result<u32> {
        if let Some((last, at)) = self.pending.take() {
            let elapsed = self
                .start
                .map_or(0, |s| ticks(at.saturating_duration_since(s)));
            let average = elapsed / self.written.max(1);
            self.write(last, at, average.max(TIMESCALE / 30))?;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Writing(mut writer) => {
                writer.write_end()?;
                writer.into_writer().flush()?;
                Ok(self.written)
            }
            _ => bail!("no keyframe arrived: nothing was recorded"),
        }
    }
}

/// A duration in track ticks (saturating).
fn ticks(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros() * u128::from(TIMESCALE) / 1_000_000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Duration;

    #[test]
    fn parameter_sets_and_delimiters_leave_the_sample() {
        let unit = [
            &[0, 0, 0, 1, 0x09, 0xf0][..],
            &[0, 0, 0, 1, 0x67, 1, 2][..],
            &[0, 0, 1, 0x68, 3][..],
            &[0, 0, 0, 1, 0x65, 7, 8, 9][..],
        ]
        .concat();
        let s = to_sample(&unit);
        assert!(s.keyframe);
        assert_eq!(s.sps.as_deref(), Some(&[0x67, 1, 2][..]));
        assert_eq!(s.pps.as_deref(), Some(&[0x68, 3][..]));
        assert_eq!(s.avcc, vec![0, 0, 0, 4, 0x65, 7, 8, 9]);
        let p = to_sample(&[0, 0, 0, 1, 0x41, 5, 0, 0, 1, 0x06, 1]);
        assert!(!p.keyframe);
        assert_eq!(p.avcc, vec![0, 0, 0, 2, 0x41, 5, 0, 0, 0, 2, 0x06, 1]);
        assert_eq!(to_sample(&[1, 2, 3]), Sample::default());
    }

    #[test]
    fn recording_starts_at_the_first_keyframe() {
        // A real stream: a 320x240 openh264 recording made by the library's encoder.
        let mut pattern = rtcbot::video::TestPattern::new(320, 240).unwrap();
        let mut enc =
            rtcbot::video::encoder::OpenH264Encoder::new(rtcbot::video::EncoderSettings {
                bitrate_kbps: 300,
                fps: 30,
                keyframe_interval: 5,
                temporal_layers: 1,
            })
            .unwrap();
        let units: Vec<_> = pattern
            .record(12)
            .unwrap()
            .iter()
            .filter_map(|f| rtcbot::video::VideoEncoder::encode(&mut enc, f, false).unwrap())
            .collect();
        let mut rec = Recorder::new(Cursor::new(Vec::new()));
        let t0 = Instant::now();
        // A P-frame first is skipped: nothing to decode it from.
        assert!(!rec.push(&units[1].data, t0).unwrap());
        for (i, u) in units.iter().enumerate() {
            let at = t0 + Duration::from_millis(33 * i as u64);
            assert!(rec.push(&u.data, at).unwrap());
        }
        assert_eq!(rec.size(), (320, 240));
        assert_eq!(rec.finish().unwrap(), 12);
    }

    #[test]
    fn no_keyframe_is_a_clear_error() {
        let rec = Recorder::new(Cursor::new(Vec::new()));
        let err = rec.finish().unwrap_err().to_string();
        assert!(err.contains("no keyframe"), "{err}");
    }
}

//! Opus, through libopus (the `opus` crate: the reference codec browsers use too).
//!
//! The robot encodes 20 ms frames of 48 kHz mono ([`FRAME_SAMPLES`]) once for every
//! listener; what browsers send is decoded to the same shape. A packet that does not
//! decode is an [`AudioError::Decode`] for the caller to count and skip: the decoder
//! stays usable.

use super::{AudioError, FRAME_SAMPLES, SAMPLE_RATE};
use bytes::Bytes;

/// The largest Opus packet (RFC 6716: 1275 bytes per frame; a 120 ms packet of 2.5 ms
/// frames can be longer).
pub const MAX_PACKET: usize = 4000;
/// The most samples one packet decodes to per channel: 120 ms at 48 kHz.
pub const MAX_DECODED: usize = 5760;

/// An Opus encoder for 20 ms frames of 48 kHz mono.
pub struct OpusEncoder {
    inner: opus::Encoder,
    buffer: Vec<u8>,
}

impl OpusEncoder {
    /// An encoder at `bitrate_kbps`, tuned for low delay.
    pub fn new(bitrate_kbps: u32) -> Result<Self, AudioError> {
        let mut inner = opus::Encoder::new(
            SAMPLE_RATE,
            opus::Channels::Mono,
            opus::Application::LowDelay,
        )
        .map_err(|e| AudioError::Codec(format!("opening the Opus encoder: {e}")))?;
        let bits = i32::try_from(bitrate_kbps.saturating_mul(1000)).unwrap_or(i32::MAX);
        inner
            .set_bitrate(opus::Bitrate::Bits(bits))
            .map_err(|e| AudioError::Codec(format!("setting the Opus bitrate: {e}")))?;
        Ok(Self {
            inner,
            buffer: vec![0; MAX_PACKET],
        })
    }

    /// Encodes one frame of exactly [`FRAME_SAMPLES`] samples.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Bytes, AudioError> {
        if pcm.len() != FRAME_SAMPLES {
            return Err(AudioError::Codec(format!(
                "an Opus frame is {FRAME_SAMPLES} samples, not {}",
                pcm.len()
            )));
        }
        let len = self
            .inner
            .encode(pcm, &mut self.buffer)
            .map_err(|e| AudioError::Codec(format!("Opus encoding: {e}")))?;
        Ok(Bytes::copy_from_slice(&self.buffer[..len]))
    }
}

/// An Opus decoder to 48 kHz mono (a stereo stream is mixed down by libopus).
pub struct OpusDecoder {
    inner: opus::Decoder,
    buffer: Vec<i16>,
}

impl OpusDecoder {
    /// A decoder.
    pub fn new() -> Result<Self, AudioError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
            .map_err(|e| AudioError::Codec(format!("opening the Opus decoder: {e}")))?;
        Ok(Self {
            inner,
            buffer: vec![0; MAX_DECODED],
        })
    }

    /// Decodes one packet; an empty or malformed one is an error and changes nothing.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16], AudioError> {
        if packet.is_empty() {
            return Err(AudioError::Decode("an empty Opus packet".into()));
        }
        let n = self
            .inner
            .decode(packet, &mut self.buffer, false)
            .map_err(|e| AudioError::Decode(format!("a malformed Opus packet: {e}")))?;
        Ok(&self.buffer[..n])
    }

    /// One frame of concealment for a lost packet (libopus's packet loss concealment).
    pub fn conceal(&mut self) -> Result<&[i16], AudioError> {
        let n = self
            .inner
            .decode(&[], &mut self.buffer[..FRAME_SAMPLES], false)
            .map_err(|e| AudioError::Decode(format!("Opus concealment: {e}")))?;
        Ok(&self.buffer[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;

    #[test]
    fn the_tone_survives_encoding() {
        let mut encoder = OpusEncoder::new(32).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let start = 1_700_000_000_000_000u64;
        let mut decoded = Vec::new();
        for i in 0..5u64 {
            let mut frame = vec![0i16; FRAME_SAMPLES];
            tone::fill(&mut frame, start + i * 20_000, SAMPLE_RATE);
            let packet = encoder.encode(&frame).unwrap();
            assert!(!packet.is_empty() && packet.len() < MAX_PACKET);
            decoded.extend_from_slice(decoder.decode(&packet).unwrap());
        }
        assert_eq!(decoded.len(), 5 * FRAME_SAMPLES);
        let tail = &decoded[2 * FRAME_SAMPLES..];
        let (hz, _) =
            tone::dominant_hz(tail, &[440.0, 660.0, 1000.0, 1500.0], SAMPLE_RATE).unwrap();
        assert_eq!(hz, tone::TONE_HZ);
    }

    #[test]
    fn bad_packets_and_frames_are_errors_not_panics() {
        let mut decoder = OpusDecoder::new().unwrap();
        assert!(decoder.decode(&[]).is_err());
        // A code-3 packet that claims more frames than it holds.
        assert!(decoder.decode(&[0xff, 0xff, 0xff]).is_err());
        // Still usable afterwards.
        let mut encoder = OpusEncoder::new(32).unwrap();
        let packet = encoder.encode(&[0; FRAME_SAMPLES]).unwrap();
        assert_eq!(decoder.decode(&packet).unwrap().len(), FRAME_SAMPLES);
        assert_eq!(decoder.conceal().unwrap().len(), FRAME_SAMPLES);
        assert!(encoder.encode(&[0; 100]).is_err());
        assert!(OpusEncoder::new(32).is_ok());
    }
}

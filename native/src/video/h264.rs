//! H.264 Annex B parsing: just enough to pass encoded video through untouched.
//!
//! Used by the sources that already produce H.264 (a camera's H.264 format, an Annex B
//! file): split a byte stream into NAL units and access units, tell keyframes (IDR)
//! from the NAL types, read the picture size from an SPS, and put the last-seen SPS and
//! PPS in front of an IDR that lacks them, so a viewer can start at any keyframe.

/// NAL unit type of a non-IDR slice.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of an IDR slice (a keyframe).
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B byte string, without start codes (trailing zero bytes
/// of each unit, which belong to the next start code, removed).
pub fn split_nals(annexb: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annexb.len() {
        if annexb[i] == 0 && annexb[i + 1] == 0 && annexb[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(annexb.len(), |next| next - 3);
        while end > start && annexb[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            nals.push(&annexb[start..end]);
        }
    }
    nals
}

/// The type of one NAL unit (without its start code).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1F)
}

/// True when the access unit holds an IDR slice.
pub fn is_keyframe(annexb: &[u8]) -> bool {
    split_nals(annexb).iter().any(|n| nal_type(n) == NAL_IDR)
}

fn is_vcl(t: u8) -> bool {
    (1..=5).contains(&t)
}

/// Splits an Annex B stream into access units (one picture each), each returned as
/// Annex B bytes with 4-byte start codes.
///
/// A new access unit starts at an access unit delimiter, or at an SPS/PPS/SEI or at a
/// slice with `first_mb_in_slice == 0` once the current unit has a slice.
pub fn split_access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_slice = false;
    for nal in split_nals(stream) {
        let t = nal_type(nal);
        // first_mb_in_slice is ue(v): 0 is the single bit '1'.
        let first_slice = is_vcl(t) && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = t == NAL_AUD
            || (has_slice && (matches!(t, NAL_SEI | NAL_SPS | NAL_PPS) || first_slice));
        if starts_unit && !current.is_empty() {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_slice |= is_vcl(t);
    }
    if has_slice {
        units.push(current);
    }
    units
}

/// Remembers the latest SPS and PPS, and adds them to IDR access units that lack them.
#[derive(Debug, Default, Clone)]
pub struct ParameterSets {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParameterSets {
    /// Reads `au`'s parameter sets; returns it with the missing ones put in front when
    /// it is an IDR.
    pub fn complete(&mut self, au: &[u8]) -> Vec<u8> {
        let nals = split_nals(au);
        let mut has = (false, false);
        let mut idr = false;
        for nal in &nals {
            match nal_type(nal) {
                NAL_SPS => {
                    self.sps = Some(nal.to_vec());
                    has.0 = true;
                }
                NAL_PPS => {
                    self.pps = Some(nal.to_vec());
                    has.1 = true;
                }
                NAL_IDR => idr = true,
                _ => {}
            }
        }
        if !idr || (has.0 && has.1) {
            return au.to_vec();
        }
        let mut out = Vec::with_capacity(au.len() + 64);
        for (present, set) in [(has.0, &self.sps), (has.1, &self.pps)] {
            if let (false, Some(set)) = (present, set) {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(set);
            }
        }
        out.extend_from_slice(au);
        out
    }

    /// The picture size from the latest SPS.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.sps.as_deref().and_then(sps_size)
    }
}

/// Reads bits from an RBSP (emulation prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal_payload: &[u8]) -> Self {
        let mut data = Vec::with_capacity(nal_payload.len());
        let mut zeros = 0;
        for &b in nal_payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Width and height in pixels from an SPS NAL unit (header byte included), cropping
/// applied. `None` when it is not an SPS or is truncated.
pub fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    if nal_type(sps) != NAL_SPS {
        return None;
    }
    let mut r = Bits::new(sps.get(1..)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma
        r.ue()?; // bit_depth_chroma
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_allowed
    let width_mbs = r.ue()? + 1;
    let height_map = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?; // direct_8x8_inference
    let height_mbs = (2 - frame_mbs_only) * height_map;
    let (mut w, mut h) = (width_mbs * 16, height_mbs * 16);
    if r.bit()? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (cx, cy) = match chroma_format {
            0 | 3 => (1, 2 - frame_mbs_only),
            2 => (2, 2 - frame_mbs_only),
            _ => (2, 2 * (2 - frame_mbs_only)),
        };
        w = w.checked_sub((left + right).checked_mul(cx)?)?;
        h = h.checked_sub((top + bottom).checked_mul(cy)?)?;
    }
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::encoder::{EncoderSettings, OpenH264Encoder, VideoEncoder};
    use crate::video::frame::Frame;
    use crate::video::source::{test_pattern::TestPattern, VideoSource};

    /// A real recording, keyframe every 5 frames, concatenated as an Annex B file
    /// would be, with each picture's keyframe flag.
    fn recording(n: usize) -> (Vec<u8>, Vec<bool>) {
        let pictures = crate::video::encoder::recorded_pictures(n, 5);
        let stream = pictures
            .iter()
            .flat_map(|p| p.data.iter().copied())
            .collect();
        (stream, pictures.iter().map(|p| p.keyframe).collect())
    }

    #[test]
    fn splits_a_recording_into_access_units_and_finds_keyframes() {
        let (stream, keys) = recording(12);
        let units = split_access_units(&stream);
        assert_eq!(units.len(), 12);
        let found: Vec<bool> = units.iter().map(|u| is_keyframe(u)).collect();
        assert_eq!(found, keys);
        assert!(keys[0] && keys[5] && keys[10], "{keys:?}");
        // Every access unit decodes to the same bytes' NAL types as the encoder made.
        let sps = split_nals(&units[0])
            .into_iter()
            .find(|n| nal_type(n) == NAL_SPS)
            .expect("the first keyframe has an SPS");
        assert_eq!(sps_size(sps), Some((320, 240)));
    }

    #[test]
    fn puts_parameter_sets_in_front_of_bare_idrs() {
        let (stream, _) = recording(6);
        let units = split_access_units(&stream);
        let mut sets = ParameterSets::default();
        assert_eq!(sets.complete(&units[0]), units[0]);
        assert_eq!(sets.size(), Some((320, 240)));
        // Strip SPS/PPS from the second keyframe, as some cameras send it.
        let bare: Vec<u8> = split_nals(&units[5])
            .into_iter()
            .filter(|n| !matches!(nal_type(n), NAL_SPS | NAL_PPS))
            .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
            .collect();
        let fixed = sets.complete(&bare);
        let types: Vec<u8> = split_nals(&fixed).iter().map(|n| nal_type(n)).collect();
        assert_eq!(&types[..2], [NAL_SPS, NAL_PPS]);
        assert!(types.contains(&NAL_IDR));
        // Non-IDR units pass unchanged.
        assert_eq!(sets.complete(&units[1]), units[1]);
    }

    #[test]
    fn reads_sizes_with_cropping_and_survives_junk() {
        // 330x250 is coded as 336x256 macroblocks with cropping: the SPS says so.
        let mut enc = OpenH264Encoder::new(EncoderSettings {
            bitrate_kbps: 300,
            fps: 30,
            keyframe_interval: 30,
        })
        .unwrap();
        let mut src = TestPattern::new(330, 250).unwrap();
        let mut frame = Frame::new(330, 250);
        src.capture(&mut frame).unwrap();
        let out = enc.encode(&frame, true).unwrap().unwrap();
        let mut sets = ParameterSets::default();
        sets.complete(&out.data);
        assert_eq!(sets.size(), Some((330, 250)));
        // Junk is no SPS (empty, truncated after the header or the profile, another
        // NAL type, a forbidden-bit byte) and holds no start code: no size, no unit.
        for junk in [
            &[][..],
            &[0x67],
            &[0x67, 0x64, 0, 0],
            &[0x65, 1, 2],
            &[0xFF; 40],
        ] {
            assert_eq!(sps_size(junk), None, "{junk:?}");
            assert!(split_access_units(junk).is_empty(), "{junk:?}");
        }
        // A real SPS cut short anywhere gives no size or the right one, never a wrong
        // one; the whole one gives 330x250.
        let sps = split_nals(&out.data)
            .into_iter()
            .find(|n| nal_type(n) == NAL_SPS)
            .expect("an SPS in the keyframe");
        assert_eq!(sps_size(sps), Some((330, 250)));
        for cut in 1..sps.len() {
            let size = sps_size(&sps[..cut]);
            assert!(
                size.is_none() || size == Some((330, 250)),
                "cut at {cut} of {}: {size:?}",
                sps.len()
            );
        }
        assert_eq!(
            sps_size(&sps[..3]),
            None,
            "only the profile and constraints"
        );
        // A unit of junk after a start code is one access unit holding exactly it.
        assert_eq!(split_access_units(&[0, 0, 1, 0x41, 0x9A]).len(), 1);
        assert!(split_nals(&[0, 0, 1]).is_empty());
        assert_eq!(
            split_nals(&[0, 0, 1, 9, 0, 0, 0, 1, 0x67, 7]),
            [&[9][..], &[0x67, 7]]
        );
    }
}

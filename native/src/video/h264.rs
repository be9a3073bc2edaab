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

    /// The picture size from the latest SPS; `None` before one, or when it is unreadable.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.sps.as_deref().and_then(|sps| sps_size(sps).ok())
    }
}

/// Why an SPS gave no picture size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The NAL unit is empty or of another type.
    #[error("not a sequence parameter set (NAL type {0})")]
    NotSps(u8),
    /// The SPS ends before its picture size.
    #[error("the SPS is truncated")]
    Truncated,
    /// An exp-Golomb code is longer than the 32-bit values the SPS holds.
    #[error("the SPS has an exp-Golomb code longer than 32 bits")]
    CodeTooLong,
    /// A field is outside the range H.264 allows.
    #[error("SPS field {field} = {value} is out of range ({range})")]
    OutOfRange {
        /// The field, as the H.264 specification names it.
        field: &'static str,
        /// The value read.
        value: i64,
        /// The values allowed.
        range: &'static str,
    },
    /// The cropping window is as large as the coded picture, or larger.
    #[error("the SPS crops {crop} pixels off a {coded}-pixel {axis}")]
    CropTooLarge {
        /// `width` or `height`.
        axis: &'static str,
        /// The pixels cropped off.
        crop: u64,
        /// The coded size.
        coded: u64,
    },
}

/// The widest or tallest picture, in macroblocks, an SPS may declare. H.264's largest
/// level (6.2) allows 1055; this leaves room for encoders that ignore levels.
pub const MAX_SPS_MBS: u32 = 4096;

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

    fn bit(&mut self) -> Result<u32, SpsError> {
        let byte = self.data.get(self.pos / 8).ok_or(SpsError::Truncated)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn flag(&mut self) -> Result<bool, SpsError> {
        Ok(self.bit()? == 1)
    }

    /// `n` bits, `n` at most 32.
    fn bits(&mut self, n: u32) -> Result<u32, SpsError> {
        (0..n).try_fold(0u32, |acc, _| Ok((acc << 1) | self.bit()?))
    }

    /// ue(v): at most 31 leading zeros, so at most 2^32 - 2.
    fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::CodeTooLong);
            }
        }
        // 2^zeros - 1 + suffix <= 2^32 - 2: no overflow.
        Ok(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// ue(v) that must lie in `0..=max`.
    fn ue_max(
        &mut self,
        field: &'static str,
        max: u32,
        range: &'static str,
    ) -> Result<u32, SpsError> {
        let value = self.ue()?;
        if value > max {
            return Err(SpsError::OutOfRange {
                field,
                value: i64::from(value),
                range,
            });
        }
        Ok(value)
    }

    /// se(v), exact over the whole ue(v) range.
    fn se(&mut self) -> Result<i64, SpsError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Width and height in pixels from an SPS NAL unit (header byte included), cropping
/// applied. Every value is range-checked: a hostile or corrupt SPS is an error, never
/// an overflow.
pub fn sps_size(sps: &[u8]) -> Result<(u32, u32), SpsError> {
    if nal_type(sps) != NAL_SPS {
        return Err(SpsError::NotSps(nal_type(sps)));
    }
    let mut r = Bits::new(sps.get(1..).ok_or(SpsError::Truncated)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue_max("seq_parameter_set_id", 31, "0..=31")?;
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue_max("chroma_format_idc", 3, "0..=3")?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue_max("bit_depth_luma_minus8", 6, "0..=6")?;
        r.ue_max("bit_depth_chroma_minus8", 6, "0..=6")?;
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max("log2_max_frame_num_minus4", 12, "0..=12")?;
    match r.ue_max("pic_order_cnt_type", 2, "0..=2")? {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12, "0..=12")?;
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255, "0..=255")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_allowed
    let mbs_range = "0..=4095";
    let width_mbs = r.ue_max("pic_width_in_mbs_minus1", MAX_SPS_MBS - 1, mbs_range)? + 1;
    let height_map = r.ue_max("pic_height_in_map_units_minus1", MAX_SPS_MBS - 1, mbs_range)? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?; // direct_8x8_inference
              // In u64 from here: every term is below 2^32, so no product or sum overflows.
    let field_factor = u64::from(2 - frame_mbs_only);
    let coded_w = u64::from(width_mbs) * 16;
    let coded_h = field_factor * u64::from(height_map) * 16;
    let (mut w, mut h) = (coded_w, coded_h);
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (cx, cy) = match chroma_format {
            0 | 3 => (1, field_factor),
            2 => (2, field_factor),
            _ => (2, 2 * field_factor),
        };
        let crop_w = (u64::from(left) + u64::from(right)) * cx;
        let crop_h = (u64::from(top) + u64::from(bottom)) * cy;
        // H.264 7.4.2.1.1: the crop leaves at least one crop unit, never an empty
        // picture.
        w = coded_w
            .checked_sub(crop_w)
            .filter(|w| *w > 0)
            .ok_or(SpsError::CropTooLarge {
                axis: "width",
                crop: crop_w,
                coded: coded_w,
            })?;
        h = coded_h
            .checked_sub(crop_h)
            .filter(|h| *h > 0)
            .ok_or(SpsError::CropTooLarge {
                axis: "height",
                crop: crop_h,
                coded: coded_h,
            })?;
    }
    // At most 2 * 4096 * 16 pixels: fits.
    Ok((w as u32, h as u32))
}

/// Reads past one scaling list (H.264 7.3.2.1.1.1), checking each delta_scale.
fn skip_scaling_list(r: &mut Bits, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::OutOfRange {
                    field: "delta_scale",
                    value: delta,
                    range: "-128..=127",
                });
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
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
        assert_eq!(sps_size(sps), Ok((320, 240)));
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

    /// Writes an SPS bit by bit, as a hostile sender may: RBSP bits, then emulation
    /// prevention bytes, behind the NAL header.
    #[derive(Default)]
    struct SpsWriter {
        bits: Vec<bool>,
    }

    impl SpsWriter {
        fn bits(&mut self, n: u32, value: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(value >> i & 1 == 1);
            }
            self
        }

        /// ue(v) of `value` (up to 2^32 - 2, the longest code the reader takes).
        fn ue(&mut self, value: u64) -> &mut Self {
            let code = value + 1;
            let len = 64 - code.leading_zeros();
            self.bits(len - 1, 0).bits(len, code)
        }

        /// se(v): positive k is 2k - 1, zero or negative k is -2k.
        fn se(&mut self, value: i64) -> &mut Self {
            let k = if value > 0 {
                2 * value as u64 - 1
            } else {
                2 * value.unsigned_abs()
            };
            self.ue(k)
        }

        fn nal(&mut self) -> Vec<u8> {
            self.bits.push(true); // rbsp_stop_one_bit
            while self.bits.len() % 8 != 0 {
                self.bits.push(false);
            }
            let mut out = vec![0x67];
            let mut zeros = 0;
            for byte in self.bits.chunks(8) {
                let b = byte.iter().fold(0u8, |acc, &bit| acc << 1 | u8::from(bit));
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    /// A baseline SPS up to the picture size, with `width_mbs - 1`, `height_map - 1`
    /// and `frame_mbs_only` as given.
    fn baseline_sps(width: u64, height: u64, frame_mbs_only: bool) -> SpsWriter {
        let mut w = SpsWriter::default();
        w.bits(8, 66).bits(16, 0x001F).ue(0); // profile, constraints + level, id
        w.ue(0).ue(2).ue(1).bits(1, 0); // frame_num, POC type 2, refs, gaps
        w.ue(width).ue(height).bits(1, u64::from(frame_mbs_only));
        if !frame_mbs_only {
            w.bits(1, 0);
        }
        w.bits(1, 1); // direct_8x8_inference
        w
    }

    const HUGE: u64 = (1 << 32) - 2;

    #[test]
    fn hostile_sps_values_are_refused_without_overflow() {
        // The writer agrees with the reader on a plain SPS: 320x240.
        assert_eq!(
            sps_size(&baseline_sps(19, 14, true).bits(1, 0).nal()),
            Ok((320, 240))
        );
        let out_of_range = |field| move |e: &SpsError| matches!(e, SpsError::OutOfRange { field: f, .. } if *f == field);
        type Expect = Box<dyn Fn(&SpsError) -> bool>;
        let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
            (
                "huge width",
                baseline_sps(HUGE, 14, true).bits(1, 0).nal(),
                Box::new(out_of_range("pic_width_in_mbs_minus1")),
            ),
            (
                "huge height",
                baseline_sps(19, HUGE, true).bits(1, 0).nal(),
                Box::new(out_of_range("pic_height_in_map_units_minus1")),
            ),
            (
                "huge field height",
                baseline_sps(19, (1 << 31) + 5, false).bits(1, 0).nal(),
                Box::new(out_of_range("pic_height_in_map_units_minus1")),
            ),
            (
                "largest size",
                baseline_sps(4095, 4095, false)
                    .bits(1, 1)
                    .ue(HUGE)
                    .ue(0)
                    .ue(0)
                    .ue(0)
                    .nal(),
                Box::new(|e| matches!(e, SpsError::CropTooLarge { axis: "width", .. })),
            ),
            (
                "crop sum",
                baseline_sps(19, 14, true)
                    .bits(1, 1)
                    .ue(HUGE)
                    .ue(HUGE)
                    .ue(0)
                    .ue(0)
                    .nal(),
                Box::new(|e| matches!(e, SpsError::CropTooLarge { axis: "width", .. })),
            ),
            (
                "crop sum height",
                baseline_sps(19, 14, true)
                    .bits(1, 1)
                    .ue(0)
                    .ue(0)
                    .ue(HUGE)
                    .ue(HUGE)
                    .nal(),
                Box::new(|e| matches!(e, SpsError::CropTooLarge { axis: "height", .. })),
            ),
            (
                "a 33-bit code",
                {
                    let mut w = baseline_sps(19, 14, true);
                    w.bits(1, 1).bits(32, 0).bits(1, 1).bits(32, 0);
                    w.nal()
                },
                Box::new(|e| *e == SpsError::CodeTooLong),
            ),
            (
                "scaling list",
                {
                    let mut w = SpsWriter::default();
                    w.bits(8, 100).bits(16, 0x001F).ue(0); // High profile
                    w.ue(1).ue(0).ue(0).bits(1, 0); // 4:2:0, 8 bits, no bypass
                    w.bits(1, 1).bits(1, 1); // a scaling matrix, list 0 present
                    w.se(i64::from(i32::MAX)).nal()
                },
                Box::new(out_of_range("delta_scale")),
            ),
            (
                "negative scaling delta",
                {
                    let mut w = SpsWriter::default();
                    w.bits(8, 100).bits(16, 0x001F).ue(0);
                    w.ue(1).ue(0).ue(0).bits(1, 0);
                    w.bits(1, 1).bits(1, 1);
                    w.se(1 - (1i64 << 31)).nal()
                },
                Box::new(out_of_range("delta_scale")),
            ),
        ];
        for (what, sps, expected) in cases {
            match sps_size(&sps) {
                Err(err) => {
                    assert!(expected(&err), "{what}: {err:?}");
                    assert!(!err.to_string().is_empty());
                }
                Ok(size) => panic!("{what}: got {size:?}"),
            }
        }
        // Cropping exactly the coded picture's margin stays valid: 16x16 coded,
        // cropped by 2 chroma units (4 pixels) a side.
        assert_eq!(
            sps_size(
                &baseline_sps(0, 0, true)
                    .bits(1, 1)
                    .ue(1)
                    .ue(1)
                    .ue(1)
                    .ue(1)
                    .nal()
            ),
            Ok((12, 12))
        );
        let err = sps_size(&[0x65, 0]).unwrap_err();
        assert_eq!(err.to_string(), "not a sequence parameter set (NAL type 5)");
    }

    /// Found writing the `h264` fuzz target: cropping the whole coded picture gave a
    /// 0-pixel size, which an Annex B source then reported as its frame size.
    #[test]
    fn a_crop_of_the_whole_picture_is_refused() {
        // 16x16 coded, 4:2:0 crop units of 2: 8 units off each axis is all of it.
        let crop = |left, right, top, bottom| {
            baseline_sps(0, 0, true)
                .bits(1, 1)
                .ue(left)
                .ue(right)
                .ue(top)
                .ue(bottom)
                .nal()
        };
        assert!(matches!(
            sps_size(&crop(8, 0, 1, 1)),
            Err(SpsError::CropTooLarge {
                axis: "width",
                crop: 16,
                coded: 16
            })
        ));
        assert!(matches!(
            sps_size(&crop(1, 1, 3, 5)),
            Err(SpsError::CropTooLarge {
                axis: "height",
                crop: 16,
                coded: 16
            })
        ));
        // One crop unit short of the whole picture is the smallest valid size.
        assert_eq!(sps_size(&crop(7, 0, 0, 7)), Ok((2, 2)));
    }

    #[test]
    fn reads_sizes_with_cropping_and_survives_junk() {
        // 330x250 is coded as 336x256 macroblocks with cropping: the SPS says so.
        let mut enc = OpenH264Encoder::new(EncoderSettings {
            bitrate_kbps: 300,
            fps: 30,
            keyframe_interval: 30,
            temporal_layers: 1,
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
            assert!(sps_size(junk).is_err(), "{junk:?}");
            assert!(split_access_units(junk).is_empty(), "{junk:?}");
        }
        // A real SPS cut short anywhere gives no size or the right one, never a wrong
        // one; the whole one gives 330x250.
        let sps = split_nals(&out.data)
            .into_iter()
            .find(|n| nal_type(n) == NAL_SPS)
            .expect("an SPS in the keyframe");
        assert_eq!(sps_size(sps), Ok((330, 250)));
        for cut in 1..sps.len() {
            let size = sps_size(&sps[..cut]);
            assert!(
                size.is_err() || size == Ok((330, 250)),
                "cut at {cut} of {}: {size:?}",
                sps.len()
            );
        }
        assert_eq!(
            sps_size(&sps[..3]),
            Err(SpsError::Truncated),
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

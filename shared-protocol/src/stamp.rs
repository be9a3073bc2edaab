//! The frame stamp: a frame number and capture time painted into a picture.
//!
//! The test-pattern camera paints a [`Stamp`] into the top-left corner of every
//! frame as four rows of 32 black or white blocks (frame number, capture time high
//! and low words, and a check word). Blocks are large and aligned so that they
//! survive H.264 compression; any receiver that can see the decoded pixels (the Rust
//! test client, the browser drawing a `<video>` to a canvas) reads the stamp back with
//! [`Stamp::read`] and learns which frame it shows and how old it is.

/// Bits in one row of the stamp.
const BITS: usize = 32;
/// Rows: frame, capture high word, capture low word, check.
const ROWS: usize = 4;
/// Mixed into the check word so that an all-black or all-white area never reads as a stamp.
const CHECK_SALT: u32 = 0x5A5A_A5A5;
/// Luma of a one bit (video-range white).
pub const WHITE: u8 = 235;
/// Luma of a zero bit (video-range black).
pub const BLACK: u8 = 16;

/// A frame number and the moment the frame was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Counts frames from the source's start.
    pub frame: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
}

impl Stamp {
    /// Edge of one bit block, in pixels, for a frame `width` pixels wide:
    /// a fortieth of the width, even, between 4 and 16.
    pub fn block_size(width: usize) -> usize {
        ((width / 40).clamp(4, 16)) & !1
    }

    /// Width and height of the stamped area, in pixels.
    pub fn area(width: usize) -> (usize, usize) {
        let b = Self::block_size(width);
        (BITS * b, ROWS * b)
    }

    /// Whether a frame of this size can carry a stamp.
    pub fn fits(width: usize, height: usize) -> bool {
        let (w, h) = Self::area(width);
        w <= width && h <= height
    }

    fn words(&self) -> [u32; ROWS] {
        let hi = (self.capture_us >> 32) as u32;
        let lo = self.capture_us as u32;
        [self.frame, hi, lo, self.frame ^ hi ^ lo ^ CHECK_SALT]
    }

    /// Paints the stamp into a luma plane (`stride` bytes per row). Does nothing when
    /// the frame is too small to carry it.
    pub fn paint(&self, luma: &mut [u8], stride: usize, width: usize, height: usize) {
        if !Self::fits(width, height) || luma.len() < stride * height {
            return;
        }
        let b = Self::block_size(width);
        for (row, word) in self.words().iter().enumerate() {
            for bit in 0..BITS {
                let on = word >> (BITS - 1 - bit) & 1 == 1;
                let value = if on { WHITE } else { BLACK };
                for y in row * b..(row + 1) * b {
                    let start = y * stride + bit * b;
                    luma[start..start + b].fill(value);
                }
            }
        }
    }

    /// Reads a stamp back from a picture, given its size and a function returning the
    /// luma (0–255) at a pixel. `None` when the picture carries no valid stamp.
    pub fn read(width: usize, height: usize, luma: impl Fn(usize, usize) -> u8) -> Option<Self> {
        if !Self::fits(width, height) {
            return None;
        }
        let b = Self::block_size(width);
        let mut words = [0u32; ROWS];
        for (row, word) in words.iter_mut().enumerate() {
            for bit in 0..BITS {
                let (x, y) = (bit * b + b / 2, row * b + b / 2);
                // Average the four pixels around the block centre.
                let sum: u32 = [(x - 1, y - 1), (x, y - 1), (x - 1, y), (x, y)]
                    .iter()
                    .map(|&(x, y)| u32::from(luma(x, y)))
                    .sum();
                *word = (*word << 1) | u32::from(sum / 4 >= 128);
            }
        }
        let [frame, hi, lo, check] = words;
        (frame ^ hi ^ lo ^ CHECK_SALT == check).then_some(Self {
            frame,
            capture_us: (u64::from(hi) << 32) | u64::from(lo),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(width: usize, height: usize, fill: u8) -> Vec<u8> {
        vec![fill; width * height]
    }

    #[test]
    fn reads_back_what_it_paints_at_common_sizes() {
        for (w, h) in [
            (640, 480),
            (1280, 720),
            (320, 240),
            (176, 144),
            (1920, 1080),
        ] {
            let stamp = Stamp {
                frame: 0xDEAD_BEEF,
                capture_us: 1_763_700_000_123_456,
            };
            let mut luma = plane(w, h, 128);
            stamp.paint(&mut luma, w, w, h);
            assert_eq!(
                Stamp::read(w, h, |x, y| luma[y * w + x]),
                Some(stamp),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn survives_noise_but_not_corruption() {
        let (w, h) = (640, 480);
        let stamp = Stamp {
            frame: 12345,
            capture_us: 42,
        };
        let mut luma = plane(w, h, 0);
        stamp.paint(&mut luma, w, w, h);
        // Compression-like noise of +-40 keeps every bit.
        let noisy: Vec<u8> = luma
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if i % 3 == 0 {
                    v.saturating_add(40)
                } else {
                    v.saturating_sub(40)
                }
            })
            .collect();
        assert_eq!(Stamp::read(w, h, |x, y| noisy[y * w + x]), Some(stamp));
        // Flipping one bit block breaks the check word.
        let b = Stamp::block_size(w);
        for y in 0..b {
            for x in 0..b {
                luma[y * w + x] = 255 - luma[y * w + x];
            }
        }
        assert_eq!(Stamp::read(w, h, |x, y| luma[y * w + x]), None);
    }

    #[test]
    fn blank_pictures_and_tiny_frames_carry_no_stamp() {
        for fill in [0, 128, 255] {
            let luma = plane(640, 480, fill);
            assert_eq!(
                Stamp::read(640, 480, |x, y| luma[y * 640 + x]),
                None,
                "fill {fill}"
            );
        }
        assert!(!Stamp::fits(64, 16));
        let mut tiny = plane(64, 16, 0);
        Stamp {
            frame: 1,
            capture_us: 1,
        }
        .paint(&mut tiny, 64, 64, 16);
        assert!(tiny.iter().all(|&v| v == 0));
        assert_eq!(Stamp::read(64, 16, |_, _| 0), None);
    }

    /// Frame 300 captured at 1_763_700_000_123_456 us, as four rows of 32 bits
    /// (frame; capture high word 0x0006_4413; low word 0x67FF_6A40; check
    /// 300 ^ hi ^ lo ^ 0x5A5A_A5A5 = 0x3DA3_8ADA), written out by hand.
    const STAMP_300_BITS: [&str; 4] = [
        "00000000000000000000000100101100",
        "00000000000001100100010000010011",
        "01100111111111110110101001000000",
        "00111101101000111000101011011010",
    ];
    const STAMP_300: Stamp = Stamp {
        frame: 300,
        capture_us: 1_763_700_000_123_456,
    };

    /// A 320x240 picture (8-pixel blocks) with `bits` drawn block by block, painted
    /// here without the module's painter; the rest is mid-grey.
    fn hand_painted(bits: &[&str; 4]) -> Vec<u8> {
        let (w, h) = (320, 240);
        let mut luma = plane(w, h, 128);
        for (row, line) in bits.iter().enumerate() {
            for (col, bit) in line.bytes().enumerate() {
                let value = if bit == b'1' { 235 } else { 16 };
                for y in row * 8..row * 8 + 8 {
                    for x in col * 8..col * 8 + 8 {
                        luma[y * w + x] = value;
                    }
                }
            }
        }
        luma
    }

    #[test]
    fn paints_the_hand_written_bit_pattern() {
        let (w, h) = (320, 240);
        assert_eq!(Stamp::block_size(w), 8);
        let mut luma = plane(w, h, 128);
        STAMP_300.paint(&mut luma, w, w, h);
        assert_eq!(luma, hand_painted(&STAMP_300_BITS));
        // Spot checks in plain numbers: frame 300 = ...1_0010_1100, so block 23 of row
        // 0 (x 184..192) is white and block 31 (x 248..256) is black.
        assert_eq!((luma[184], luma[191], luma[248]), (235, 235, 16));
        // Below and right of the 256x32 area nothing is touched.
        assert_eq!((luma[32 * w], luma[256], luma[w * h - 1]), (128, 128, 128));
    }

    #[test]
    fn reads_a_hand_painted_stamp() {
        let luma = hand_painted(&STAMP_300_BITS);
        assert_eq!(
            Stamp::read(320, 240, |x, y| luma[y * 320 + x]),
            Some(STAMP_300)
        );
        // One wrong bit in the check row: refused.
        let mut wrong = STAMP_300_BITS;
        wrong[3] = "00111101101000111000101011011011";
        let luma = hand_painted(&wrong);
        assert_eq!(Stamp::read(320, 240, |x, y| luma[y * 320 + x]), None);
    }
}

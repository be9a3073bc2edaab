//! The built-in camera: 75% colour bars, a moving box and a [`Stamp`] (frame number
//! and capture time) that a receiver reads back after decoding to check ordering and
//! measure glass-to-glass latency. The default when no camera exists.
//!
//! A real camera's pictures are never flat: sensor noise makes every frame expensive
//! to encode. [`TestPattern::with_noise`] adds such noise (new each frame), so tests
//! and benchmarks can load the encoder as a camera does.

use super::{SourceError, VideoSource};
use crate::video::frame::{now_us, Frame};
use shared_protocol::Stamp;
use std::time::Instant;

/// The built-in camera: 75% colour bars, a moving box and the frame [`Stamp`].
pub struct TestPattern {
    width: usize,
    height: usize,
    background: Vec<u8>,
    next: u32,
    /// Luma offsets added to the picture, a window of it each frame (empty: none).
    noise: Vec<i8>,
}

/// 75% colour bars as (Y, U, V): white, yellow, cyan, green, magenta, red, blue.
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

impl TestPattern {
    /// A pattern of the given size.
    pub fn new(width: u32, height: u32) -> Result<Self, SourceError> {
        let size_error = |reason| SourceError::Size {
            width,
            height,
            reason,
        };
        if width % 2 != 0 || height % 2 != 0 {
            return Err(size_error("width and height must be even"));
        }
        if !Stamp::fits(width as usize, height as usize) || height < 64 {
            return Err(size_error("too small to carry the frame stamp"));
        }
        let (width, height) = (width as usize, height as usize);
        let mut background = Frame::new(width, height);
        let luma = width * height;
        let (y, chroma) = background.data.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        for row in 0..height {
            for col in 0..width {
                let (by, bu, bv) = if row < height * 2 / 3 {
                    BARS[col * BARS.len() / width]
                } else {
                    // A grey ramp along the bottom third.
                    (16 + (col * 219 / width) as u8, 128, 128)
                };
                y[row * width + col] = by;
                if row % 2 == 0 && col % 2 == 0 {
                    let c = (row / 2) * (width / 2) + col / 2;
                    u[c] = bu;
                    v[c] = bv;
                }
            }
        }
        Ok(Self {
            width,
            height,
            background: background.data,
            next: 0,
            noise: Vec::new(),
        })
    }

    /// Adds sensor-like noise of up to ±`amplitude` luma levels to every pixel, a new
    /// pattern each frame (the stamp stays readable).
    pub fn with_noise(mut self, amplitude: u8) -> Self {
        let span = i16::from(amplitude.min(64));
        // Twice the picture: each frame adds a window starting at a new offset.
        let len = 2 * self.width * self.height;
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        self.noise = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed % (2 * span as u64 + 1)) as i16 - span) as i8
            })
            .collect();
        self
    }

    /// The next `n` pictures, each in its own frame: a recording to write to a file
    /// or feed an encoder.
    pub fn record(&mut self, n: usize) -> Result<Vec<Frame>, SourceError> {
        (0..n)
            .map(|_| {
                let mut frame = Frame::new(self.width, self.height);
                self.capture(&mut frame)?;
                Ok(frame)
            })
            .collect()
    }

    /// Top-left corner of the moving box for frame `n`: it bounces across the middle.
    fn box_position(&self, n: u32, side: usize) -> (usize, usize) {
        let span = self.width - side;
        let step = (n as usize * 4) % (2 * span);
        let x = if step < span { step } else { 2 * span - step };
        let y = self.height / 2 - side / 2;
        (x & !1, y & !1)
    }
}

impl VideoSource for TestPattern {
    fn name(&self) -> &str {
        "test-pattern"
    }

    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
        let (w, h) = (self.width, self.height);
        if frame.width != w || frame.height != h {
            *frame = Frame::new(w, h);
        }
        frame.data.copy_from_slice(&self.background);
        frame.number = self.next;
        frame.captured = Instant::now();
        frame.capture_us = now_us();
        self.next = self.next.wrapping_add(1);

        let luma = w * h;
        let side = (h / 6) & !1;
        let (bx, by) = self.box_position(frame.number, side);
        let (y, chroma) = frame.data.split_at_mut(luma);
        if !self.noise.is_empty() {
            // An odd step, so consecutive frames never share a window.
            let start = (frame.number as usize * 7919) % luma;
            for (px, n) in y.iter_mut().zip(&self.noise[start..start + luma]) {
                *px = px.saturating_add_signed(*n);
            }
        }
        for row in by..by + side {
            y[row * w + bx..row * w + bx + side].fill(235);
        }
        // Neutral chroma under the box and the stamp, so both read as pure grey levels.
        let (sw, sh) = Stamp::area(w);
        let (u, v) = chroma.split_at_mut(luma / 4);
        for (x0, y0, cw, ch) in [(bx, by, side, side), (0, 0, sw, sh)] {
            for row in y0 / 2..(y0 + ch) / 2 {
                let start = row * (w / 2) + x0 / 2;
                u[start..start + cw / 2].fill(128);
                v[start..start + cw / 2].fill(128);
            }
        }
        Stamp {
            frame: frame.number,
            capture_us: frame.capture_us,
        }
        .paint(y, w, w, h);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_carries_increasing_stamps_and_moves() {
        let mut source = TestPattern::new(640, 480).unwrap();
        let mut frame = Frame::new(2, 2);
        source.capture(&mut frame).unwrap();
        let first_y = frame.y().to_vec();
        let read = |f: &Frame| Stamp::read(f.width, f.height, |x, y| f.y()[y * f.width + x]);
        let s0 = read(&frame).expect("stamp");
        assert_eq!(s0.frame, 0);
        assert_eq!(s0.capture_us, frame.capture_us);
        source.capture(&mut frame).unwrap();
        assert_eq!(read(&frame).unwrap().frame, 1);
        // The picture below the stamp changed: the box moved.
        let (_, sh) = Stamp::area(640);
        assert_ne!(&first_y[sh * 640..], &frame.y()[sh * 640..]);
        assert_eq!(frame.u().len(), 320 * 240);
        assert_eq!(frame.v().len(), 320 * 240);
    }

    #[test]
    fn noise_changes_every_frame_within_its_amplitude_and_keeps_the_stamp() {
        let mut clean = TestPattern::new(320, 240).unwrap();
        let mut noisy = TestPattern::new(320, 240).unwrap().with_noise(6);
        let read = |f: &Frame| Stamp::read(f.width, f.height, |x, y| f.y()[y * f.width + x]);
        let (_, sh) = Stamp::area(320);
        let mut previous_noise: Option<Vec<i16>> = None;
        for n in 0..3 {
            let (c, d) = (clean.record(1).unwrap(), noisy.record(1).unwrap());
            assert_eq!(read(&d[0]).expect("stamp under noise").frame, n);
            let noise: Vec<i16> = c[0].y()[sh * 320..]
                .iter()
                .zip(&d[0].y()[sh * 320..])
                .map(|(a, b)| i16::from(*b) - i16::from(*a))
                .collect();
            assert!(noise.iter().all(|d| d.abs() <= 6), "frame {n}");
            assert!(noise.iter().filter(|d| **d != 0).count() > noise.len() / 2);
            assert_ne!(previous_noise.as_ref(), Some(&noise), "frame {n} repeats");
            previous_noise = Some(noise);
        }
    }

    #[test]
    fn paints_the_frame_number_as_hand_checked_blocks() {
        // At 320 pixels wide a bit block is 8x8; row 0 holds the frame number, most
        // significant bit first. Frame 5 = 0b101: blocks 29 and 31 white, 30 and the
        // rest black, in video-range levels 235 and 16.
        let mut source = TestPattern::new(320, 240).unwrap();
        let mut frame = Frame::new(2, 2);
        for _ in 0..6 {
            source.capture(&mut frame).unwrap();
        }
        assert_eq!(frame.number, 5);
        let y = frame.y();
        for block in 0..32 {
            let want = if block == 29 || block == 31 { 235 } else { 16 };
            for (dx, dy) in [(0, 0), (7, 0), (0, 7), (7, 7), (4, 3)] {
                let (px, py) = (block * 8 + dx, dy);
                assert_eq!(y[py * 320 + px], want, "block {block} at ({px},{py})");
            }
        }
    }

    #[test]
    fn refuses_unusable_sizes() {
        assert!(TestPattern::new(641, 480).is_err());
        assert!(TestPattern::new(64, 16).is_err());
        assert!(TestPattern::new(1280, 720).is_ok());
    }
}

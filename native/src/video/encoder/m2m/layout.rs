//! Where each plane of an I420 frame goes in the device's buffers (pure,
//! unit-tested).

use super::discovery::fourcc_list;
use super::RawFormat;
use crate::video::frame::Frame;

/// Which part of a frame one copy moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Y,
    U,
    V,
    /// U and V interleaved, U first.
    Uv,
}

/// One plane of a frame placed in a device buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlaneCopy {
    /// Index of the V4L2 buffer plane it goes in.
    buffer_plane: usize,
    /// Byte offset of its first row there.
    offset: usize,
    /// Bytes from one row to the next there.
    stride: usize,
    component: Component,
}

/// Where each plane of a `width`×`height` I420 frame goes in the device's buffers, from
/// the format the driver settled on (its `bytesperline` and `sizeimage` per buffer
/// plane). Drivers pad rows (the Pi's codec to 32 bytes) and may add bytes after the
/// picture; every copy is checked to fit before any is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneLayout {
    pub(super) width: usize,
    pub(super) height: usize,
    copies: Vec<PlaneCopy>,
    /// `bytesused` of each buffer plane.
    bytes_used: Vec<usize>,
}

impl PlaneLayout {
    /// The layout for `format` with the driver's `(bytesperline, sizeimage)` per plane.
    pub fn new(
        format: RawFormat,
        width: usize,
        height: usize,
        planes: &[(usize, usize)],
    ) -> Result<Self, String> {
        if width % 2 != 0 || height % 2 != 0 || width == 0 || height == 0 {
            return Err(format!("{width}x{height} is not an even size"));
        }
        if planes.len() != format.planes() {
            return Err(format!(
                "{} needs {} buffer planes, the driver set {}",
                fourcc_list(&[format.fourcc()]),
                format.planes(),
                planes.len()
            ));
        }
        let (cw, ch) = (width / 2, height / 2);
        let overflow = || format!("the driver's format for {width}x{height} overflows");
        let copy = |buffer_plane, offset, stride, component| PlaneCopy {
            buffer_plane,
            offset,
            stride,
            component,
        };
        let copies = match format {
            RawFormat::Yu12 | RawFormat::Nv12 => {
                let stride = planes[0].0;
                if stride < width {
                    return Err(format!("bytesperline {stride} < width {width}"));
                }
                // As V4L2 defines these formats: the chroma follows `height` rows of
                // `bytesperline`; whatever `sizeimage` has beyond (alignment, metadata)
                // is the driver's and left alone.
                let chroma = stride.checked_mul(height).ok_or_else(overflow)?;
                if format == RawFormat::Yu12 {
                    let cstride = stride / 2;
                    let v = cstride
                        .checked_mul(ch)
                        .and_then(|n| n.checked_add(chroma))
                        .ok_or_else(overflow)?;
                    vec![
                        copy(0, 0, stride, Component::Y),
                        copy(0, chroma, cstride, Component::U),
                        copy(0, v, cstride, Component::V),
                    ]
                } else {
                    vec![
                        copy(0, 0, stride, Component::Y),
                        copy(0, chroma, stride, Component::Uv),
                    ]
                }
            }
            RawFormat::Ym12 => vec![
                copy(0, 0, planes[0].0, Component::Y),
                copy(1, 0, planes[1].0, Component::U),
                copy(2, 0, planes[2].0, Component::V),
            ],
            RawFormat::Nm12 => vec![
                copy(0, 0, planes[0].0, Component::Y),
                copy(1, 0, planes[1].0, Component::Uv),
            ],
        };
        // Every row of every copy must fit in its buffer plane.
        for c in &copies {
            let (row, rows) = match c.component {
                Component::Y => (width, height),
                Component::U | Component::V => (cw, ch),
                Component::Uv => (width, ch),
            };
            let end = c
                .stride
                .checked_mul(rows - 1)
                .and_then(|n| n.checked_add(c.offset))
                .and_then(|n| n.checked_add(row))
                .ok_or_else(overflow)?;
            if c.stride < row || end > planes[c.buffer_plane].1 {
                return Err(format!(
                    "the driver's plane {} (bytesperline {}, sizeimage {}) cannot hold a \
                     {width}x{height} picture",
                    c.buffer_plane, planes[c.buffer_plane].0, planes[c.buffer_plane].1
                ));
            }
        }
        Ok(Self {
            width,
            height,
            copies,
            bytes_used: planes.iter().map(|p| p.1).collect(),
        })
    }

    /// `bytesused` to queue for each buffer plane.
    pub fn bytes_used(&self) -> &[usize] {
        &self.bytes_used
    }

    /// Copies `frame` into the mapped buffer planes.
    pub fn fill(&self, frame: &Frame, planes: &mut [&mut [u8]]) -> Result<(), String> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(format!(
                "frame is {}x{}, the encoder was set up for {}x{}",
                frame.width, frame.height, self.width, self.height
            ));
        }
        let (w, cw, ch) = (self.width, self.width / 2, self.height / 2);
        for c in &self.copies {
            let dst = planes
                .get_mut(c.buffer_plane)
                .ok_or_else(|| format!("buffer plane {} is not mapped", c.buffer_plane))?;
            let needed = self.bytes_used[c.buffer_plane].min(dst.len());
            if needed < self.bytes_used[c.buffer_plane] {
                return Err(format!(
                    "buffer plane {} is {} bytes, the format needs {}",
                    c.buffer_plane,
                    dst.len(),
                    self.bytes_used[c.buffer_plane]
                ));
            }
            let rows = |src: &[u8], row: usize, dst: &mut [u8]| {
                for (i, line) in src.chunks_exact(row).enumerate() {
                    let at = c.offset + i * c.stride;
                    dst[at..at + row].copy_from_slice(line);
                }
            };
            match c.component {
                Component::Y => rows(frame.y(), w, dst),
                Component::U => rows(frame.u(), cw, dst),
                Component::V => rows(frame.v(), cw, dst),
                Component::Uv => {
                    let (u, v) = (frame.u(), frame.v());
                    for r in 0..ch {
                        let at = c.offset + r * c.stride;
                        let line = &mut dst[at..at + w];
                        for (i, pair) in line.chunks_exact_mut(2).enumerate() {
                            pair[0] = u[r * cw + i];
                            pair[1] = v[r * cw + i];
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose every byte says where it came from: Y = row+col, U = 100+row,
    /// V = 200+col (mod 256).
    fn marked_frame(w: usize, h: usize) -> Frame {
        let mut f = Frame::new(w, h);
        let (cw, ch) = (w / 2, h / 2);
        for r in 0..h {
            for c in 0..w {
                f.data[r * w + c] = (r + c) as u8;
            }
        }
        for r in 0..ch {
            for c in 0..cw {
                f.data[w * h + r * cw + c] = (100 + r) as u8;
                f.data[w * h + cw * ch + r * cw + c] = (200 + c) as u8;
            }
        }
        f
    }

    #[test]
    fn yu12_with_padded_rows_puts_each_plane_where_the_driver_wants_it() {
        // Rows padded to 32 bytes (the Pi's codec: 1000 wide becomes 1024 bytes per
        // line) and a sizeimage with room to spare after the picture (alignment or
        // metadata, as some drivers add): chroma follows 600 rows of 1024 bytes.
        let (w, h) = (1000, 600);
        let size = 1024 * 600 * 3 / 2 + 8192;
        let layout = PlaneLayout::new(RawFormat::Yu12, w, h, &[(1024, size)]).unwrap();
        let mut buf = vec![0u8; size];
        layout
            .fill(&marked_frame(w, h), &mut [buf.as_mut_slice()])
            .unwrap();
        assert_eq!(buf[0], 0);
        assert_eq!(buf[1024 * 7 + 5], 12, "Y row 7 col 5 at stride 1024");
        assert_eq!(buf[1024 * 7 + 1000], 0, "padding untouched");
        let u = 1024 * 600;
        assert_eq!(
            buf[u + 512 * 3 + 4],
            103,
            "U row 3 at stride 512 after 600 rows"
        );
        let v = u + 512 * 300;
        assert_eq!(buf[v + 512 * 299 + 499], (200 + 499) as u8, "last V sample");
        assert!(
            buf[v + 512 * 300..].iter().all(|&b| b == 0),
            "the driver's spare bytes"
        );
        assert_eq!(layout.bytes_used(), &[size]);

        // Unpadded 640x480 is our own layout, byte for byte.
        let layout = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(640, 460_800)]).unwrap();
        let frame = marked_frame(640, 480);
        let mut buf = vec![0u8; 460_800];
        layout.fill(&frame, &mut [buf.as_mut_slice()]).unwrap();
        assert_eq!(buf, frame.data);
    }

    #[test]
    fn nv12_and_multi_planar_layouts_interleave_and_split_chroma() {
        let frame = marked_frame(64, 32);
        let nv12 = PlaneLayout::new(RawFormat::Nv12, 64, 32, &[(64, 64 * 32 * 3 / 2)]).unwrap();
        let mut buf = vec![0u8; 64 * 48];
        nv12.fill(&frame, &mut [buf.as_mut_slice()]).unwrap();
        let uv = 64 * 32;
        assert_eq!(&buf[uv..uv + 4], &[100, 200, 100, 201]);
        assert_eq!(&buf[uv + 64 * 15 + 62..uv + 64 * 16], &[115, 231]);

        let nm12 = PlaneLayout::new(RawFormat::Nm12, 64, 32, &[(64, 2048), (64, 1024)]).unwrap();
        let (mut y, mut c) = (vec![0u8; 2048], vec![0u8; 1024]);
        nm12.fill(&frame, &mut [y.as_mut_slice(), c.as_mut_slice()])
            .unwrap();
        assert_eq!(y, frame.y());
        assert_eq!(&c[..2], &[100, 200]);

        let ym12 =
            PlaneLayout::new(RawFormat::Ym12, 64, 32, &[(64, 2048), (32, 512), (32, 512)]).unwrap();
        let (mut y, mut u, mut v) = (vec![0u8; 2048], vec![0u8; 512], vec![0u8; 512]);
        ym12.fill(
            &frame,
            &mut [y.as_mut_slice(), u.as_mut_slice(), v.as_mut_slice()],
        )
        .unwrap();
        assert_eq!(
            (y.as_slice(), u.as_slice(), v.as_slice()),
            (frame.y(), frame.u(), frame.v())
        );
    }

    #[test]
    fn layouts_that_cannot_hold_the_picture_are_refused() {
        let err = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(640, 1000)]).unwrap_err();
        assert!(err.contains("cannot hold a 640x480 picture"), "{err}");
        let err = PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(320, 460_800)]).unwrap_err();
        assert!(err.contains("bytesperline 320 < width 640"), "{err}");
        let err =
            PlaneLayout::new(RawFormat::Yu12, 640, 480, &[(usize::MAX / 2, 460_800)]).unwrap_err();
        assert!(err.contains("overflows"), "{err}");
        let err = PlaneLayout::new(RawFormat::Ym12, 640, 480, &[(640, 460_800)]).unwrap_err();
        assert!(err.contains("needs 3 buffer planes"), "{err}");
        let layout = PlaneLayout::new(RawFormat::Yu12, 64, 32, &[(64, 3072)]).unwrap();
        let mut small = vec![0u8; 100];
        let err = layout
            .fill(&marked_frame(64, 32), &mut [small.as_mut_slice()])
            .unwrap_err();
        assert!(err.contains("is 100 bytes, the format needs 3072"), "{err}");
        let err = layout
            .fill(&marked_frame(32, 32), &mut [vec![0u8; 3072].as_mut_slice()])
            .unwrap_err();
        assert!(err.contains("frame is 32x32"), "{err}");
    }
}

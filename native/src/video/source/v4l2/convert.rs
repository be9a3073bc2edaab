//! Pixel conversions from what cameras deliver to I420 (pure, unit-tested): I420
//! copies, NV12, YUYV, and MJPEG decoded with `jpeg-decoder`.

fn check_len(buf: &[u8], need: usize, what: &str) -> Result<(), String> {
    if buf.len() < need {
        Err(format!("{what} buffer is {} bytes, need {need}", buf.len()))
    } else {
        Ok(())
    }
}

/// The bytes from one row's start to the next: the driver's `bytesperline`, or
/// `row` (the pixels' own bytes) when the driver reports 0.
fn row_stride(stride: usize, row: usize, what: &str) -> Result<usize, String> {
    match stride {
        0 => Ok(row),
        s if s < row => Err(format!(
            "{what} rows are {s} bytes apart (bytesperline), less than a row's {row} bytes"
        )),
        s => Ok(s),
    }
}

/// One plane of a driver buffer: where it starts, its row stride, and how many rows
/// of how many bytes it holds.
#[derive(Clone, Copy)]
struct Plane {
    offset: usize,
    stride: usize,
    rows: usize,
    row: usize,
}

impl Plane {
    /// Where the plane's data ends; the last row needs no padding. `None` on overflow.
    fn end(self) -> Option<usize> {
        match self.rows {
            0 => Some(self.offset),
            rows => self
                .stride
                .checked_mul(rows - 1)?
                .checked_add(self.row)?
                .checked_add(self.offset),
        }
    }

    /// Where the next plane starts (this one's full rows, padding included).
    fn next_offset(self) -> Option<usize> {
        self.stride.checked_mul(self.rows)?.checked_add(self.offset)
    }

    /// Row `i` of the plane in `buf` (checked by [`check_planes`] beforehand).
    fn row_of(self, buf: &[u8], i: usize) -> &[u8] {
        let start = self.offset + i * self.stride;
        &buf[start..start + self.row]
    }
}

/// Checks that `buf` holds every plane and `out` an I420 picture of `w`x`h`.
fn check_planes(
    buf: &[u8],
    planes: &[Plane],
    out: &[u8],
    w: usize,
    h: usize,
    what: &str,
) -> Result<(), String> {
    let overflow = || format!("{what} buffer layout overflows ({w}x{h})");
    let mut need = 0;
    for plane in planes {
        need = need.max(plane.end().ok_or_else(overflow)?);
    }
    check_len(buf, need, what)?;
    let luma = w.checked_mul(h).ok_or_else(overflow)?;
    let picture = luma + 2 * (w / 2) * (h / 2);
    if out.len() < picture {
        return Err(format!(
            "the I420 frame is {} bytes, need {picture} for {w}x{h}",
            out.len()
        ));
    }
    Ok(())
}

/// The output's Y, U and V planes for `w`x`h` (sizes checked by [`check_planes`]).
fn i420_planes(out: &mut [u8], w: usize, h: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let (cw, ch) = (w / 2, h / 2);
    let (y, chroma) = out.split_at_mut(w * h);
    let (u, rest) = chroma.split_at_mut(cw * ch);
    (y, u, &mut rest[..cw * ch])
}

/// Copies `rows` rows of `plane` into `dst`, packed (`plane.row` bytes a row).
fn copy_rows(buf: &[u8], plane: Plane, dst: &mut [u8]) {
    for (i, row) in dst.chunks_exact_mut(plane.row).take(plane.rows).enumerate() {
        row.copy_from_slice(plane.row_of(buf, i));
    }
}

/// Copies a planar 4:2:0 buffer whose luma rows are `stride` bytes apart (V4L2's
/// `bytesperline`; 0 means `w`) and chroma rows `stride / 2`, as V4L2 lays out
/// single-plane YUV420.
pub fn copy_i420(
    buf: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    out: &mut [u8],
) -> Result<(), String> {
    let ys = row_stride(stride, w, "YUV420")?;
    let overflow = || format!("YUV420 buffer layout overflows ({w}x{h})");
    let y = Plane {
        offset: 0,
        stride: ys,
        rows: h,
        row: w,
    };
    let u = Plane {
        offset: y.next_offset().ok_or_else(overflow)?,
        stride: ys / 2,
        rows: h / 2,
        row: w / 2,
    };
    let v = Plane {
        offset: u.next_offset().ok_or_else(overflow)?,
        ..u
    };
    check_planes(buf, &[y, u, v], out, w, h, "YUV420")?;
    let (oy, ou, ov) = i420_planes(out, w, h);
    copy_rows(buf, y, oy);
    copy_rows(buf, u, ou);
    copy_rows(buf, v, ov);
    Ok(())
}

/// Converts NV12 (Y plane, then interleaved U/V, both with rows `stride` bytes apart;
/// 0 means `w`) to I420.
pub fn nv12_to_i420(
    buf: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    out: &mut [u8],
) -> Result<(), String> {
    let ys = row_stride(stride, w, "NV12")?;
    let y = Plane {
        offset: 0,
        stride: ys,
        rows: h,
        row: w,
    };
    let uv = Plane {
        offset: y
            .next_offset()
            .ok_or_else(|| format!("NV12 buffer layout overflows ({w}x{h})"))?,
        stride: ys,
        rows: h / 2,
        row: w / 2 * 2,
    };
    check_planes(buf, &[y, uv], out, w, h, "NV12")?;
    let (oy, ou, ov) = i420_planes(out, w, h);
    copy_rows(buf, y, oy);
    let cw = w / 2;
    for i in 0..uv.rows {
        let pairs = uv.row_of(buf, i).chunks_exact(2);
        let (u, v) = (&mut ou[i * cw..][..cw], &mut ov[i * cw..][..cw]);
        for ((pair, u), v) in pairs.zip(u).zip(v) {
            *u = pair[0];
            *v = pair[1];
        }
    }
    Ok(())
}

/// Converts packed YUYV 4:2:2, rows `stride` bytes apart (0 means `2 * w`), to I420
/// (chroma of even rows).
pub fn yuyv_to_i420(
    buf: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    out: &mut [u8],
) -> Result<(), String> {
    let row = w
        .checked_mul(2)
        .ok_or_else(|| format!("YUYV buffer layout overflows ({w}x{h})"))?;
    let plane = Plane {
        offset: 0,
        stride: row_stride(stride, row, "YUYV")?,
        rows: h,
        row,
    };
    check_planes(buf, &[plane], out, w, h, "YUYV")?;
    let (y, u, v) = i420_planes(out, w, h);
    let cw = w / 2;
    for r in 0..h {
        let line = plane.row_of(buf, r);
        for (col, px) in line.chunks_exact(4).enumerate() {
            y[r * w + col * 2] = px[0];
            y[r * w + col * 2 + 1] = px[2];
            if r % 2 == 0 && r / 2 < h / 2 {
                let c = (r / 2) * cw + col;
                u[c] = px[1];
                v[c] = px[3];
            }
        }
    }
    Ok(())
}

/// Decodes one MJPEG frame to I420 (BT.601 full-range, as JPEG uses).
pub fn mjpeg_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let mut decoder = jpeg_decoder::Decoder::new(buf);
    let pixels = decoder
        .decode()
        .map_err(|e| format!("bad MJPEG frame: {e}"))?;
    let info = decoder.info().ok_or("bad MJPEG frame: no header")?;
    if (usize::from(info.width), usize::from(info.height)) != (w, h) {
        return Err(format!(
            "MJPEG frame is {}x{}, expected {w}x{h}",
            info.width, info.height
        ));
    }
    let luma = w * h;
    let rgb: &dyn Fn(usize) -> (f32, f32, f32) = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => &|i| {
            (
                f32::from(pixels[i * 3]),
                f32::from(pixels[i * 3 + 1]),
                f32::from(pixels[i * 3 + 2]),
            )
        },
        jpeg_decoder::PixelFormat::L8 => &|i| {
            let l = f32::from(pixels[i]);
            (l, l, l)
        },
        other => return Err(format!("MJPEG pixel format {other:?} is not supported")),
    };
    let (y, chroma) = out[..luma * 3 / 2].split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    for row in 0..h {
        for col in 0..w {
            let (r, g, b) = rgb(row * w + col);
            y[row * w + col] = (0.299 * r + 0.587 * g + 0.114 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            if row % 2 == 0 && col % 2 == 0 {
                let c = (row / 2) * (w / 2) + col / 2;
                u[c] = (128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
                v[c] = (128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_conversions_put_planes_in_place() {
        // 4x2 NV12: Y 0..8, then UV pairs (10,20), (11,21).
        let nv12 = [0, 1, 2, 3, 4, 5, 6, 7, 10, 20, 11, 21];
        let mut out = [0u8; 12];
        nv12_to_i420(&nv12, 4, 2, 0, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 20, 21]);
        // 4x2 YUYV: Y0 U Y1 V per pixel pair.
        let yuyv = [1, 50, 2, 60, 3, 51, 4, 61, 5, 0, 6, 0, 7, 0, 8, 0];
        let mut out = [0u8; 12];
        yuyv_to_i420(&yuyv, 4, 2, 8, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 50, 51, 60, 61]);
        assert!(yuyv_to_i420(&yuyv[..8], 4, 2, 0, &mut out)
            .unwrap_err()
            .contains("need 16"));
        assert!(mjpeg_to_i420(&[0xFF, 0xD8, 1, 2], 4, 2, &mut out)
            .unwrap_err()
            .contains("bad MJPEG"));
    }

    /// A 4x4 picture with distinct Y, U and V values, as packed I420.
    fn picture() -> Vec<u8> {
        let y = (0..16).map(|i| 16 + i);
        let u = (0..4).map(|i| 100 + i);
        let v = (0..4).map(|i| 200 + i);
        y.chain(u).chain(v).collect()
    }

    /// Pads each `row`-byte row of `rows` to `stride` bytes with 0xEE.
    fn padded(rows: &[u8], row: usize, stride: usize) -> Vec<u8> {
        rows.chunks(row)
            .flat_map(|r| {
                let mut r = r.to_vec();
                r.resize(stride, 0xEE);
                r
            })
            .collect()
    }

    #[test]
    fn padded_rows_follow_the_drivers_bytesperline() {
        let want = picture();
        let (y, chroma) = want.split_at(16);
        let (u, v) = chroma.split_at(4);

        // YUV420 with luma rows 8 bytes apart, chroma rows 4 apart.
        let buf = [padded(y, 4, 8), padded(u, 2, 4), padded(v, 2, 4)].concat();
        let mut out = vec![0; 24];
        copy_i420(&buf, 4, 4, 8, &mut out).unwrap();
        assert_eq!(out, want);

        // NV12 with rows 6 bytes apart; the last row without its padding is enough.
        let uv: Vec<u8> = u.iter().zip(v).flat_map(|(&u, &v)| [u, v]).collect();
        let mut buf = [padded(y, 4, 6), padded(&uv, 4, 6)].concat();
        buf.truncate(buf.len() - 2);
        let mut out = vec![0; 24];
        nv12_to_i420(&buf, 4, 4, 6, &mut out).unwrap();
        assert_eq!(out, want);

        // YUYV with rows 12 bytes apart (8 of pixels); chroma comes from even rows.
        let yuyv: Vec<u8> = (0..4)
            .flat_map(|r| {
                (0..2).flat_map(move |c| {
                    let (y0, y1) = (y[r * 4 + c * 2], y[r * 4 + c * 2 + 1]);
                    let (cu, cv) = if r % 2 == 0 {
                        (u[r / 2 * 2 + c], v[r / 2 * 2 + c])
                    } else {
                        (0, 0)
                    };
                    [y0, cu, y1, cv]
                })
            })
            .collect();
        let buf = padded(&yuyv, 8, 12);
        let mut out = vec![0; 24];
        yuyv_to_i420(&buf, 4, 4, 12, &mut out).unwrap();
        assert_eq!(out, want);

        // A stride shorter than a row, or a buffer too short for it, is an error.
        assert!(yuyv_to_i420(&buf, 4, 4, 6, &mut out)
            .unwrap_err()
            .contains("bytesperline"));
        assert!(copy_i420(&want, 4, 4, 8, &mut out)
            .unwrap_err()
            .contains("need"));
        assert!(nv12_to_i420(&want, 4, 4, usize::MAX, &mut out)
            .unwrap_err()
            .contains("overflows"));
        // So is an output too small for the picture.
        assert!(copy_i420(&want, 4, 4, 0, &mut [0; 10])
            .unwrap_err()
            .contains("I420 frame"));
    }
}

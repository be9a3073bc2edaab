//! Pixel conversions from what cameras deliver to I420 (pure, unit-tested): I420
//! copies, NV12, YUYV, and MJPEG decoded with `jpeg-decoder`.

fn check_len(buf: &[u8], need: usize, what: &str) -> Result<(), String> {
    if buf.len() < need {
        Err(format!("{what} buffer is {} bytes, need {need}", buf.len()))
    } else {
        Ok(())
    }
}

/// Copies a planar 4:2:0 buffer.
pub fn copy_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let need = w * h * 3 / 2;
    check_len(buf, need, "YUV420")?;
    out[..need].copy_from_slice(&buf[..need]);
    Ok(())
}

/// Converts NV12 (Y plane, then interleaved U/V) to I420.
pub fn nv12_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let luma = w * h;
    check_len(buf, luma * 3 / 2, "NV12")?;
    out[..luma].copy_from_slice(&buf[..luma]);
    let (u, v) = out[luma..luma * 3 / 2].split_at_mut(luma / 4);
    for (i, uv) in buf[luma..luma * 3 / 2].chunks_exact(2).enumerate() {
        u[i] = uv[0];
        v[i] = uv[1];
    }
    Ok(())
}

/// Converts packed YUYV 4:2:2 to I420 (chroma of even rows).
pub fn yuyv_to_i420(buf: &[u8], w: usize, h: usize, out: &mut [u8]) -> Result<(), String> {
    let luma = w * h;
    check_len(buf, luma * 2, "YUYV")?;
    let (y, chroma) = out[..luma * 3 / 2].split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    for row in 0..h {
        let line = &buf[row * w * 2..(row + 1) * w * 2];
        for (col, px) in line.chunks_exact(4).enumerate() {
            y[row * w + col * 2] = px[0];
            y[row * w + col * 2 + 1] = px[2];
            if row % 2 == 0 {
                let c = (row / 2) * (w / 2) + col;
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
        nv12_to_i420(&nv12, 4, 2, &mut out).unwrap();
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 20, 21]);
        // 4x2 YUYV: Y0 U Y1 V per pixel pair.
        let yuyv = [1, 50, 2, 60, 3, 51, 4, 61, 5, 0, 6, 0, 7, 0, 8, 0];
        let mut out = [0u8; 12];
        yuyv_to_i420(&yuyv, 4, 2, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 50, 51, 60, 61]);
        assert!(yuyv_to_i420(&yuyv[..8], 4, 2, &mut out)
            .unwrap_err()
            .contains("need 16"));
        assert!(mjpeg_to_i420(&[0xFF, 0xD8, 1, 2], 4, 2, &mut out)
            .unwrap_err()
            .contains("bad MJPEG"));
    }
}

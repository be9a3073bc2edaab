//! MJPEG camera frames: real JPEGs made by ffmpeg, decoded to I420 by
//! `rtcbot::video::source::v4l2::mjpeg_to_i420`.

use rtcbot::video::source::v4l2::mjpeg_to_i420;
use std::path::PathBuf;
use std::process::Command;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcbot-mjpeg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs ffmpeg quietly; fails saying how to get it when it is not installed.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run ffmpeg ({e}): this test needs it to make real JPEG files; \
                 install it (apt-get install ffmpeg)"
            )
        });
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A JPEG of one solid colour, as a webcam's MJPEG frame would be.
fn solid_jpeg(colour: &str, w: usize, h: usize) -> Vec<u8> {
    let path = scratch().join(format!("{colour}-{w}x{h}.jpg"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("color=c={colour}:size={w}x{h}"),
        "-frames:v",
        "1",
        path.to_str().unwrap(),
    ]);
    std::fs::read(&path).unwrap()
}

fn close(got: u8, want: u8) -> bool {
    got.abs_diff(want) <= 4
}

#[test]
fn solid_colours_decode_to_their_bt601_full_range_values() {
    let (w, h) = (16, 16);
    // (Y, U, V) = JFIF's BT.601 full range, worked out by hand from RGB:
    // Y = .299 R + .587 G + .114 B, U = 128 - .1687 R - .3313 G + .5 B,
    // V = 128 + .5 R - .4187 G - .0813 B.
    for (colour, yuv) in [
        ("0xFF0000", (76, 85, 255)),
        ("0x00FF00", (150, 44, 21)),
        ("0x0000FF", (29, 255, 107)),
        ("0xFFFFFF", (255, 128, 128)),
        ("0x000000", (0, 128, 128)),
    ] {
        let jpeg = solid_jpeg(colour, w, h);
        assert_eq!(&jpeg[..2], [0xFF, 0xD8], "ffmpeg made a JPEG");
        let mut out = vec![0u8; w * h * 3 / 2];
        mjpeg_to_i420(&jpeg, w, h, &mut out).unwrap_or_else(|e| panic!("{colour}: {e}"));
        let (y, chroma) = out.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        for (plane, values, want) in [("Y", y, yuv.0), ("U", u, yuv.1), ("V", v, yuv.2)] {
            assert!(
                values.iter().all(|&p| close(p, want)),
                "{colour}: {plane} should be about {want}, got {values:?}"
            );
        }
    }
}

#[test]
fn a_picture_decodes_to_the_luma_ffmpeg_decodes() {
    let (w, h) = (64, 48);
    let dir = scratch();
    let (jpg, raw) = (dir.join("testsrc.jpg"), dir.join("testsrc.yuv"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size={w}x{h}"),
        "-frames:v",
        "1",
        jpg.to_str().unwrap(),
    ]);
    // ffmpeg's own decode of the same file: the luma we must get.
    ffmpeg(&[
        "-i",
        jpg.to_str().unwrap(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuvj420p",
        raw.to_str().unwrap(),
    ]);
    let reference = std::fs::read(&raw).unwrap();
    let mut out = vec![0u8; w * h * 3 / 2];
    mjpeg_to_i420(&std::fs::read(&jpg).unwrap(), w, h, &mut out).unwrap();
    let diffs: Vec<u32> = out[..w * h]
        .iter()
        .zip(&reference[..w * h])
        .map(|(a, b)| u32::from(a.abs_diff(*b)))
        .collect();
    let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
    let worst = *diffs.iter().max().unwrap();
    assert!(
        mean < 2.0 && worst <= 12,
        "luma differs from ffmpeg's: mean {mean:.2}, worst {worst}"
    );
}

#[test]
fn a_jpeg_of_the_wrong_size_or_a_broken_one_is_refused() {
    let jpeg = solid_jpeg("0x808080", 16, 16);
    let mut out = vec![0u8; 32 * 16 * 3 / 2];
    let err = mjpeg_to_i420(&jpeg, 32, 16, &mut out).unwrap_err();
    assert_eq!(err, "MJPEG frame is 16x16, expected 32x16");
    let err = mjpeg_to_i420(&jpeg[..jpeg.len() / 2], 16, 16, &mut out).unwrap_err();
    assert!(err.starts_with("bad MJPEG frame"), "{err}");
}

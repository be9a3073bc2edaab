//! Video files as sources, replayed in a loop at the configured frame rate:
//!
//! - [`Y4mSource`]: raw YUV4MPEG2 (`.y4m`, 4:2:0), encoded like a camera's raw frames;
//! - [`AnnexBSource`]: raw H.264 Annex B (`.h264`, `.264`), passed through without
//!   decoding or encoding, SPS/PPS put in front of every IDR.
//!
//! Both are read with `camera = "file:PATH"` (or `--camera file:PATH`); they make the
//! pipeline testable end to end, and benchmarkable, without a camera.

use super::{EncodedSource, SourceError, VideoSource};
use crate::video::frame::{now_us, EncodedFrame, Frame};
use crate::video::h264::{is_keyframe, split_access_units, ParameterSets};
use bytes::Bytes;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The largest H.264 file loaded (it is held in memory).
pub const MAX_H264_FILE: u64 = 1 << 30;

fn file_error(path: &Path, reason: impl std::fmt::Display) -> SourceError {
    SourceError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// What a [`Y4mSource`] reads from: a buffered file, or bytes in memory.
trait Input: BufRead + Seek + Send {}

impl<T: BufRead + Seek + Send> Input for T {}

/// A YUV4MPEG2 file of 4:2:0 frames, looped.
pub struct Y4mSource {
    name: String,
    path: PathBuf,
    reader: Box<dyn Input>,
    width: usize,
    height: usize,
    data_start: u64,
    next: u32,
    fps: Option<(u32, u32)>,
}

impl Y4mSource {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| file_error(path, e))?;
        Self::from_reader(
            format!("file:{}", path.display()),
            path.to_owned(),
            Box::new(BufReader::new(file)),
        )
    }

    /// Reads a whole YUV4MPEG2 stream held in memory; `name` stands for the file in
    /// errors and logs.
    pub fn from_bytes(name: &str, data: Vec<u8>) -> Result<Self, SourceError> {
        Self::from_reader(
            name.to_owned(),
            PathBuf::from(name),
            Box::new(Cursor::new(data)),
        )
    }

    fn from_reader(
        name: String,
        path: PathBuf,
        mut reader: Box<dyn Input>,
    ) -> Result<Self, SourceError> {
        let path = path.as_path();
        let mut header = Vec::new();
        (&mut reader)
            .take(1024)
            .read_until(b'\n', &mut header)
            .map_err(|e| file_error(path, e))?;
        let header = std::str::from_utf8(&header)
            .ok()
            .and_then(|h| h.strip_suffix('\n'))
            .ok_or_else(|| file_error(path, "no YUV4MPEG2 header line"))?;
        let mut words = header.split(' ');
        if words.next() != Some("YUV4MPEG2") {
            return Err(file_error(path, "not a YUV4MPEG2 file"));
        }
        let (mut width, mut height, mut fps) = (0usize, 0usize, None);
        for word in words {
            // The tag is one character, which need not be ASCII in a hostile file.
            let mut chars = word.chars();
            let tag = chars.next();
            let value = chars.as_str();
            match tag {
                Some('W') => width = value.parse().unwrap_or(0),
                Some('H') => height = value.parse().unwrap_or(0),
                Some('F') => {
                    fps = value
                        .split_once(':')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                        .filter(|(a, b)| *a > 0 && *b > 0);
                }
                Some('C') if !value.starts_with("420") => {
                    return Err(file_error(
                        path,
                        format!("colour space C{value} is not supported (only 4:2:0)"),
                    ))
                }
                Some('I') if !matches!(value, "p" | "?") => {
                    return Err(file_error(path, "interlaced files are not supported"))
                }
                _ => {}
            }
        }
        if width == 0
            || height == 0
            || width % 2 != 0
            || height % 2 != 0
            || width > 8192
            || height > 8192
        {
            return Err(file_error(
                path,
                format!("frame size {width}x{height} must be even and at most 8192x8192"),
            ));
        }
        let data_start = reader.stream_position().map_err(|e| file_error(path, e))?;
        Ok(Self {
            name,
            path: path.to_owned(),
            reader,
            width,
            height,
            data_start,
            next: 0,
            fps,
        })
    }

    /// The frame rate the header declares, as (numerator, denominator).
    pub fn fps(&self) -> Option<(u32, u32)> {
        self.fps
    }

    /// Reads one `FRAME` into `data`; `Ok(false)` at the end of the file.
    fn read_frame(&mut self, data: &mut [u8]) -> Result<bool, SourceError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(256)
            .read_until(b'\n', &mut line)
            .map_err(|e| file_error(&self.path, e))?;
        if n == 0 {
            return Ok(false);
        }
        if !line.starts_with(b"FRAME") || line.last() != Some(&b'\n') {
            return Err(file_error(&self.path, "a frame does not start with FRAME"));
        }
        match self.reader.read_exact(data) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(file_error(&self.path, e)),
        }
    }
}

impl VideoSource for Y4mSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
        if frame.width != self.width || frame.height != self.height {
            *frame = Frame::new(self.width, self.height);
        }
        if !self.read_frame(&mut frame.data)? {
            // Loop: back to the first frame.
            self.reader
                .seek(SeekFrom::Start(self.data_start))
                .map_err(|e| file_error(&self.path, e))?;
            if !self.read_frame(&mut frame.data)? {
                return Err(file_error(&self.path, "holds no complete frame"));
            }
        }
        frame.number = self.next;
        frame.captured = Instant::now();
        frame.capture_us = now_us();
        self.next = self.next.wrapping_add(1);
        Ok(())
    }
}

/// Writes frames as a YUV4MPEG2 file (for recordings and tests).
pub fn write_y4m(out: &mut impl std::io::Write, frames: &[Frame], fps: u32) -> std::io::Result<()> {
    let Some(first) = frames.first() else {
        return Ok(());
    };
    writeln!(
        out,
        "YUV4MPEG2 W{} H{} F{fps}:1 Ip A1:1 C420jpeg",
        first.width, first.height
    )?;
    for frame in frames {
        out.write_all(b"FRAME\n")?;
        out.write_all(&frame.data)?;
    }
    Ok(())
}

/// A raw H.264 Annex B file, looped from its first keyframe, passed through.
pub struct AnnexBSource {
    name: String,
    units: Vec<(Bytes, bool)>,
    first_key: usize,
    next: usize,
    number: u32,
    size: (usize, usize),
}

impl AnnexBSource {
    /// Loads `path` and splits it into access units.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let len = std::fs::metadata(path)
            .map_err(|e| file_error(path, e))?
            .len();
        if len > MAX_H264_FILE {
            return Err(file_error(
                path,
                format!("larger than {MAX_H264_FILE} bytes"),
            ));
        }
        let data = std::fs::read(path).map_err(|e| file_error(path, e))?;
        Self::from_bytes(&format!("file:{}", path.display()), &data)
            .map_err(|reason| file_error(path, reason))
    }

    /// Splits an in-memory Annex B stream.
    pub fn from_bytes(name: &str, data: &[u8]) -> Result<Self, String> {
        let mut sets = ParameterSets::default();
        let units: Vec<(Bytes, bool)> = split_access_units(data)
            .iter()
            .map(|au| {
                let key = is_keyframe(au);
                (Bytes::from(sets.complete(au)), key)
            })
            .collect();
        let first_key = units
            .iter()
            .position(|(_, key)| *key)
            .ok_or("holds no H.264 keyframe (IDR)")?;
        let (w, h) = sets
            .size()
            .ok_or("holds no readable sequence parameter set (SPS)")?;
        Ok(Self {
            name: name.to_owned(),
            units,
            first_key,
            next: first_key,
            number: 0,
            size: (w as usize, h as usize),
        })
    }

    /// Access units in the file.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when the file holds no access unit (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

impl EncodedSource for AnnexBSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> (usize, usize) {
        self.size
    }

    fn next_frame(&mut self) -> Result<EncodedFrame, SourceError> {
        let (data, keyframe) = self.units[self.next].clone();
        self.next += 1;
        if self.next == self.units.len() {
            self.next = self.first_key;
        }
        let frame = EncodedFrame {
            data,
            keyframe,
            number: self.number,
            capture_us: now_us(),
            captured: Instant::now(),
            // A camera's own H.264 has one temporal layer.
            temporal_layer: 0,
        };
        self.number = self.number.wrapping_add(1);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::source::test_pattern::TestPattern;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rtcbot-files-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn pattern_frames(n: usize) -> Vec<Frame> {
        TestPattern::new(320, 240).unwrap().record(n).unwrap()
    }

    #[test]
    fn y4m_frames_come_back_exactly_and_loop() {
        let frames = pattern_frames(3);
        let path = dir().join("clip.y4m");
        let mut file = File::create(&path).unwrap();
        write_y4m(&mut file, &frames, 30).unwrap();
        drop(file);
        let mut src = Y4mSource::open(&path).unwrap();
        assert_eq!(src.size(), (320, 240));
        assert_eq!(src.fps(), Some((30, 1)));
        let mut f = Frame::new(2, 2);
        for i in 0..7 {
            src.capture(&mut f).unwrap();
            assert_eq!(f.data, frames[i % 3].data, "frame {i}");
            assert_eq!(f.number, i as u32);
        }
    }

    #[test]
    fn bad_y4m_files_get_clear_errors() {
        let d = dir();
        let cases: [(&[u8], &str); 5] = [
            (b"P6\n", "not a YUV4MPEG2 file"),
            (b"YUV4MPEG2 W3 H2\n", "frame size 3x2"),
            (b"YUV4MPEG2 W4 H2 C444\n", "only 4:2:0"),
            (b"YUV4MPEG2 W4 H2", "no YUV4MPEG2 header line"),
            (b"YUV4MPEG2 W4 H2 It\n", "interlaced"),
        ];
        for (i, (bytes, expected)) in cases.into_iter().enumerate() {
            let path = d.join(format!("bad{i}.y4m"));
            std::fs::write(&path, bytes).unwrap();
            let err = Y4mSource::open(&path).err().expect("refused").to_string();
            assert!(err.contains(expected), "{err}");
        }
        let path = d.join("empty.y4m");
        std::fs::write(&path, b"YUV4MPEG2 W4 H2\nFRAME\n12").unwrap();
        let mut src = Y4mSource::open(&path).unwrap();
        let err = src.capture(&mut Frame::new(4, 2)).unwrap_err().to_string();
        assert!(err.contains("no complete frame"), "{err}");
        let missing = Y4mSource::open(Path::new("/nonexistent.y4m"))
            .err()
            .unwrap();
        assert!(missing.to_string().contains("/nonexistent.y4m"));
    }

    #[test]
    fn y4m_from_bytes_reads_like_a_file() {
        let frames = pattern_frames(2);
        let mut bytes = Vec::new();
        write_y4m(&mut bytes, &frames, 25).unwrap();
        let mut src = Y4mSource::from_bytes("memory.y4m", bytes).unwrap();
        assert_eq!((src.name(), src.size()), ("memory.y4m", (320, 240)));
        let mut f = Frame::new(2, 2);
        for i in 0..3 {
            src.capture(&mut f).unwrap();
            assert_eq!(f.data, frames[i % 2].data, "frame {i}");
        }
        let err = Y4mSource::from_bytes("x.y4m", b"P5\n".to_vec())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "video file x.y4m: not a YUV4MPEG2 file");
    }

    /// Found writing the `y4m` fuzz target: a header word starting with a multi-byte
    /// character made `split_at(1)` panic off a char boundary.
    #[test]
    fn a_non_ascii_header_tag_is_skipped_not_a_panic() {
        let mut bytes = b"YUV4MPEG2 W4 H2 \xC3\xA9x \xE2\x82\xAC\nFRAME\n".to_vec();
        bytes.extend_from_slice(&[7; 12]);
        let mut src = Y4mSource::from_bytes("odd.y4m", bytes).unwrap();
        assert_eq!(src.size(), (4, 2));
        let mut f = Frame::new(4, 2);
        src.capture(&mut f).unwrap();
        assert_eq!(f.data, [7; 12]);
        let err = Y4mSource::from_bytes("odd.y4m", "YUV4MPEG2 \u{e9}\n".into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("frame size 0x0"), "{err}");
    }

    #[test]
    fn annexb_replays_access_units_with_keyframes_flagged() {
        let mut stream = Vec::new();
        let mut originals = Vec::new();
        for out in crate::video::encoder::recorded_pictures(7, 3) {
            stream.extend_from_slice(&out.data);
            originals.push((out.data, out.keyframe));
        }
        let path = dir().join("clip.h264");
        std::fs::write(&path, &stream).unwrap();
        let mut src = AnnexBSource::open(&path).unwrap();
        assert_eq!((src.len(), src.size()), (7, (320, 240)));
        for i in 0..10 {
            let out = src.next_frame().unwrap();
            let (_, key) = &originals[i % 7];
            assert_eq!(out.keyframe, *key, "frame {i}");
            assert_eq!(
                crate::video::h264::split_nals(&out.data),
                crate::video::h264::split_nals(&originals[i % 7].0)
            );
        }
        let err = AnnexBSource::from_bytes("x", &[0, 0, 1, 0x41, 0x9A])
            .err()
            .unwrap();
        assert!(err.contains("no H.264 keyframe"), "{err}");
    }

    /// Runs `ffmpeg` quietly with `args`; fails the test, saying how to get it, when
    /// ffmpeg is not installed (scripts/test.sh installs it).
    fn ffmpeg(args: &[&str]) {
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run ffmpeg ({e}): these tests need it to make independent \
                     video files; install it (apt-get install ffmpeg)"
                )
            });
        assert!(
            out.status.success(),
            "ffmpeg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn reads_a_y4m_file_made_by_ffmpeg() {
        let d = dir();
        let (y4m, raw) = (d.join("ffmpeg.y4m"), d.join("ffmpeg.yuv"));
        let input = [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10",
            "-frames:v",
            "3",
        ];
        let y4m_args = ["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe"];
        ffmpeg(&[&input[..], &y4m_args[..], &[y4m.to_str().unwrap()]].concat());
        // The same pictures as bare I420 bytes: what each frame must hold.
        let raw_args = ["-pix_fmt", "yuv420p", "-f", "rawvideo"];
        ffmpeg(&[&input[..], &raw_args[..], &[raw.to_str().unwrap()]].concat());
        let raw = std::fs::read(&raw).unwrap();
        let frame_len = 64 * 48 * 3 / 2;
        assert_eq!(raw.len(), 3 * frame_len, "ffmpeg's raw frames");

        let mut src = Y4mSource::open(&y4m).unwrap();
        assert_eq!(src.size(), (64, 48));
        assert_eq!(src.fps(), Some((10, 1)));
        let mut f = Frame::new(2, 2);
        for i in 0..5 {
            src.capture(&mut f).unwrap();
            let want = &raw[(i % 3) * frame_len..(i % 3 + 1) * frame_len];
            assert!(f.data == want, "frame {i} differs from ffmpeg's raw frame");
            assert_eq!(f.number, i as u32);
        }
    }

    #[test]
    fn ffmpeg_reads_the_y4m_files_we_write() {
        let frames = pattern_frames(3);
        let d = dir();
        let (y4m, raw) = (d.join("ours.y4m"), d.join("ours.yuv"));
        let mut file = File::create(&y4m).unwrap();
        write_y4m(&mut file, &frames, 15).unwrap();
        drop(file);
        ffmpeg(&[
            "-i",
            y4m.to_str().unwrap(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            raw.to_str().unwrap(),
        ]);
        let raw = std::fs::read(&raw).unwrap();
        let want: Vec<u8> = frames.iter().flat_map(|f| f.data.iter().copied()).collect();
        assert_eq!(
            raw.len(),
            want.len(),
            "ffmpeg read a different number of bytes"
        );
        assert!(raw == want, "ffmpeg decoded other pixels than we wrote");
    }
}

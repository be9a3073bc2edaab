//! Choosing a capture format (pure, unit-tested): what a device offers, which format
//! is cheapest, which devices `auto` may use, and the `cameras` listing's text.

use std::path::PathBuf;

/// Capture formats the robot can use, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PixelFormat {
    /// H.264 from the camera's own encoder: passed through.
    H264,
    /// Motion JPEG: decoded, then encoded.
    Mjpeg,
    /// Planar 4:2:0 (`YU12`), the encoder's own layout.
    Yuv420,
    /// Semi-planar 4:2:0 (`NV12`).
    Nv12,
    /// Packed 4:2:2 (`YUYV`).
    Yuyv,
}

impl PixelFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::H264 => *b"H264",
            Self::Mjpeg => *b"MJPG",
            Self::Yuv420 => *b"YU12",
            Self::Nv12 => *b"NV12",
            Self::Yuyv => *b"YUYV",
        }
    }

    /// The format for a four-character code, if the robot can use it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        [
            Self::H264,
            Self::Mjpeg,
            Self::Yuv420,
            Self::Nv12,
            Self::Yuyv,
        ]
        .into_iter()
        .find(|f| f.fourcc() == code)
        .or(match &code {
            b"JPEG" => Some(Self::Mjpeg),
            _ => None,
        })
    }
}

/// One size a device offers in one format, with its frame rates.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOption {
    /// The four-character code, as the device reports it.
    pub fourcc: [u8; 4],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates offered at this size.
    pub fps: Vec<f64>,
}

/// What [`negotiate`] picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate to ask for.
    pub fps: f64,
}

/// Picks a capture format: the cheapest usable format, then the size closest to
/// `want` (exact, else the smallest larger one, else the largest), then the rate
/// closest to `fps` (at least `fps` when offered). `None` when nothing is usable.
pub fn negotiate(options: &[FormatOption], want: (u32, u32), fps: f64) -> Option<Choice> {
    let format = options
        .iter()
        .filter_map(|o| PixelFormat::from_fourcc(o.fourcc))
        .min()?;
    let sizes: Vec<&FormatOption> = options
        .iter()
        .filter(|o| PixelFormat::from_fourcc(o.fourcc) == Some(format))
        .filter(|o| o.width % 2 == 0 && o.height % 2 == 0 && o.width > 0 && o.height > 0)
        .collect();
    let area = |o: &FormatOption| u64::from(o.width) * u64::from(o.height);
    let covers = |o: &&&FormatOption| o.width >= want.0 && o.height >= want.1;
    let best = sizes
        .iter()
        .find(|o| (o.width, o.height) == want)
        .or_else(|| sizes.iter().filter(covers).min_by_key(|o| area(o)))
        .or_else(|| sizes.iter().max_by_key(|o| area(o)))?;
    let rate = best
        .fps
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r > 0.0)
        .min_by(|a, b| {
            // Prefer rates at or above the wanted one, then the closest.
            let key = |r: f64| ((r < fps - 1e-6) as u8, (r - fps).abs());
            key(*a)
                .partial_cmp(&key(*b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(fps);
    Some(Choice {
        format,
        width: best.width,
        height: best.height,
        fps: rate,
    })
}

/// One capture device and what it offers.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraInfo {
    /// Device path.
    pub path: PathBuf,
    /// The driver's name for it.
    pub name: String,
    /// Where it is attached (`usb-...`, `platform:...`).
    pub bus: String,
    /// Every format, size and rate.
    pub options: Vec<FormatOption>,
}

/// The `cameras` subcommand's text: one block per device, or "no camera found".
pub fn describe_cameras(cameras: &[CameraInfo]) -> String {
    if cameras.is_empty() {
        return "no camera found (no V4L2 capture device under /dev/video*); \
                the robot will stream the test pattern\n"
            .into();
    }
    let mut out = String::new();
    for cam in cameras {
        out.push_str(&format!("{} ({})\n", cam.path.display(), cam.name));
        for o in &cam.options {
            let code = String::from_utf8_lossy(&o.fourcc).into_owned();
            let usable = if PixelFormat::from_fourcc(o.fourcc).is_some() {
                ""
            } else {
                " (not usable)"
            };
            let rates: Vec<String> = o.fps.iter().map(|r| format!("{r:.0}")).collect();
            out.push_str(&format!(
                "  {code} {}x{} @ {} fps{usable}\n",
                o.width,
                o.height,
                rates.join("/")
            ));
        }
    }
    out
}

/// Whether `auto` may pick this device: not an ISP or codec node (a Pi exposes many
/// capture-capable nodes that are not cameras), and offering a usable format.
pub fn is_auto_candidate(cam: &CameraInfo, want: (u32, u32), fps: u32) -> bool {
    let name = cam.name.to_ascii_lowercase();
    let not_a_camera = ["isp", "codec", "pispbe", "rpivid", "hevc"]
        .iter()
        .any(|w| name.contains(w));
    !not_a_camera && negotiate(&cam.options, want, f64::from(fps)).is_some()
}

/// Capture devices `auto` may use, USB cameras first.
pub fn auto_candidates(cameras: Vec<CameraInfo>, want: (u32, u32), fps: u32) -> Vec<PathBuf> {
    let mut usable: Vec<CameraInfo> = cameras
        .into_iter()
        .filter(|c| is_auto_candidate(c, want, fps))
        .collect();
    usable.sort_by_key(|c| !c.bus.starts_with("usb"));
    usable.into_iter().map(|c| c.path).collect()
}

/// A format option, for tests.
#[cfg(test)]
pub(crate) fn opt(code: &[u8; 4], width: u32, height: u32, fps: &[f64]) -> FormatOption {
    FormatOption {
        fourcc: *code,
        width,
        height,
        fps: fps.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_cheap_formats_then_close_sizes_and_rates() {
        let webcam = [
            opt(b"YUYV", 640, 480, &[30.0, 15.0]),
            opt(b"YUYV", 1280, 720, &[10.0]),
            opt(b"MJPG", 640, 480, &[30.0]),
            opt(b"MJPG", 1920, 1080, &[30.0]),
        ];
        let c = negotiate(&webcam, (640, 480), 30.0).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.fps),
            (PixelFormat::Mjpeg, 640, 480, 30.0)
        );
        // Add H.264 (Pi camera, C920...): passed through, even at another size.
        let mut with_h264 = webcam.to_vec();
        with_h264.push(opt(b"H264", 1280, 720, &[60.0, 30.0, 15.0]));
        with_h264.push(opt(b"H264", 1920, 1080, &[30.0]));
        let c = negotiate(&with_h264, (640, 480), 25.0).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.fps),
            (PixelFormat::H264, 1280, 720, 30.0)
        );
        // Raw only: YUV420 beats NV12 beats YUYV.
        let raw = [
            opt(b"YUYV", 640, 480, &[30.0]),
            opt(b"NV12", 640, 480, &[30.0]),
            opt(b"YU12", 640, 480, &[30.0]),
        ];
        assert_eq!(
            negotiate(&raw, (640, 480), 30.0).unwrap().format,
            PixelFormat::Yuv420
        );
        assert_eq!(
            negotiate(&raw[..2], (640, 480), 30.0).unwrap().format,
            PixelFormat::Nv12
        );
        // Nothing big enough: the largest; a rate below the wanted one when that is all.
        let small = [
            opt(b"YUYV", 320, 240, &[15.0]),
            opt(b"YUYV", 160, 120, &[30.0]),
        ];
        let c = negotiate(&small, (640, 480), 30.0).unwrap();
        assert_eq!((c.width, c.height, c.fps), (320, 240, 15.0));
        // Unusable formats only: nothing.
        assert_eq!(
            negotiate(&[opt(b"RGB3", 640, 480, &[30.0])], (640, 480), 30.0),
            None
        );
        assert_eq!(negotiate(&[], (640, 480), 30.0), None);
    }

    #[test]
    fn listing_says_when_nothing_is_there_and_what_each_device_offers() {
        assert!(describe_cameras(&[]).contains("no camera found"));
        let text = describe_cameras(&[CameraInfo {
            path: "/dev/video0".into(),
            name: "USB cam".into(),
            bus: "usb-0000:01:00.0-1.3".into(),
            options: vec![
                opt(b"MJPG", 640, 480, &[30.0, 15.0]),
                opt(b"RGB3", 640, 480, &[30.0]),
            ],
        }]);
        assert!(text.contains("/dev/video0 (USB cam)"));
        assert!(text.contains("MJPG 640x480 @ 30/15 fps"));
        assert!(text.contains("RGB3 640x480 @ 30 fps (not usable)"));
    }

    #[test]
    fn auto_skips_isp_and_codec_nodes_and_prefers_usb() {
        let cam = |path: &str, name: &str, bus: &str, code: &[u8; 4]| CameraInfo {
            path: path.into(),
            name: name.into(),
            bus: bus.into(),
            options: vec![opt(code, 640, 480, &[30.0])],
        };
        let found = vec![
            cam("/dev/video0", "unicam", "platform:fe801000.csi", b"pRAA"),
            cam(
                "/dev/video1",
                "mmal service",
                "platform:bcm2835-camera",
                b"YU12",
            ),
            cam(
                "/dev/video14",
                "bcm2835-isp",
                "platform:bcm2835-isp",
                b"YU12",
            ),
            cam("/dev/video2", "HD Webcam", "usb-0000:01:00.0-1.2", b"MJPG"),
        ];
        assert_eq!(
            auto_candidates(found, (640, 480), 30),
            [PathBuf::from("/dev/video2"), PathBuf::from("/dev/video1")]
        );
    }
}

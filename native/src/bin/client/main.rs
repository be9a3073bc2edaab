//! `rtcbot-client`: watch and drive a robot from a desktop, without a browser.
//!
//! ```sh
//! rtcbot-client view http://robot:8080/?token=…          # a window; WASD, arrows, a gamepad
//! rtcbot-client drive http://robot:8080 --token …        # keys in this terminal
//! rtcbot-client snapshot http://robot:8080 frame.png     # one decoded picture
//! rtcbot-client record http://robot:8080 clip.mp4 --seconds 10   # H.264 as sent
//! ```
//!
//! The URL is the robot's address (as its start-up block prints it), its `/connect`,
//! or a relay room's URL. A thin shell over the library's
//! [`RobotClient`](rtcbot::RobotClient).

mod drive;
mod font;
mod gamepad;
mod mp4;
mod target;
mod term;
mod view;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rtcbot::RobotClient;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use target::{connect_url, Connection};

/// How long snapshot and record wait for the connection and the first picture.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(
    name = "rtcbot-client",
    version,
    about = "Watch and drive an rtcbot-rs robot from a desktop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A window with the robot's video; drive with W/A/S/D, the arrows or a gamepad.
    View {
        /// The robot (`http://robot:8080`, with `?token=` if you like) or a relay room.
        url: String,
        #[command(flatten)]
        connection: Connection,
        /// Quit after this many seconds (default: when the window closes).
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Drive with the keys in this terminal (no video).
    Drive {
        /// The robot or a relay room.
        url: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Save one decoded picture as a PNG.
    Snapshot {
        /// The robot or a relay room.
        url: String,
        /// The PNG file to write.
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// Save the robot's H.264 into an MP4 file, as sent (no re-encoding).
    Record {
        /// The robot or a relay room.
        url: String,
        /// The MP4 file to write.
        file: PathBuf,
        /// How long to record, from the first keyframe.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[command(flatten)]
        connection: Connection,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The window lives on the main thread (as X11 and macOS want); the connection on
    // the runtime's threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::View {
            url,
            connection,
            seconds,
        } => view::run(
            runtime,
            connect_url(&url)?,
            connection,
            seconds.map(Duration::from_secs_f64),
        ),
        Command::Drive { url, connection } => runtime.block_on(async {
            let client = connect(&url, &connection, false).await?;
            let result = term::drive(&client).await;
            client.close().await;
            result
        }),
        Command::Snapshot {
            url,
            file,
            connection,
        } => runtime.block_on(snapshot(&url, &connection, &file)),
        Command::Record {
            url,
            file,
            seconds,
            connection,
        } => {
            if !(seconds > 0.0 && seconds.is_finite()) {
                bail!("--seconds must be more than 0, not {seconds}");
            }
            runtime.block_on(record(&url, &connection, &file, seconds))
        }
    }
}

/// Connects to what the user typed, within [`WAIT`].
async fn connect(url: &str, connection: &Connection, video: bool) -> anyhow::Result<RobotClient> {
    let target = connect_url(url)?;
    let options = connection.options(video)?;
    tokio::time::timeout(WAIT, RobotClient::connect(&target, options))
        .await
        .with_context(|| format!("no connection to {target} within {WAIT:?}"))?
        .with_context(|| format!("connecting to {target}"))
}

async fn snapshot(url: &str, connection: &Connection, file: &Path) -> anyhow::Result<()> {
    let mut client = connect(url, connection, true).await?;
    let mut pictures = client.pictures()?;
    let picture = tokio::time::timeout(WAIT, pictures.next_picture())
        .await
        .with_context(|| format!("no picture within {WAIT:?}"))?
        .context("the video ended before a picture decoded")?;
    client.close().await;
    write_png(file, picture.width(), picture.height(), &picture.rgb())?;
    let stamp = match (picture.stamp(), picture.latency()) {
        (Some(s), Some(l)) => format!(", frame {}, {:.1} ms after capture", s.frame, ms(l)),
        _ => String::new(),
    };
    println!(
        "saved a {}x{} picture{stamp} to {}",
        picture.width(),
        picture.height(),
        file.display()
    );
    Ok(())
}

/// Writes 8-bit RGB pixels as a PNG.
fn write_png(file: &Path, width: usize, height: usize, rgb: &[u8]) -> anyhow::Result<()> {
    let out =
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(out), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}

async fn record(
    url: &str,
    connection: &Connection,
    file: &Path,
    seconds: f64,
) -> anyhow::Result<()> {
    let mut client = connect(url, connection, true).await?;
    let mut video = client.take_video().context("the client has no video")?;
    let out =
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let mut recorder = mp4::Recorder::new(std::io::BufWriter::new(out));
    let length = Duration::from_secs_f64(seconds);
    let mut started: Option<Instant> = None;
    let mut asked = false;
    loop {
        let deadline = started.map_or(WAIT, |s| length.saturating_sub(s.elapsed()));
        let frame = match tokio::time::timeout(deadline, video.recv()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) if started.is_some() => break,
            Err(_) => bail!("no keyframe within {WAIT:?}"),
        };
        if started.is_some_and(|s| frame.received.saturating_duration_since(s) >= length) {
            break;
        }
        if recorder.push(&frame.data, frame.received)? {
            started.get_or_insert(frame.received);
        } else if !asked {
            // Joined between keyframes: ask for one rather than wait.
            asked = client.request_keyframe().await.is_ok();
        }
    }
    client.close().await;
    let (width, height) = recorder.size();
    let frames = recorder.finish()?;
    println!(
        "recorded {frames} frames ({width}x{height}, H.264 as sent) to {}",
        file.display()
    );
    Ok(())
}

/// A duration in milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

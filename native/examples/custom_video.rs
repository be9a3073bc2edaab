//! RTCBot's "Streaming Video" with frames the program computes: a [`VideoSource`] that
//! draws moving colour waves (instead of a camera), encoded once for every viewer.
//!
//! ```sh
//! cargo run -p rtcbot-native --example custom_video          # http://localhost:8080
//! ```

use rtcbot::video::{now_us, Frame, SourceError, VideoSource};
use rtcbot::{Config, Robot};
use std::time::Instant;

/// Colour waves that move a little every frame.
struct Waves {
    width: usize,
    height: usize,
    next: u32,
}

impl VideoSource for Waves {
    fn name(&self) -> &str {
        "waves"
    }

    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
        let (w, h) = (self.width, self.height);
        let t = self.next as f32 * 0.1;
        frame.width = w;
        frame.height = h;
        frame.data.resize(w * h * 3 / 2, 0);
        let (luma, chroma) = frame.data.split_at_mut(w * h);
        for (y, row) in luma.chunks_mut(w).enumerate() {
            for (x, px) in row.iter_mut().enumerate() {
                let v = ((x as f32 * 0.05 + t).sin() + (y as f32 * 0.07 - t).cos()) * 50.0;
                *px = (128.0 + v) as u8;
            }
        }
        let (u, v) = chroma.split_at_mut(w * h / 4);
        for (i, (u, v)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
            let x = (i % (w / 2)) as f32;
            *u = (128.0 + 60.0 * (x * 0.03 + t).sin()) as u8;
            *v = (128.0 + 60.0 * (x * 0.02 - t).cos()) as u8;
        }
        frame.number = self.next;
        frame.capture_us = now_us();
        frame.captured = Instant::now();
        self.next += 1;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or("0.0.0.0:8080".into());
    let config = Config::default();
    let (width, height) = (config.video.width as usize, config.video.height as usize);
    let robot = Robot::builder(config)
        .video(Waves {
            width,
            height,
            next: 0,
        })
        .start()?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    rtcbot::serve(listener, robot, rtcbot::shutdown_signal()).await?;
    Ok(())
}

//! The robot's sound, encoded once for every listener.
//!
//! One thread reads the [`AudioSource`] and encodes each 20 ms block with Opus while
//! at least one [`Listener`] exists, and publishes each [`EncodedAudio`] to all of
//! them through a broadcast channel, as [`crate::video::stream`] does for frames: 8
//! listeners cost one encode ([`AudioCounters::encoders_started`],
//! [`AudioCounters::frames_encoded`]). With no listener it waits, and the source is
//! told to resume when one comes back. A listener that falls behind skips what it
//! missed (audio is latest-first: late sound is worse than a gap).
//!
//! A source that fails is retried every second; after [`MAX_FAILURES`] failures in
//! a row the stream ends and says why ([`AudioStream::ended`]). Video and control
//! never notice.

use super::codec::OpusEncoder;
use super::source::AudioSource;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Packets buffered per listener before it counts as behind (160 ms).
const CHANNEL_PACKETS: usize = 8;
/// Source failures in a row after which the stream ends.
pub const MAX_FAILURES: u32 = 5;

/// One Opus packet of 20 ms.
#[derive(Debug, Clone)]
pub struct EncodedAudio {
    /// The Opus packet.
    pub data: Bytes,
    /// When its last sample was captured.
    pub captured: Instant,
    /// Its first sample's wall-clock time, microseconds since the Unix epoch.
    pub wall_us: u64,
}

/// Counters of the stream since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioCounters {
    /// Opus encoders created (one per stream however many listeners).
    pub encoders_started: u64,
    /// Blocks encoded.
    pub frames_encoded: u64,
    /// Encoded bytes.
    pub bytes_encoded: u64,
    /// Time spent reading and encoding, nanoseconds (reading a paced source's wait
    /// excluded).
    pub encode_ns: u64,
    /// Source errors (each logged).
    pub source_errors: u64,
    /// Listeners right now.
    pub listeners: u64,
}

#[derive(Default)]
struct Counters {
    encoders_started: AtomicU64,
    frames_encoded: AtomicU64,
    bytes_encoded: AtomicU64,
    encode_ns: AtomicU64,
    source_errors: AtomicU64,
}

struct Inner {
    packets: broadcast::Sender<Arc<EncodedAudio>>,
    counters: Counters,
    listeners: Mutex<u64>,
    wake: Condvar,
    stopped: AtomicBool,
    name: String,
    /// Set once the thread ended (`Some(why)` when it failed).
    ended: watch::Sender<Option<Option<String>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Handle to the running audio stream; cheap to clone.
#[derive(Clone)]
pub struct AudioStream {
    inner: Arc<Inner>,
}

impl AudioStream {
    /// Starts the stream's thread for `source`, encoding at `bitrate_kbps`; it idles
    /// until the first listener.
    pub fn start(source: Box<dyn AudioSource>, bitrate_kbps: u32) -> Self {
        let inner = Arc::new(Inner {
            packets: broadcast::channel(CHANNEL_PACKETS).0,
            counters: Counters::default(),
            listeners: Mutex::new(0),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
            name: source.name(),
            ended: watch::channel(None).0,
            thread: Mutex::new(None),
        });
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("audio-stream".into())
            .spawn(move || {
                let why = run(&thread_inner, source, bitrate_kbps).err();
                if let Some(why) = &why {
                    tracing::error!("{why}");
                }
                thread_inner.ended.send_replace(Some(why));
            })
            .expect("spawning the audio thread");
        *inner.thread.lock().expect("thread lock") = Some(thread);
        Self { inner }
    }

    /// Joins as a listener.
    pub fn subscribe(&self) -> Listener {
        let packets = self.inner.packets.subscribe();
        *self.inner.listeners.lock().expect("listeners lock") += 1;
        self.inner.wake.notify_all();
        Listener {
            packets,
            ended: self.inner.ended.subscribe(),
            inner: self.inner.clone(),
        }
    }

    /// The source's name, e.g. `tone`.
    pub fn source_name(&self) -> &str {
        &self.inner.name
    }

    /// Why the stream failed, once it did (`None` while it runs or after a stop).
    pub fn ended(&self) -> Option<String> {
        self.inner.ended.borrow().clone().flatten()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> AudioCounters {
        let c = &self.inner.counters;
        AudioCounters {
            encoders_started: c.encoders_started.load(Ordering::Relaxed),
            frames_encoded: c.frames_encoded.load(Ordering::Relaxed),
            bytes_encoded: c.bytes_encoded.load(Ordering::Relaxed),
            encode_ns: c.encode_ns.load(Ordering::Relaxed),
            source_errors: c.source_errors.load(Ordering::Relaxed),
            listeners: *self.inner.listeners.lock().expect("listeners lock"),
        }
    }

    /// Tells the thread to stop after its current block, without waiting for it.
    pub fn close(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }

    /// Stops the thread (after its current block) and waits for it.
    pub async fn stop(&self) {
        self.close();
        let thread = self.inner.thread.lock().expect("thread lock").take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// One listener of the stream.
pub struct Listener {
    packets: broadcast::Receiver<Arc<EncodedAudio>>,
    ended: watch::Receiver<Option<Option<String>>>,
    inner: Arc<Inner>,
}

impl Listener {
    /// The next packet; `None` once the stream ended. Packets a slow listener missed
    /// are skipped.
    pub async fn next(&mut self) -> Option<Arc<EncodedAudio>> {
        loop {
            tokio::select! {
                packet = self.packets.recv() => match packet {
                    Ok(packet) => return Some(packet),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.ended.wait_for(Option::is_some) => return None,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut listeners = self.inner.listeners.lock().expect("listeners lock");
        *listeners = listeners.saturating_sub(1);
    }
}

fn run(inner: &Inner, mut source: Box<dyn AudioSource>, bitrate_kbps: u32) -> Result<(), String> {
    let mut encoder: Option<OpusEncoder> = None;
    let mut failures = 0u32;
    let mut idle = true;
    loop {
        {
            let mut listeners = inner.listeners.lock().expect("listeners lock");
            while *listeners == 0 && !inner.stopped.load(Ordering::SeqCst) {
                idle = true;
                listeners = inner.wake.wait(listeners).expect("listeners lock");
            }
        }
        if inner.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        if idle {
            source.resume();
            idle = false;
        }
        let encoder = match &mut encoder {
            Some(encoder) => encoder,
            None => {
                let made =
                    OpusEncoder::new(bitrate_kbps).map_err(|e| format!("audio is off: {e}"))?;
                inner
                    .counters
                    .encoders_started
                    .fetch_add(1, Ordering::Relaxed);
                encoder.insert(made)
            }
        };
        let block = match source.read() {
            Ok(block) => {
                failures = 0;
                block
            }
            Err(err) => {
                failures += 1;
                inner.counters.source_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("audio source {}: {err}", inner.name);
                if failures >= MAX_FAILURES {
                    return Err(format!(
                        "audio is off: the source {} failed {failures} times in a row: {err}",
                        inner.name
                    ));
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let started = Instant::now();
        match encoder.encode(&block.samples) {
            Ok(data) => {
                let c = &inner.counters;
                c.encode_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                c.frames_encoded.fetch_add(1, Ordering::Relaxed);
                c.bytes_encoded
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                let _ = inner.packets.send(Arc::new(EncodedAudio {
                    data,
                    captured: block.captured,
                    wall_us: block.wall_us,
                }));
            }
            Err(err) => {
                inner.counters.source_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("audio block skipped: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::source::ToneSource;

    #[tokio::test]
    async fn listeners_share_one_encoder() {
        let stream = AudioStream::start(Box::new(ToneSource::default()), 32);
        assert_eq!(stream.counters().encoders_started, 0);
        let mut listeners: Vec<_> = (0..8).map(|_| stream.subscribe()).collect();
        for _ in 0..5 {
            for l in &mut listeners {
                let packet = tokio::time::timeout(Duration::from_secs(5), l.next())
                    .await
                    .expect("a packet within 5 s")
                    .expect("the stream runs");
                assert!(!packet.data.is_empty());
            }
        }
        let c = stream.counters();
        assert_eq!(c.encoders_started, 1);
        assert_eq!(c.listeners, 8);
        // Each packet was encoded once for all eight.
        assert!(c.frames_encoded >= 5 && c.frames_encoded < 5 + 8, "{c:?}");
        drop(listeners);
        assert_eq!(stream.counters().listeners, 0);
        stream.stop().await;
        assert_eq!(stream.source_name(), "tone");
    }

    struct Broken;

    impl AudioSource for Broken {
        fn name(&self) -> String {
            "broken".into()
        }
        fn read(&mut self) -> Result<super::super::source::AudioBlock, super::super::AudioError> {
            Err(super::super::AudioError::Device("unplugged".into()))
        }
    }

    #[tokio::test]
    async fn a_failing_source_ends_the_stream_with_why() {
        let stream = AudioStream::start(Box::new(Broken), 32);
        let mut listener = stream.subscribe();
        // Retries once a second, five times: the stream ends within ~5 s.
        let end = tokio::time::timeout(Duration::from_secs(15), listener.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ended");
        let why = stream.ended().expect("a reason");
        assert!(why.contains("unplugged") && why.contains("broken"), "{why}");
        assert_eq!(stream.counters().source_errors, u64::from(MAX_FAILURES));
    }
}

//! The shared video stream: source → encoder, once, for every viewer.
//!
//! One thread captures and encodes frames at the configured rate while at least one
//! [`Viewer`] exists, and publishes each [`EncodedFrame`] to all viewers through a
//! broadcast channel. Viewers never cost extra encodes: N viewers share the same
//! bytes, and [`StreamCounters::encoders_started`] and
//! [`StreamCounters::frames_encoded`] let tests and benchmarks check that.
//!
//! A new viewer asks for a keyframe and skips frames until one arrives; a viewer that
//! falls behind does the same. Viewers' own requests (PLI, FIR through
//! [`VideoStream::request_keyframe`]) are throttled for the whole stream by a
//! [`KeyframePolicy`]: at most one forced keyframe per 500 ms.
//!
//! Congestion control sets the encoder's bitrate through
//! [`VideoStream::set_target_bitrate`]; the thread hands it to the encoder before the
//! next frame (an encoder that cannot change it keeps its own).
//!
//! A [`Pipeline`] is either a raw source and an encoder, or an [`EncodedSource`] whose
//! H.264 passes straight through (no decode, no encode; `encoders_started` stays 0 and
//! new viewers wait for the source's next keyframe).
//!
//! [`VideoStream::replace`] swaps the pipeline while viewers watch (an admin's live
//! settings: another size, rate or camera): the thread closes the old source and
//! encoder first (a camera reopened at another size must be free), opens the new one,
//! and every viewer waits for the new pipeline's first keyframe; viewers stay
//! subscribed throughout. Should the new one fail to open, the fallback opens instead.

use super::encoder::VideoEncoder;
use super::frame::{EncodedFrame, Frame};
use super::keyframes::KeyframePolicy;
use super::pace::{FrameTimes, Steadiness};
use super::source::{EncodedSource, VideoSource};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Frames buffered per viewer before it counts as lagging.
const CHANNEL_FRAMES: usize = 8;

pub use super::encoder::EncoderFactory;

/// Where the stream's H.264 comes from.
pub enum Pipeline {
    /// Raw frames, encoded once by the encoder the factory makes.
    Encode {
        /// The raw source.
        source: Box<dyn VideoSource>,
        /// Makes the encoder when the first viewer arrives.
        make_encoder: EncoderFactory,
    },
    /// Access units already encoded, passed through untouched.
    PassThrough(Box<dyn EncodedSource>),
}

impl Pipeline {
    fn size(&self) -> (usize, usize) {
        match self {
            Self::Encode { source, .. } => source.size(),
            Self::PassThrough(source) => source.size(),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Encode { source, .. } => source.name().to_owned(),
            Self::PassThrough(source) => source.name().to_owned(),
        }
    }
}

/// Counters of the stream since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Encoder instances created (one per robot, however many viewers).
    pub encoders_started: u64,
    /// Frames captured from the source.
    pub frames_captured: u64,
    /// Frames the encoder produced.
    pub frames_encoded: u64,
    /// Frames the encoder dropped on its own (rate control); openh264 never does with
    /// the robot's settings: it raises the quantiser instead.
    pub frames_skipped: u64,
    /// Keyframes among them.
    pub keyframes: u64,
    /// Viewers' keyframe requests (PLI, FIR) that got no keyframe of their own: the
    /// throttle merged them into one already due.
    pub keyframe_requests_dropped: u64,
    /// Encoded bytes.
    pub bytes_encoded: u64,
    /// Time spent inside the encoder, nanoseconds.
    pub encode_ns: u64,
    /// Viewers right now.
    pub viewers: u64,
    /// The bitrate congestion control last asked for, kbit/s (0: none yet, the
    /// configured one holds).
    pub target_kbps: u32,
    /// Times the encoder's bitrate was changed while it ran.
    pub bitrate_changes: u64,
}

#[derive(Default)]
struct Counters {
    encoders_started: AtomicU64,
    frames_captured: AtomicU64,
    frames_encoded: AtomicU64,
    frames_skipped: AtomicU64,
    keyframes: AtomicU64,
    bytes_encoded: AtomicU64,
    encode_ns: AtomicU64,
    bitrate_changes: AtomicU64,
}

struct Inner {
    frames: broadcast::Sender<Arc<EncodedFrame>>,
    keyframes: Mutex<KeyframePolicy>,
    counters: Counters,
    /// The bitrate asked for, kbit/s (0: none).
    target_kbps: AtomicU32,
    /// When the recent frames were published.
    times: Mutex<FrameTimes>,
    viewers: Mutex<u64>,
    /// A viewer joined and waits for its first keyframe: the encoding thread makes the
    /// next frame at once instead of at its next tick.
    newcomer: AtomicBool,
    wake: Condvar,
    stopped: AtomicBool,
    size: Mutex<(usize, usize)>,
    name: Mutex<String>,
    /// A replacement the thread takes before its next frame.
    pending: Mutex<Option<Replacement>>,
    /// Whether `pending` holds one (read without the lock every frame).
    replacing: AtomicBool,
    /// Counts pipelines: a viewer that sees it change waits for a keyframe.
    generation: AtomicU64,
    /// The encoder's name once made; `pass-through` for encoded sources.
    encoder: Mutex<String>,
    /// Set once the thread ended: viewers waiting for frames are told at once.
    ended: watch::Sender<Option<StreamEnd>>,
    /// The thread, joined by [`VideoStream::stop`].
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Opens a pipeline on the stream's thread; `Err` says why, for a person.
pub type PipelineOpener = Box<dyn FnOnce() -> Result<Pipeline, String> + Send>;

/// A pipeline to swap in, with its frame period, what to open should it fail, and
/// where to say how it went.
struct Replacement {
    open: PipelineOpener,
    period: Duration,
    fallback: Option<(PipelineOpener, Duration)>,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// How one pipeline's loop ended.
enum Ended {
    /// A replacement is pending.
    Replaced,
    /// The stream is over.
    End(StreamEnd),
}

/// Marks the stream as failed if its thread unwinds before saying how it ended.
struct EndOnPanic(Arc<Inner>);

impl Drop for EndOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.ended.send_replace(Some(StreamEnd::Failed(
                "video is off: the video thread failed".into(),
            )));
        }
    }
}

/// Why the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// [`VideoStream::stop`] was called.
    Stopped,
    /// The video could not go on (the encoder could not start); why, for a person.
    Failed(String),
}

/// Handle to the running stream; cheap to clone.
#[derive(Clone)]
pub struct VideoStream {
    inner: Arc<Inner>,
}

impl VideoStream {
    /// Starts the capture/encode thread. It idles until the first viewer subscribes.
    pub fn start(
        source: Box<dyn VideoSource>,
        make_encoder: EncoderFactory,
        period: Duration,
    ) -> Self {
        Self::start_pipeline(
            Pipeline::Encode {
                source,
                make_encoder,
            },
            period,
        )
    }

    /// Starts the stream thread for any pipeline, encoding or pass-through.
    pub fn start_pipeline(pipeline: Pipeline, period: Duration) -> Self {
        let (frames, _) = broadcast::channel(CHANNEL_FRAMES);
        let size = pipeline.size();
        let inner = Arc::new(Inner {
            frames,
            keyframes: Mutex::new(KeyframePolicy::default()),
            times: Mutex::new(FrameTimes::default()),
            counters: Counters::default(),
            target_kbps: AtomicU32::new(0),
            viewers: Mutex::new(0),
            newcomer: AtomicBool::new(false),
            wake: Condvar::new(),
            stopped: AtomicBool::new(false),
            size: Mutex::new(size),
            name: Mutex::new(pipeline.name()),
            pending: Mutex::new(None),
            replacing: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            encoder: Mutex::new(match pipeline {
                Pipeline::Encode { .. } => String::new(),
                Pipeline::PassThrough(_) => "pass-through".into(),
            }),
            ended: watch::channel(None).0,
            thread: Mutex::new(None),
        });
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("video-stream".into())
            .spawn(move || {
                // Should the thread panic, viewers still hear that the stream ended.
                let _guard = EndOnPanic(thread_inner.clone());
                let end = run_pipelines(&thread_inner, pipeline, period);
                // The source and encoder are dropped by now (the device is closed).
                thread_inner.ended.send_replace(Some(end));
            })
            .expect("spawning the video thread");
        *inner.thread.lock().expect("thread lock") = Some(thread);
        Self { inner }
    }

    /// Joins the stream as a viewer; the next frame it gets is a keyframe.
    pub fn subscribe(&self) -> Viewer {
        let frames = self.inner.frames.subscribe();
        // Its first keyframe bypasses the throttle: the next frame, made at once.
        self.inner.keyframe_policy().viewer_needs_keyframe();
        let mut viewers = self.inner.viewers.lock().expect("viewers lock");
        *viewers += 1;
        self.inner.newcomer.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
        drop(viewers);
        Viewer {
            frames,
            ended: self.inner.ended.subscribe(),
            generation: self.inner.generation.load(Ordering::SeqCst),
            inner: self.inner.clone(),
            need_keyframe: true,
        }
    }

    /// Why the stream ended, once it did (`None` while it runs).
    pub fn ended(&self) -> Option<StreamEnd> {
        self.inner.ended.borrow().clone()
    }

    /// A viewer asks for a keyframe (it sent a PLI or FIR). Throttled for the whole
    /// stream: at most one forced keyframe per
    /// [`KEYFRAME_REQUEST_INTERVAL`](super::keyframes::KEYFRAME_REQUEST_INTERVAL); a
    /// request inside that window is served when it ends.
    pub fn request_keyframe(&self) {
        self.inner.keyframe_policy().request();
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> StreamCounters {
        let c = &self.inner.counters;
        StreamCounters {
            encoders_started: c.encoders_started.load(Ordering::Relaxed),
            frames_captured: c.frames_captured.load(Ordering::Relaxed),
            frames_encoded: c.frames_encoded.load(Ordering::Relaxed),
            frames_skipped: c.frames_skipped.load(Ordering::Relaxed),
            keyframes: c.keyframes.load(Ordering::Relaxed),
            keyframe_requests_dropped: self.inner.keyframe_policy().dropped(),
            bytes_encoded: c.bytes_encoded.load(Ordering::Relaxed),
            encode_ns: c.encode_ns.load(Ordering::Relaxed),
            viewers: *self.inner.viewers.lock().expect("viewers lock"),
            target_kbps: self.inner.target_kbps.load(Ordering::Relaxed),
            bitrate_changes: c.bitrate_changes.load(Ordering::Relaxed),
        }
    }

    /// The bitrate congestion control last asked for, kbit/s (`None`: none yet, the
    /// configured one holds).
    pub fn target_kbps(&self) -> Option<u32> {
        Some(self.inner.target_kbps.load(Ordering::Relaxed)).filter(|&k| k != 0)
    }

    /// Asks the encoder for `kbps` from the next frame on (congestion control).
    pub fn set_target_bitrate(&self, kbps: u32) {
        self.inner.target_kbps.store(kbps, Ordering::Relaxed);
    }

    /// The frame rate and the longest gap between two frames over the last
    /// [`pace::WINDOW`](super::pace::WINDOW).
    pub fn steadiness(&self) -> Steadiness {
        self.inner
            .times
            .lock()
            .expect("times lock")
            .steadiness(Instant::now())
    }

    /// Frame size in pixels.
    pub fn size(&self) -> (usize, usize) {
        *self.inner.size.lock().expect("size lock")
    }

    /// The source's name.
    pub fn source_name(&self) -> String {
        self.inner.name.lock().expect("name lock").clone()
    }

    /// Swaps the pipeline while viewers watch: before its next frame (at once when
    /// idle) the thread closes the current source and encoder, then runs `open`, at
    /// `period`; if it fails, `fallback` (the pipeline as it was, say) is opened
    /// instead, and without one the stream ends. The answer says whether `open`
    /// worked. A replacement asked for while another is pending takes its place
    /// (the earlier one is answered with an error).
    pub fn replace(
        &self,
        open: PipelineOpener,
        period: Duration,
        fallback: Option<(PipelineOpener, Duration)>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let earlier = self
            .inner
            .pending
            .lock()
            .expect("pending lock")
            .replace(Replacement {
                open,
                period,
                fallback,
                done,
            });
        if let Some(earlier) = earlier {
            let _ = earlier
                .done
                .send(Err("another change of settings came first".into()));
        }
        let _viewers = self.inner.viewers.lock().expect("viewers lock");
        self.inner.replacing.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
        answer
    }

    /// The encoder in use (`openh264`, `v4l2-m2m /dev/video11 (...)`, `pass-through`);
    /// empty until the first viewer made one.
    pub fn encoder_name(&self) -> String {
        self.inner.encoder.lock().expect("encoder lock").clone()
    }

    /// Stops the thread and waits until it ended (the source and encoder closed);
    /// viewers see the end of the stream.
    pub async fn stop(&self) {
        self.signal_stop();
        let thread = self.inner.thread.lock().expect("thread lock").take();
        if let Some(thread) = thread {
            // At most one frame's capture or encode away.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Tells the thread to stop without waiting for it.
    fn signal_stop(&self) {
        // Under the lock the thread waits with, so the wake-up cannot fall between its
        // check of `stopped` and its wait.
        let _viewers = self.inner.viewers.lock().expect("viewers lock");
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }
}

impl Inner {
    fn keyframe_policy(&self) -> std::sync::MutexGuard<'_, KeyframePolicy> {
        // The policy is plain data, valid even if a holder panicked.
        self.keyframes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `pipeline`, and each one that replaces it, until the stream ends.
fn run_pipelines(inner: &Inner, pipeline: Pipeline, period: Duration) -> StreamEnd {
    let mut current = Some((pipeline, period));
    loop {
        let Some((pipeline, period)) = current.take() else {
            return StreamEnd::Stopped;
        };
        // Each arm drops its source and encoder when its loop returns.
        let ended = match pipeline {
            Pipeline::Encode {
                mut source,
                make_encoder,
            } => run(inner, source.as_mut(), make_encoder, period),
            Pipeline::PassThrough(mut source) => pass_through(inner, source.as_mut(), period),
        };
        if let Ended::End(end) = ended {
            return end;
        }
        let Some(next) = inner.pending.lock().expect("pending lock").take() else {
            continue;
        };
        inner.replacing.store(false, Ordering::SeqCst);
        let (outcome, (pipeline, period)) = match (next.open)() {
            Ok(pipeline) => (Ok(()), (pipeline, next.period)),
            Err(why) => {
                tracing::warn!("the new video settings failed: {why}");
                match next
                    .fallback
                    .map(|(open, period)| open().map(|p| (p, period)))
                {
                    Some(Ok(old)) => (Err(why), old),
                    Some(Err(again)) => {
                        let _ = next.done.send(Err(why.clone()));
                        return StreamEnd::Failed(format!(
                            "video is off: the new settings failed ({why}) and the old ones \
                             too ({again})"
                        ));
                    }
                    None => {
                        let _ = next.done.send(Err(why.clone()));
                        return StreamEnd::Failed(format!("video is off: {why}"));
                    }
                }
            }
        };
        *inner.size.lock().expect("size lock") = pipeline.size();
        *inner.name.lock().expect("name lock") = pipeline.name();
        *inner.encoder.lock().expect("encoder lock") = match pipeline {
            Pipeline::Encode { .. } => String::new(),
            Pipeline::PassThrough(_) => "pass-through".into(),
        };
        inner.generation.fetch_add(1, Ordering::SeqCst);
        inner.keyframe_policy().viewer_needs_keyframe();
        tracing::info!("video now {} {:?}", pipeline.name(), pipeline.size());
        // Answered once the stream shows the new size and name.
        let _ = next.done.send(outcome);
        current = Some((pipeline, period));
    }
}

/// Blocks while nobody watches; false once the stream is stopped. Returns at once
/// when a replacement is pending.
fn wait_for_viewers(inner: &Inner) -> bool {
    let mut viewers = inner.viewers.lock().expect("viewers lock");
    while *viewers == 0
        && !inner.stopped.load(Ordering::SeqCst)
        && !inner.replacing.load(Ordering::SeqCst)
    {
        viewers = inner.wake.wait(viewers).expect("viewers lock");
    }
    !inner.stopped.load(Ordering::Relaxed)
}

/// Sleeps until `deadline`, then moves it one period on; after idling, restarts from now.
fn pace(deadline: &mut Instant, period: Duration) {
    let now = Instant::now();
    if *deadline + period < now {
        *deadline = now;
    } else if *deadline > now {
        std::thread::sleep(*deadline - now);
    }
    *deadline += period;
}

/// [`pace`] for the encoding thread, which can make a keyframe whenever it is asked:
/// a new viewer (see [`VideoStream::subscribe`]) ends the wait at once, and the
/// cadence starts again from that frame, so the newcomer's first picture is made as
/// its track starts rather than up to a frame period later.
fn pace_for_newcomers(inner: &Inner, deadline: &mut Instant, period: Duration) {
    let now = Instant::now();
    if *deadline + period < now {
        *deadline = now;
    } else {
        let mut viewers = inner.viewers.lock().expect("viewers lock");
        loop {
            let now = Instant::now();
            if now >= *deadline
                || inner.newcomer.load(Ordering::SeqCst)
                || inner.stopped.load(Ordering::SeqCst)
            {
                break;
            }
            viewers = inner
                .wake
                .wait_timeout(viewers, *deadline - now)
                .expect("viewers lock")
                .0;
        }
        drop(viewers);
        if inner.newcomer.load(Ordering::SeqCst) {
            *deadline = Instant::now();
        }
    }
    inner.newcomer.store(false, Ordering::SeqCst);
    *deadline += period;
}

fn publish(inner: &Inner, frame: EncodedFrame) {
    let c = &inner.counters;
    c.frames_encoded.fetch_add(1, Ordering::Relaxed);
    c.bytes_encoded
        .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
    if frame.keyframe {
        c.keyframes.fetch_add(1, Ordering::Relaxed);
        inner.keyframe_policy().keyframe_sent();
    }
    inner
        .times
        .lock()
        .expect("times lock")
        .record(Instant::now());
    // No receiver is not an error: the last viewer may just have left.
    let _ = inner.frames.send(Arc::new(frame));
}

/// The pass-through loop: access units from the source go out as they are, paced to
/// the frame rate.
fn pass_through(inner: &Inner, source: &mut dyn EncodedSource, period: Duration) -> Ended {
    let mut deadline = Instant::now();
    let mut failures = 0u32;
    while wait_for_viewers(inner) {
        if inner.replacing.load(Ordering::SeqCst) {
            return Ended::Replaced;
        }
        pace(&mut deadline, period);
        match source.next_frame() {
            Ok(frame) => {
                failures = 0;
                inner
                    .counters
                    .frames_captured
                    .fetch_add(1, Ordering::Relaxed);
                publish(inner, frame);
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures % 100 == 0 {
                    tracing::error!("video source {} failed: {err}", source.name());
                }
            }
        }
    }
    tracing::info!("video stream stopped");
    Ended::End(StreamEnd::Stopped)
}

fn run(
    inner: &Inner,
    source: &mut dyn VideoSource,
    make_encoder: EncoderFactory,
    period: Duration,
) -> Ended {
    let mut make_encoder = Some(make_encoder);
    let mut encoder: Option<Box<dyn VideoEncoder>> = None;
    let (w, h) = source.size();
    let mut frame = Frame::new(w, h);
    let mut deadline = Instant::now();
    let mut failures = 0u32;
    // The encoder name last published to `inner.encoder`.
    let mut named = String::new();
    // The bitrate last handed to the encoder (0: its own).
    let mut bitrate = 0u32;
    while wait_for_viewers(inner) {
        if inner.replacing.load(Ordering::SeqCst) {
            return Ended::Replaced;
        }
        pace_for_newcomers(inner, &mut deadline, period);

        if let Err(err) = source.capture(&mut frame) {
            tracing::error!("video source {} failed: {err}", source.name());
            continue;
        }
        inner
            .counters
            .frames_captured
            .fetch_add(1, Ordering::Relaxed);
        if encoder.is_none() {
            match make_encoder.take().map(|make| make()) {
                Some(Ok(made)) => {
                    inner
                        .counters
                        .encoders_started
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!("encoder {} started for {w}x{h}", made.name());
                    encoder = Some(made);
                }
                Some(Err(err)) => {
                    tracing::error!("cannot start the video encoder: {err}; video is off");
                    return Ended::End(StreamEnd::Failed(format!(
                        "video is off: the robot cannot start its video encoder ({err})"
                    )));
                }
                None => break,
            }
        }
        let Some(enc) = encoder.as_mut() else { break };
        let target = inner.target_kbps.load(Ordering::Relaxed);
        if target != 0 && target != bitrate {
            bitrate = target;
            if enc.set_bitrate(target) {
                inner
                    .counters
                    .bitrate_changes
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("encoder bitrate now {target} kbit/s");
            }
        }
        let force = inner.keyframe_policy().force(Instant::now());
        let started = Instant::now();
        let result = enc.encode(&frame, force);
        let c = &inner.counters;
        c.encode_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if result.is_ok() {
            failures = 0;
        }
        match result {
            Ok(Some(encoded)) => publish(inner, encoded),
            Ok(None) => {
                if force {
                    inner.keyframe_policy().retry();
                }
            }
            Err(err) => {
                failures += 1;
                if failures == 1 || failures % 100 == 0 {
                    tracing::warn!("dropping a frame ({failures} in a row): {err}");
                }
                if force {
                    inner.keyframe_policy().retry();
                }
            }
        }
        while let Some(late) = enc.next_ready() {
            publish(inner, late);
        }
        c.frames_skipped
            .store(enc.frames_skipped(), Ordering::Relaxed);
        // Published when the encoder starts, and again if a fallback changes hands.
        if enc.name() != named {
            named = enc.name().to_owned();
            *inner.encoder.lock().expect("encoder lock") = named.clone();
        }
    }
    tracing::info!("video stream stopped");
    Ended::End(StreamEnd::Stopped)
}

/// One viewer's place in the stream. Dropping it leaves the stream.
pub struct Viewer {
    frames: broadcast::Receiver<Arc<EncodedFrame>>,
    ended: watch::Receiver<Option<StreamEnd>>,
    /// The pipeline it last saw; another one means waiting for its first keyframe.
    generation: u64,
    inner: Arc<Inner>,
    need_keyframe: bool,
}

impl Viewer {
    /// The next frame to send, starting at a keyframe. `None` when the stream ended
    /// ([`VideoStream::ended`] says why).
    pub async fn next(&mut self) -> Option<Arc<EncodedFrame>> {
        loop {
            let received = tokio::select! {
                received = self.frames.recv() => received,
                _ = self.ended.wait_for(Option::is_some) => return None,
            };
            let generation = self.inner.generation.load(Ordering::SeqCst);
            if generation != self.generation {
                self.generation = generation;
                self.need_keyframe = true;
            }
            match received {
                Ok(frame) => {
                    if self.need_keyframe && !frame.keyframe {
                        continue;
                    }
                    self.need_keyframe = false;
                    return Some(frame);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!("viewer fell {missed} frames behind; waiting for a keyframe");
                    self.need_keyframe = true;
                    self.inner.keyframe_policy().viewer_needs_keyframe();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Ok(mut viewers) = self.inner.viewers.lock() {
            *viewers = viewers.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::encoder::{EncoderError, EncoderSettings, OpenH264Encoder};
    use crate::video::source::test_pattern::TestPattern;
    use crate::video::source::SourceError;

    fn stream() -> VideoStream {
        let source = Box::new(TestPattern::new(320, 240).unwrap());
        let settings = EncoderSettings {
            bitrate_kbps: 500,
            fps: 100,
            keyframe_interval: 1000,
            temporal_layers: 1,
        };
        VideoStream::start(
            source,
            Box::new(
                move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>),
            ),
            Duration::from_millis(10),
        )
    }

    /// The next frame of `viewer`, failing after 10 s.
    async fn next(viewer: &mut Viewer, what: &str) -> Arc<EncodedFrame> {
        tokio::time::timeout(Duration::from_secs(10), viewer.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("the stream ended waiting for {what}"))
    }

    /// Lets at least `n - 1` frame periods pass, measured on a real event: `n` fresh
    /// frames of another stream with the same period.
    async fn frame_periods(clock: &VideoStream, n: usize) {
        let mut viewer = clock.subscribe();
        for _ in 0..n {
            next(&mut viewer, "a frame of the clock stream").await;
        }
    }

    #[tokio::test]
    async fn viewers_are_told_when_the_encoder_cannot_start() {
        let stream = VideoStream::start(
            Box::new(TestPattern::new(320, 240).unwrap()),
            Box::new(|| Err(EncoderError::Codec("no codec here".into()))),
            Duration::from_millis(10),
        );
        let mut viewer = stream.subscribe();
        let end = tokio::time::timeout(Duration::from_secs(10), viewer.next()).await;
        assert!(
            matches!(end, Ok(None)),
            "the viewer hears the end instead of waiting for frames forever"
        );
        match stream.ended() {
            Some(StreamEnd::Failed(why)) => assert!(why.contains("no codec here"), "{why}"),
            other => panic!("the stream says why it ended: {other:?}"),
        }
        // A later viewer is told at once too.
        let mut late = stream.subscribe();
        assert!(late.next().await.is_none());
    }

    /// A source that records when it is dropped (the thread closed it).
    struct Recorded(TestPattern, Arc<AtomicBool>);
    impl VideoSource for Recorded {
        fn size(&self) -> (usize, usize) {
            self.0.size()
        }
        fn capture(&mut self, frame: &mut Frame) -> Result<(), SourceError> {
            self.0.capture(frame)
        }
        fn name(&self) -> &str {
            "recorded"
        }
    }
    impl Drop for Recorded {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn stop_returns_once_the_thread_closed_the_source() {
        for watching in [false, true] {
            let closed = Arc::new(AtomicBool::new(false));
            let source = Recorded(TestPattern::new(320, 240).unwrap(), closed.clone());
            let settings = EncoderSettings {
                bitrate_kbps: 100,
                fps: 100,
                keyframe_interval: 100,
                temporal_layers: 1,
            };
            let stream = VideoStream::start(
                Box::new(source),
                Box::new(move || {
                    Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>)
                }),
                Duration::from_millis(10),
            );
            let mut viewer = watching.then(|| stream.subscribe());
            if let Some(viewer) = viewer.as_mut() {
                next(viewer, "a frame before stopping").await;
            }
            stream.stop().await;
            assert!(
                closed.load(Ordering::SeqCst),
                "the source is closed when stop returns (watching: {watching})"
            );
            assert_eq!(stream.ended(), Some(StreamEnd::Stopped));
            if let Some(mut viewer) = viewer {
                while viewer.next().await.is_some() {}
            }
        }
    }

    #[tokio::test]
    async fn captures_nothing_while_nobody_watches() {
        let clock = stream();
        let idle = stream();
        frame_periods(&clock, 6).await;
        assert_eq!(
            idle.counters().frames_captured,
            0,
            "captured frames before any viewer"
        );
        // Watched, it captures; unwatched again, it stops (one capture may have been
        // under way when the viewer left).
        let mut viewer = idle.subscribe();
        next(&mut viewer, "a frame while watched").await;
        drop(viewer);
        let left = idle.counters().frames_captured;
        assert!(left >= 1);
        frame_periods(&clock, 11).await;
        let later = idle.counters().frames_captured;
        assert!(
            later <= left + 1,
            "captured {} frames in 10 periods after the last viewer left",
            later - left
        );
        clock.stop().await;
        idle.stop().await;
    }

    #[tokio::test]
    async fn viewers_share_one_encoder_and_start_on_keyframes() {
        let stream = stream();
        let mut a = stream.subscribe();
        let first = next(&mut a, "the first viewer's first frame").await;
        assert!(first.keyframe);
        let mut b = stream.subscribe();
        let b_first = next(&mut b, "the second viewer's first frame").await;
        assert!(b_first.keyframe);
        // Both viewers get the very same encoded frame (same allocation), encoded once.
        let same = loop {
            let fa = next(&mut a, "the second viewer's first frame on the first").await;
            if fa.number == b_first.number {
                break fa;
            }
        };
        assert!(Arc::ptr_eq(&same, &b_first));
        // From then on, frame by frame, the same frames in the same order, and the
        // encoder works once per frame, not once per viewer.
        let encoded_before = stream.counters().frames_encoded;
        let mut last = same.number;
        for _ in 0..30 {
            let fa = next(&mut a, "a frame for the first viewer").await;
            let fb = next(&mut b, "a frame for the second viewer").await;
            assert!(Arc::ptr_eq(&fa, &fb), "{} vs {}", fa.number, fb.number);
            assert!(fa.number > last, "{} after {last}", fa.number);
            last = fa.number;
        }
        let encoded = stream.counters().frames_encoded - encoded_before;
        // Each viewer may have had up to CHANNEL_FRAMES frames queued at either read.
        let slack = CHANNEL_FRAMES as u64;
        assert!(
            (30 - slack..=30 + slack).contains(&encoded),
            "{encoded} frames encoded while two viewers each received 30"
        );
        let c = stream.counters();
        assert_eq!(c.encoders_started, 1);
        assert_eq!(c.viewers, 2);
        drop(a);
        drop(b);
        assert_eq!(stream.counters().viewers, 0);
        stream.stop().await;
    }

    #[tokio::test]
    async fn a_viewer_flooding_keyframe_requests_does_not_make_every_frame_a_keyframe() {
        let stream = stream();
        let mut flooder = stream.subscribe();
        assert!(next(&mut flooder, "the first keyframe").await.keyframe);
        let started = Instant::now();
        let before = stream.counters();
        let mut keyframes = 0u32;
        for _ in 0..30 {
            for _ in 0..10 {
                stream.request_keyframe();
            }
            keyframes += u32::from(next(&mut flooder, "a flooded frame").await.keyframe);
        }
        // At most one forced keyframe per 500 ms (plus one for the window under way).
        let windows = (started.elapsed().as_millis() / 500) as u32 + 1;
        assert!(
            keyframes <= windows,
            "{keyframes} keyframes in {:?} of 30 frames",
            started.elapsed()
        );
        let dropped =
            stream.counters().keyframe_requests_dropped - before.keyframe_requests_dropped;
        // Each forced keyframe lets at most two requests through (one served at the
        // force, one answered when it is published), plus the first.
        assert!(dropped >= 300 - 1 - u64::from(windows) * 2, "{dropped}");
        // A new viewer still starts at once with a keyframe of its own.
        let mut newcomer = stream.subscribe();
        assert!(
            next(&mut newcomer, "the newcomer's first frame")
                .await
                .keyframe
        );
        stream.stop().await;
    }

    #[tokio::test]
    async fn a_newcomer_to_a_running_stream_gets_a_keyframe_without_waiting_for_the_tick() {
        // One frame a minute: a newcomer served at the next tick would time out.
        let settings = EncoderSettings {
            bitrate_kbps: 300,
            fps: 1,
            keyframe_interval: 1000,
            temporal_layers: 1,
        };
        let stream = VideoStream::start(
            Box::new(TestPattern::new(320, 240).unwrap()),
            Box::new(
                move || Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>),
            ),
            Duration::from_secs(60),
        );
        let mut first = stream.subscribe();
        assert!(next(&mut first, "the first viewer's frame").await.keyframe);
        let mut newcomer = stream.subscribe();
        let frame = next(
            &mut newcomer,
            "the newcomer's frame, long before the next tick",
        )
        .await;
        assert!(frame.keyframe);
        assert_eq!(stream.counters().encoders_started, 1);
        stream.stop().await;
    }

    /// A test-pattern pipeline of `w`x`h` for [`VideoStream::replace`].
    fn pattern(w: u32, h: u32) -> PipelineOpener {
        Box::new(move || {
            let settings = EncoderSettings {
                bitrate_kbps: 300,
                fps: 100,
                keyframe_interval: 1000,
                temporal_layers: 1,
            };
            Ok(Pipeline::Encode {
                source: Box::new(TestPattern::new(w, h).map_err(|e| e.to_string())?),
                make_encoder: Box::new(move || {
                    Ok(Box::new(OpenH264Encoder::new(settings)?) as Box<dyn VideoEncoder>)
                }),
            })
        })
    }

    #[tokio::test]
    async fn a_replaced_pipeline_reaches_the_same_viewer_from_a_keyframe() {
        let stream = stream();
        let mut viewer = stream.subscribe();
        for _ in 0..3 {
            next(&mut viewer, "a frame of the first pipeline").await;
        }
        let answer = stream.replace(pattern(160, 120), Duration::from_millis(10), None);
        let applied = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("an answer")
            .expect("the thread answers");
        assert_eq!(applied, Ok(()));
        assert_eq!(stream.size(), (160, 120));
        // The viewer stays subscribed; what it gets next starts at the new
        // pipeline's keyframe (a new test pattern counts frames from 0 again).
        let frame = loop {
            let frame = next(&mut viewer, "a frame of the new pipeline").await;
            if frame.number < 3 {
                break frame;
            }
        };
        assert!(frame.keyframe, "{frame:?}");
        assert_eq!(stream.counters().encoders_started, 2);
        next(&mut viewer, "the new pipeline goes on").await;
        stream.stop().await;
    }

    #[tokio::test]
    async fn a_pipeline_that_fails_to_open_gives_way_to_the_fallback_or_ends_the_stream() {
        let stream = stream();
        let mut viewer = stream.subscribe();
        next(&mut viewer, "a first frame").await;
        let broken: PipelineOpener = Box::new(|| Err("no such camera".into()));
        let answer = stream.replace(
            broken,
            Duration::from_millis(10),
            Some((pattern(320, 240), Duration::from_millis(10))),
        );
        assert_eq!(answer.await.unwrap(), Err("no such camera".into()));
        next(&mut viewer, "a frame of the fallback").await;
        assert_eq!(stream.size(), (320, 240));
        assert_eq!(stream.ended(), None);

        let broken: PipelineOpener = Box::new(|| Err("no such camera".into()));
        let answer = stream.replace(broken, Duration::from_millis(10), None);
        assert!(answer.await.unwrap().is_err());
        // Without a fallback the viewer hears that the stream ended.
        while tokio::time::timeout(Duration::from_secs(10), viewer.next())
            .await
            .expect("the stream ends")
            .is_some()
        {}
        assert!(
            matches!(stream.ended(), Some(StreamEnd::Failed(why)) if why.contains("no such camera")),
            "{:?}",
            stream.ended()
        );
    }

    #[tokio::test]
    async fn a_replacement_while_idle_is_made_at_once() {
        let stream = stream();
        let answer = stream.replace(pattern(160, 120), Duration::from_millis(10), None);
        let applied = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("answered without any viewer");
        assert_eq!(applied.unwrap(), Ok(()));
        assert_eq!(stream.size(), (160, 120));
        assert_eq!(
            stream.counters().encoders_started,
            0,
            "no viewer, no encoder"
        );
        stream.stop().await;
    }
}

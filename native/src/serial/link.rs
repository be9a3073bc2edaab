//! The running link: [`SerialConnection`] owns one port through the `serialport`
//! crate. The blocking port lives in dedicated threads, bridged to async code with
//! channels:
//!
//! - a *link* thread opens the port, reopens it with exponential backoff after an
//!   unplug, reports [`LinkState`] in a `watch` channel, and writes queued messages;
//! - a *reader* thread per connection splits incoming bytes with a
//!   [`Framer`](super::Framer) and publishes each message as a
//!   [`SerialEvent`](super::SerialEvent).
//!
//! Writes queued while the port is closed are refused, never replayed later (a stale
//! motor command must not reach the motors after a replug).

use super::config::{ReadMode, SerialConfig, SerialError};
use super::framer::{Framer, Framing, SerialEvent};
use super::structs::StructCodec;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot, watch};

/// Writes queued at most; more are refused.
pub(super) const WRITE_QUEUE: usize = 64;
/// How often the link thread checks for shutdown or a dead reader.
const POLL: Duration = Duration::from_millis(20);

/// Whether the port is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not opened yet.
    Connecting,
    /// Open: reads and writes go through.
    Connected,
    /// Closed (unplugged, missing, refused); the link retries with backoff.
    Disconnected {
        /// Why, for a person.
        reason: String,
    },
}

impl LinkState {
    /// A short word for telemetry: `connecting`, `connected` or `disconnected`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected { .. } => "disconnected",
        }
    }
}
struct WriteRequest {
    bytes: Vec<u8>,
    done: Option<oneshot::Sender<Result<(), SerialError>>>,
}

/// A running serial link; cheap to clone. The link stops when [`Self::close`] is
/// called or every clone is dropped.
#[derive(Clone)]
pub struct SerialConnection {
    inner: Arc<Shared>,
}

struct Shared {
    config: SerialConfig,
    write_codec: Option<StructCodec>,
    writes: SyncSender<WriteRequest>,
    state: watch::Receiver<LinkState>,
    events: broadcast::Sender<SerialEvent>,
    stop: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl SerialConnection {
    /// Checks the config and starts the link. The port need not exist yet: the link
    /// keeps trying and reports its state.
    pub fn open(config: SerialConfig) -> Result<Self, SerialError> {
        config.validate()?;
        let framing = config.framing()?;
        let write_codec = config.write_codec()?;
        let (writes, write_rx) = sync_channel(WRITE_QUEUE);
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let (events, _) = broadcast::channel(256);
        let stop = Arc::new(AtomicBool::new(false));
        let link = Link {
            config: config.clone(),
            framing,
            writes: write_rx,
            state: state_tx,
            events: events.clone(),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("serial-link".into())
            .spawn(move || link.run())
            .map_err(|e| SerialError::Write(format!("cannot start the serial thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Shared {
                config,
                write_codec,
                writes,
                state,
                events,
                stop,
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &SerialConfig {
        &self.inner.config
    }

    /// The link state; `changed()` wakes on connect and disconnect.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.inner.state.clone()
    }

    /// Messages and problems from the reader.
    pub fn events(&self) -> broadcast::Receiver<SerialEvent> {
        self.inner.events.subscribe()
    }

    /// The bytes `message` becomes on the wire: packed with `write_format` (after the
    /// start byte) when set; otherwise a string's text, or other JSON as JSON text,
    /// followed by the delimiter unless reading raw.
    pub fn encode(&self, message: &Value) -> Result<Vec<u8>, SerialError> {
        let config = &self.inner.config;
        if let Some(codec) = &self.inner.write_codec {
            let body = codec.encode(message)?;
            let mut out = Vec::with_capacity(body.len() + 1);
            out.extend(config.start_byte);
            out.extend_from_slice(&body);
            return Ok(out);
        }
        let mut out = match message {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        };
        if config.read_mode() != ReadMode::Raw {
            out.extend_from_slice(config.delimiter.as_bytes());
        }
        Ok(out)
    }

    /// Queues `message` (see [`Self::encode`]); returns at once.
    pub fn send(&self, message: &Value) -> Result<(), SerialError> {
        let bytes = self.encode(message)?;
        self.send_bytes(bytes)
    }

    /// Queues raw bytes; returns at once.
    pub fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), SerialError> {
        self.check_connected()?;
        match self
            .inner
            .writes
            .try_send(WriteRequest { bytes, done: None })
        {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SerialError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SerialError::Closed),
        }
    }

    /// Writes bytes and waits until the port has taken them (flushed).
    pub async fn write(&self, bytes: Vec<u8>) -> Result<(), SerialError> {
        self.check_connected()?;
        let (done, result) = oneshot::channel();
        match self.inner.writes.try_send(WriteRequest {
            bytes,
            done: Some(done),
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(SerialError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(SerialError::Closed),
        }
        result.await.unwrap_or(Err(SerialError::Closed))
    }

    fn check_connected(&self) -> Result<(), SerialError> {
        if self.inner.stop.load(Ordering::SeqCst) {
            return Err(SerialError::Closed);
        }
        if *self.inner.state.borrow() != LinkState::Connected {
            return Err(SerialError::NotConnected(
                self.inner.config.path.display().to_string(),
            ));
        }
        Ok(())
    }

    /// Stops the link and closes the port.
    pub fn close(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
    }
}

/// The link thread's state.
struct Link {
    config: SerialConfig,
    framing: Framing,
    writes: Receiver<WriteRequest>,
    state: watch::Sender<LinkState>,
    events: broadcast::Sender<SerialEvent>,
    stop: Arc<AtomicBool>,
}

impl Link {
    fn run(self) {
        let path = self.config.path.display().to_string();
        let min = Duration::from_millis(self.config.reconnect_min_ms);
        let max = Duration::from_millis(self.config.reconnect_max_ms);
        let mut backoff = min;
        let mut last_error = String::new();
        while !self.stop.load(Ordering::SeqCst) {
            let opened = serialport::new(&path, self.config.baud)
                .timeout(Duration::from_millis(self.config.frame_timeout_ms))
                .open();
            match opened {
                Ok(port) => {
                    backoff = min;
                    last_error.clear();
                    tracing::info!("serial port {path} connected at {} baud", self.config.baud);
                    let reason = self.serve(port);
                    tracing::warn!("serial port {path} disconnected: {reason}");
                    self.state.send_replace(LinkState::Disconnected { reason });
                }
                Err(err) => {
                    let reason = format!("cannot open {path}: {err}");
                    if reason != last_error {
                        tracing::warn!("{reason}; retrying");
                        last_error.clone_from(&reason);
                    }
                    self.state.send_replace(LinkState::Disconnected { reason });
                    // Wait out the backoff, refusing writes meanwhile.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
                        self.refuse_pending(&path, POLL.min(until - Instant::now()));
                    }
                    backoff = (backoff * 2).min(max);
                }
            }
        }
        self.state.send_replace(LinkState::Disconnected {
            reason: "closed".into(),
        });
    }

    fn refuse_pending(&self, path: &str, wait: Duration) {
        if let Ok(req) = self.writes.recv_timeout(wait) {
            if let Some(done) = req.done {
                let _ = done.send(Err(SerialError::NotConnected(path.to_owned())));
            }
        }
    }

    /// Serves one open port until it fails or the link stops; returns why it ended.
    fn serve(&self, mut port: Box<dyn serialport::SerialPort>) -> String {
        let reader_port = match port.try_clone() {
            Ok(p) => p,
            Err(e) => return format!("cannot clone the port for reading: {e}"),
        };
        // Drop writes queued before the port opened: they are stale.
        while self.writes.try_recv().is_ok() {}
        let dead = Arc::new(AtomicBool::new(false));
        let (why_tx, why_rx) = std::sync::mpsc::channel::<String>();
        let reader = {
            let framing = self.framing.clone();
            let events = self.events.clone();
            let stop = self.stop.clone();
            let dead = dead.clone();
            std::thread::Builder::new()
                .name("serial-reader".into())
                .spawn(move || {
                    let why = read_loop(reader_port, framing, &events, &stop, &dead);
                    dead.store(true, Ordering::SeqCst);
                    let _ = why_tx.send(why);
                })
        };
        let reader = match reader {
            Ok(r) => r,
            Err(e) => return format!("cannot start the reader thread: {e}"),
        };
        self.state.send_replace(LinkState::Connected);
        let mut why = String::from("closed");
        while !self.stop.load(Ordering::SeqCst) && !dead.load(Ordering::SeqCst) {
            match self.writes.recv_timeout(POLL) {
                Ok(req) => {
                    let result = port
                        .write_all(&req.bytes)
                        .and_then(|()| port.flush())
                        .map_err(|e| e.to_string());
                    if let Some(done) = req.done {
                        let _ = done.send(result.clone().map_err(SerialError::Write));
                    }
                    if let Err(e) = result {
                        why = format!("write failed: {e}");
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        dead.store(true, Ordering::SeqCst);
        let _ = reader.join();
        why_rx.try_recv().map_or(why, |reader_why| reader_why)
    }
}

fn read_loop(
    mut port: Box<dyn serialport::SerialPort>,
    framing: Framing,
    events: &broadcast::Sender<SerialEvent>,
    stop: &AtomicBool,
    dead: &AtomicBool,
) -> String {
    // The framing was checked when the link opened; this only fails if it was not.
    let mut framer = match Framer::new(framing) {
        Ok(framer) => framer,
        Err(err) => return err.to_string(),
    };
    let mut buf = [0u8; 1024];
    let mut out = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return "closed".into();
        }
        if dead.load(Ordering::SeqCst) {
            return "the writer stopped".into();
        }
        match port.read(&mut buf) {
            Ok(0) => return "end of file".into(),
            Ok(n) => framer.push(&buf[..n], &mut out),
            Err(e) if e.kind() == ErrorKind::TimedOut => framer.idle(&mut out),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return format!("read failed: {e}"),
        }
        for event in out.drain(..) {
            if let SerialEvent::Garbled(reason) = &event {
                tracing::debug!("serial: {reason}");
            }
            // No subscriber is fine.
            let _ = events.send(event);
        }
    }
}

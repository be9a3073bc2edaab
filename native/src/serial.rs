//! The serial link to a microcontroller: RTCBot's `SerialConnection`, done properly.
//!
//! [`SerialConnection`] owns one port (an Arduino on `/dev/ttyACM0`, the Pi's UART...)
//! through the `serialport` crate. The blocking port lives in dedicated threads, bridged
//! to async code with channels:
//!
//! - a *link* thread opens the port, reopens it with exponential backoff after an
//!   unplug, reports [`LinkState`] in a `watch` channel, and writes queued messages;
//! - a *reader* thread per connection splits incoming bytes with a [`Framer`] into
//!   lines (configurable delimiter), raw chunks, or C structs (see [`crate::structs`],
//!   with an optional start byte) and publishes each as a [`SerialEvent`].
//!
//! Bad input is never fatal: a garbled or short frame, bytes before a start byte, a line
//! that is not UTF-8 or too long are reported as [`SerialEvent::Garbled`] and skipped.
//! Writes queued while the port is closed are refused, never replayed later (a stale
//! motor command must not reach the motors after a replug).

use crate::structs::{StructCodec, StructError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{broadcast, oneshot, watch};

/// The longest line kept while waiting for its delimiter.
pub const MAX_LINE: usize = 4096;
/// Writes queued at most; more are refused.
const WRITE_QUEUE: usize = 64;
/// How often the link thread checks for shutdown or a dead reader.
const POLL: Duration = Duration::from_millis(20);

/// How incoming bytes are split into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// Text lines ended by `delimiter` (RTCBot's default).
    Lines,
    /// Bytes as they arrive (RTCBot's `readFormat=None`).
    Raw,
    /// C structs of `read_format` (RTCBot's `readFormat="<BH"`).
    Struct,
}

/// The `[serial]` config section.
///
/// ```toml
/// [serial]
/// path = "/dev/ttyACM0"
/// baud = 115200
/// write_format = "<hh"          # what the robot sends: an Arduino packed struct
/// write_keys = ["left", "right"]
/// read_format = "<BH"           # what the Arduino sends back (read mode "struct")
/// read_keys = ["sensorID", "measurement"]
/// start_byte = 0xAA             # optional framing byte before every struct, both ways
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SerialConfig {
    /// The device, e.g. `/dev/ttyACM0`, `/dev/ttyUSB0`, `/dev/serial0`.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// How to split incoming bytes; default `struct` when `read_format` is set, else
    /// `lines`.
    pub read: Option<ReadMode>,
    /// Line delimiter for `lines` (read), and appended to text writes unless reading
    /// `raw`. A trailing `\r` is also removed when the delimiter is `\n`.
    pub delimiter: String,
    /// Python-struct format of incoming structs.
    pub read_format: Option<String>,
    /// Key names of incoming struct fields (they become a JSON object).
    pub read_keys: Option<Vec<String>>,
    /// Python-struct format of outgoing structs; JSON messages are packed with it.
    pub write_format: Option<String>,
    /// Key names of outgoing struct fields (messages are JSON objects with them).
    pub write_keys: Option<Vec<String>>,
    /// A byte written before every outgoing struct and searched for before every
    /// incoming one, so the reader can resynchronise after garbage.
    pub start_byte: Option<u8>,
    /// A partial struct with no new byte for this long is reported as short and dropped.
    pub frame_timeout_ms: u64,
    /// First reconnect delay after the port closes or cannot be opened.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay (the delay doubles up to it).
    pub reconnect_max_ms: u64,
}

impl Default for SerialConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/dev/ttyACM0"),
            baud: 115_200,
            read: None,
            delimiter: "\n".into(),
            read_format: None,
            read_keys: None,
            write_format: None,
            write_keys: None,
            start_byte: None,
            frame_timeout_ms: 100,
            reconnect_min_ms: 100,
            reconnect_max_ms: 2000,
        }
    }
}

/// Why the serial link refused a setting or a message.
#[derive(Debug, Error)]
pub enum SerialError {
    /// A `[serial]` setting is unusable.
    #[error("invalid serial setting {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A message could not be packed into the write struct.
    #[error(transparent)]
    Struct(#[from] StructError),
    /// The port is not open right now (unplugged, or not yet opened).
    #[error("serial port {0} is not connected")]
    NotConnected(String),
    /// Too many writes are waiting.
    #[error("serial write queue is full ({WRITE_QUEUE} messages)")]
    Busy,
    /// The port failed while writing.
    #[error("serial write failed: {0}")]
    Write(String),
    /// The connection was closed.
    #[error("the serial connection is closed")]
    Closed,
}

impl SerialConfig {
    /// The read mode in force.
    pub fn read_mode(&self) -> ReadMode {
        self.read.unwrap_or(if self.read_format.is_some() {
            ReadMode::Struct
        } else {
            ReadMode::Lines
        })
    }

    /// The outgoing struct codec, if `write_format` is set.
    pub fn write_codec(&self) -> Result<Option<StructCodec>, SerialError> {
        self.write_format
            .as_deref()
            .map(|f| StructCodec::new(f, self.write_keys.clone()))
            .transpose()
            .map_err(SerialError::from)
    }

    /// Checks every setting; formats are parsed so errors show at start-up.
    pub fn validate(&self) -> Result<(), SerialError> {
        let err = |field, reason: String| Err(SerialError::Config { field, reason });
        if self.path.as_os_str().is_empty() {
            return err("serial.path", "must name a device".into());
        }
        if !(50..=4_000_000).contains(&self.baud) {
            return err(
                "serial.baud",
                format!("{} must be in 50..=4000000", self.baud),
            );
        }
        if self.delimiter.is_empty() {
            return err("serial.delimiter", "must not be empty".into());
        }
        if !(1..=10_000).contains(&self.frame_timeout_ms) {
            return err(
                "serial.frame_timeout_ms",
                format!("{} must be in 1..=10000", self.frame_timeout_ms),
            );
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return err(
                "serial.reconnect_min_ms",
                format!(
                    "{} must be at least 1 and at most reconnect_max_ms ({})",
                    self.reconnect_min_ms, self.reconnect_max_ms
                ),
            );
        }
        if self.write_keys.is_some() && self.write_format.is_none() {
            return err("serial.write_keys", "needs write_format".into());
        }
        if self.read_keys.is_some() && self.read_format.is_none() {
            return err("serial.read_keys", "needs read_format".into());
        }
        match (self.read_mode(), &self.read_format) {
            (ReadMode::Struct, None) => {
                return err("serial.read", "\"struct\" needs read_format".into())
            }
            (ReadMode::Lines | ReadMode::Raw, Some(_)) => {
                return err(
                    "serial.read_format",
                    "is only used with read = \"struct\"".into(),
                )
            }
            _ => {}
        }
        self.write_codec()?;
        self.framing()?;
        Ok(())
    }

    fn framing(&self) -> Result<Framing, SerialError> {
        Ok(match self.read_mode() {
            ReadMode::Lines => Framing::Lines {
                delimiter: self.delimiter.as_bytes().to_vec(),
            },
            ReadMode::Raw => Framing::Raw,
            ReadMode::Struct => {
                let format = self.read_format.as_deref().unwrap_or_default();
                let codec = StructCodec::new(format, self.read_keys.clone())?;
                if codec.size() == 0 {
                    return Err(SerialError::Config {
                        field: "serial.read_format",
                        reason: format!("{format:?} describes an empty struct"),
                    });
                }
                Framing::Struct {
                    codec,
                    start_byte: self.start_byte,
                }
            }
        })
    }
}

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

/// One message read from the port.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A line, delimiter removed.
    Line(String),
    /// Bytes as they arrived.
    Bytes(Vec<u8>),
    /// A decoded struct (an object with keys, an array without).
    Struct(Value),
}

impl Incoming {
    /// The message as JSON: a string, an array of byte values, or the struct.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Line(s) => Value::String(s.clone()),
            Self::Bytes(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
            Self::Struct(v) => v.clone(),
        }
    }
}

/// What the reader reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SerialEvent {
    /// A message arrived.
    Message(Incoming),
    /// Bytes were skipped; the reason says which and why.
    Garbled(String),
}

/// How incoming bytes are cut into messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Framing {
    /// Lines ended by `delimiter`.
    Lines {
        /// The delimiter bytes.
        delimiter: Vec<u8>,
    },
    /// Chunks as they arrive.
    Raw,
    /// Fixed-size structs, each optionally preceded by a start byte.
    Struct {
        /// The struct layout and keys.
        codec: StructCodec,
        /// The byte before each struct.
        start_byte: Option<u8>,
    },
}

/// Cuts a byte stream into [`SerialEvent`]s; pure, so it is tested without a port.
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    buf: Vec<u8>,
}

impl Framer {
    /// A framer with an empty buffer.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            buf: Vec::new(),
        }
    }

    /// Feeds bytes; complete messages and problems are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SerialEvent>) {
        match &self.framing {
            Framing::Raw => {
                if !bytes.is_empty() {
                    out.push(SerialEvent::Message(Incoming::Bytes(bytes.to_vec())));
                }
            }
            Framing::Lines { delimiter } => {
                self.buf.extend_from_slice(bytes);
                let strip_cr = delimiter.as_slice() == b"\n";
                while let Some(at) = find(&self.buf, delimiter) {
                    let mut line: Vec<u8> = self.buf.drain(..at + delimiter.len()).collect();
                    line.truncate(at);
                    if strip_cr && line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    match String::from_utf8(line) {
                        Ok(s) => out.push(SerialEvent::Message(Incoming::Line(s))),
                        Err(e) => out.push(SerialEvent::Garbled(format!(
                            "skipped a {}-byte line that is not UTF-8",
                            e.as_bytes().len()
                        ))),
                    }
                }
                if self.buf.len() > MAX_LINE {
                    out.push(SerialEvent::Garbled(format!(
                        "skipped {} bytes with no line delimiter (lines are at most {MAX_LINE} bytes)",
                        self.buf.len()
                    )));
                    self.buf.clear();
                }
            }
            Framing::Struct { codec, start_byte } => {
                self.buf.extend_from_slice(bytes);
                let size = codec.size();
                loop {
                    let header = match start_byte {
                        Some(start) => {
                            match self.buf.iter().position(|b| b == start) {
                                Some(0) => {}
                                Some(n) => {
                                    out.push(skipped(n, *start));
                                    self.buf.drain(..n);
                                }
                                None => {
                                    if !self.buf.is_empty() {
                                        out.push(skipped(self.buf.len(), *start));
                                        self.buf.clear();
                                    }
                                    break;
                                }
                            }
                            1
                        }
                        None => 0,
                    };
                    if self.buf.len() < header + size {
                        break;
                    }
                    match codec.decode(&self.buf[header..header + size]) {
                        Ok(value) => {
                            out.push(SerialEvent::Message(Incoming::Struct(value)));
                            self.buf.drain(..header + size);
                        }
                        Err(err) => {
                            out.push(SerialEvent::Garbled(format!(
                                "skipped a garbled struct: {err}"
                            )));
                            // With a start byte, look for the next one; without, drop
                            // the whole frame.
                            self.buf.drain(..if header == 1 { 1 } else { size });
                        }
                    }
                }
            }
        }
    }

    /// No byte arrived for the frame timeout: a partial struct is short; drop it.
    pub fn idle(&mut self, out: &mut Vec<SerialEvent>) {
        if let Framing::Struct { codec, start_byte } = &self.framing {
            if !self.buf.is_empty() {
                let header = usize::from(start_byte.is_some());
                out.push(SerialEvent::Garbled(format!(
                    "skipped a short struct: got {} of {} bytes",
                    self.buf.len().saturating_sub(header),
                    codec.size()
                )));
                self.buf.clear();
            }
        }
    }
}

fn skipped(n: usize, start: u8) -> SerialEvent {
    SerialEvent::Garbled(format!("skipped {n} bytes before start byte 0x{start:02X}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
    let mut framer = Framer::new(framing);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(framer: &mut Framer, chunks: &[&[u8]]) -> Vec<SerialEvent> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk, &mut out);
        }
        out
    }

    fn line(s: &str) -> SerialEvent {
        SerialEvent::Message(Incoming::Line(s.into()))
    }

    #[test]
    fn splits_lines_across_chunks_with_any_delimiter() {
        let mut f = Framer::new(Framing::Lines {
            delimiter: b"\n".to_vec(),
        });
        let got = events(
            &mut f,
            &[b"I received: 72\r\nI rec", b"eived: 101\r\n", b"x"],
        );
        assert_eq!(got, [line("I received: 72"), line("I received: 101")]);

        let mut f = Framer::new(Framing::Lines {
            delimiter: b";;".to_vec(),
        });
        let got = events(&mut f, &[b"a;", b";b;;", b"\xFF\xFE;;c"]);
        assert_eq!(got[..2], [line("a"), line("b")]);
        assert!(matches!(&got[2], SerialEvent::Garbled(m) if m.contains("not UTF-8")));

        let mut f = Framer::new(Framing::Lines {
            delimiter: b"\n".to_vec(),
        });
        let got = events(&mut f, &[&[b'a'; MAX_LINE + 1], b"ok\n"]);
        assert!(matches!(&got[0], SerialEvent::Garbled(m) if m.contains("no line delimiter")));
        assert_eq!(got[1], line("ok"));
    }

    fn sensor_framer(start_byte: Option<u8>) -> Framer {
        let codec =
            StructCodec::new("<BH", Some(vec!["sensorID".into(), "measurement".into()])).unwrap();
        Framer::new(Framing::Struct { codec, start_byte })
    }

    fn sensor(id: u8, m: u16) -> SerialEvent {
        SerialEvent::Message(Incoming::Struct(json!({"sensorID": id, "measurement": m})))
    }

    #[test]
    fn reads_structs_split_or_merged() {
        let mut f = sensor_framer(None);
        let got = events(&mut f, &[&[12, 123], &[0, 1, 2], &[0]]);
        assert_eq!(got, [sensor(12, 123), sensor(1, 2)]);
    }

    #[test]
    fn skips_garbage_before_a_start_byte_and_garbled_structs() {
        let codec = StructCodec::new("<?H", None).unwrap();
        let mut f = Framer::new(Framing::Struct {
            codec,
            start_byte: Some(0xAA),
        });
        let got = events(
            &mut f,
            &[&[1, 2, 3, 0xAA, 1, 5, 0], &[0xAA, 9, 0xAA, 0, 7, 0]],
        );
        assert!(
            matches!(&got[0], SerialEvent::Garbled(m) if m == "skipped 3 bytes before start byte 0xAA"),
            "{got:?}"
        );
        assert_eq!(
            got[1],
            SerialEvent::Message(Incoming::Struct(json!([true, 5])))
        );
        // 0xAA 9 ...: bool byte 9 is garbled; the reader resynchronises on the next 0xAA.
        assert!(
            matches!(&got[2], SerialEvent::Garbled(m) if m.contains("bool byte is 9")),
            "{got:?}"
        );
        // The byte after the refused start byte is skipped too, up to the next 0xAA.
        assert_eq!(
            got[3],
            SerialEvent::Garbled("skipped 1 bytes before start byte 0xAA".into())
        );
        assert_eq!(
            got[4],
            SerialEvent::Message(Incoming::Struct(json!([false, 7])))
        );
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_short_struct_is_dropped_after_the_frame_timeout() {
        let mut f = sensor_framer(None);
        let mut out = events(&mut f, &[&[1, 2]]);
        assert!(out.is_empty());
        f.idle(&mut out);
        assert!(
            matches!(&out[0], SerialEvent::Garbled(m) if m == "skipped a short struct: got 2 of 3 bytes")
        );
        out.clear();
        f.push(&[12, 123, 0], &mut out);
        assert_eq!(out, [sensor(12, 123)]);
    }

    #[test]
    fn raw_chunks_pass_through() {
        let mut f = Framer::new(Framing::Raw);
        assert_eq!(
            events(&mut f, &[&[0, 255]]),
            [SerialEvent::Message(Incoming::Bytes(vec![0, 255]))]
        );
        assert_eq!(Incoming::Bytes(vec![1, 2]).to_json(), json!([1, 2]));
    }

    #[test]
    fn bad_settings_get_clear_errors() {
        let base = SerialConfig::default();
        base.validate().unwrap();
        let cases: Vec<(SerialConfig, &str)> = vec![
            (
                SerialConfig {
                    baud: 0,
                    ..base.clone()
                },
                "serial.baud",
            ),
            (
                SerialConfig {
                    delimiter: String::new(),
                    ..base.clone()
                },
                "serial.delimiter",
            ),
            (
                SerialConfig {
                    read: Some(ReadMode::Struct),
                    ..base.clone()
                },
                "needs read_format",
            ),
            (
                SerialConfig {
                    read: Some(ReadMode::Raw),
                    read_format: Some("<B".into()),
                    ..base.clone()
                },
                "serial.read_format",
            ),
            (
                SerialConfig {
                    read_format: Some("<Z".into()),
                    ..base.clone()
                },
                "unknown code 'Z'",
            ),
            (
                SerialConfig {
                    read_format: Some("<0h".into()),
                    ..base.clone()
                },
                "empty struct",
            ),
            (
                SerialConfig {
                    write_format: Some("<hB".into()),
                    write_keys: Some(vec!["a".into()]),
                    ..base.clone()
                },
                "1 keys for 2 fields",
            ),
            (
                SerialConfig {
                    write_keys: Some(vec!["a".into()]),
                    ..base.clone()
                },
                "needs write_format",
            ),
            (
                SerialConfig {
                    reconnect_min_ms: 5000,
                    ..base.clone()
                },
                "reconnect_min_ms",
            ),
        ];
        for (config, expected) in cases {
            let err = match config.validate() {
                Ok(()) => panic!("{config:?} was accepted, wanted {expected}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}

//! Cutting the bytes a microcontroller sends into messages: lines, raw chunks or C
//! structs (with an optional start byte). Pure: no I/O, unit-tested here.

use super::config::SerialError;
use super::structs::StructCodec;
use serde_json::Value;

/// The longest line kept while waiting for its delimiter.
pub const MAX_LINE: usize = 4096;

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
    /// Lines: how many leading bytes of `buf` are known to start no delimiter, so
    /// that a long line arriving in small chunks is scanned once, not once per chunk.
    searched: usize,
}

impl Framing {
    /// Checks that this framing can cut a stream into messages: lines need a
    /// non-empty delimiter, structs at least one byte.
    pub fn check(&self) -> Result<(), SerialError> {
        let refuse = |field, reason: &str| {
            Err(SerialError::Config {
                field,
                reason: reason.into(),
            })
        };
        match self {
            Self::Lines { delimiter } if delimiter.is_empty() => refuse(
                "serial.delimiter",
                "must not be empty: it is what ends each line",
            ),
            Self::Struct { codec, .. } if codec.size() == 0 => {
                refuse("serial.read_format", "describes an empty struct")
            }
            _ => Ok(()),
        }
    }
}

impl Framer {
    /// A framer with an empty buffer; refuses a framing that cannot cut messages (an
    /// empty line delimiter, an empty struct), see [`Framing::check`].
    pub fn new(framing: Framing) -> Result<Self, SerialError> {
        framing.check()?;
        Ok(Self {
            framing,
            buf: Vec::new(),
            searched: 0,
        })
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
                while let Some(at) = find(&self.buf[self.searched..], delimiter) {
                    let at = self.searched + at;
                    self.searched = 0;
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
                // A delimiter may still start in its last `len - 1` bytes.
                self.searched = self.buf.len().saturating_sub(delimiter.len() - 1);
                if self.buf.len() > MAX_LINE {
                    out.push(SerialEvent::Garbled(format!(
                        "skipped {} bytes with no line delimiter (lines are at most {MAX_LINE} bytes)",
                        self.buf.len()
                    )));
                    self.buf.clear();
                    self.searched = 0;
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
        })
        .unwrap();
        let got = events(
            &mut f,
            &[b"I received: 72\r\nI rec", b"eived: 101\r\n", b"x"],
        );
        assert_eq!(got, [line("I received: 72"), line("I received: 101")]);

        let mut f = Framer::new(Framing::Lines {
            delimiter: b";;".to_vec(),
        })
        .unwrap();
        let got = events(&mut f, &[b"a;", b";b;;", b"\xFF\xFE;;c"]);
        assert_eq!(got[..2], [line("a"), line("b")]);
        assert!(matches!(&got[2], SerialEvent::Garbled(m) if m.contains("not UTF-8")));

        let mut f = Framer::new(Framing::Lines {
            delimiter: b"\n".to_vec(),
        })
        .unwrap();
        let got = events(&mut f, &[&[b'a'; MAX_LINE + 1], b"ok\n"]);
        assert!(matches!(&got[0], SerialEvent::Garbled(m) if m.contains("no line delimiter")));
        assert_eq!(got[1], line("ok"));
    }

    /// Found by `cargo fuzz run framer` (214 exec/s): each chunk re-scanned the whole
    /// pending line for the delimiter, quadratic in the line's length.
    #[test]
    fn a_long_line_in_one_byte_chunks_is_scanned_once_and_still_split() {
        let mut f = Framer::new(Framing::Lines {
            delimiter: b"<|>".to_vec(),
        })
        .unwrap();
        let mut input = vec![b'<'; MAX_LINE - 10];
        input.extend_from_slice(b"<|<|>x<|");
        let mut out = Vec::new();
        for b in &input {
            f.push(std::slice::from_ref(b), &mut out);
        }
        f.push(b">", &mut out);
        let mut want = "<".repeat(MAX_LINE - 10);
        want.push_str("<|");
        assert_eq!(out, [line(&want), line("x")]);
        assert_eq!(f.searched, 0);
        f.push(b"a<", &mut out);
        assert_eq!(
            f.searched, 0,
            "2 bytes, a 3-byte delimiter may start at either"
        );
        f.push(b"b", &mut out);
        assert_eq!(f.searched, 1);
    }

    fn sensor_framer(start_byte: Option<u8>) -> Framer {
        let codec =
            StructCodec::new("<BH", Some(vec!["sensorID".into(), "measurement".into()])).unwrap();
        Framer::new(Framing::Struct { codec, start_byte }).unwrap()
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
        })
        .unwrap();
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
    fn a_framing_that_cannot_cut_messages_is_refused() {
        let err = Framer::new(Framing::Lines { delimiter: vec![] })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("serial.delimiter") && err.contains("must not be empty"),
            "{err}"
        );
        let codec = StructCodec::new("<0h", None).unwrap();
        let err = Framer::new(Framing::Struct {
            codec,
            start_byte: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("empty struct"), "{err}");
    }

    #[test]
    fn raw_chunks_pass_through() {
        let mut f = Framer::new(Framing::Raw).unwrap();
        assert_eq!(
            events(&mut f, &[&[0, 255]]),
            [SerialEvent::Message(Incoming::Bytes(vec![0, 255]))]
        );
        assert_eq!(Incoming::Bytes(vec![1, 2]).to_json(), json!([1, 2]));
    }
}

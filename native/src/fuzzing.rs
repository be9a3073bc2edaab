//! The bodies of the `cargo fuzz` targets in `native/fuzz/`, one pure function per
//! target, each taking the fuzzer's bytes.
//!
//! They live in the library, not the fuzz crate, so that the stable test suite runs
//! them too: `native/tests/fuzz_corpus.rs` feeds every seed of
//! `native/fuzz/corpus/<target>/` through the matching function. Each one checks that
//! nothing panics on any input, and asserts the round trips that are well defined; a
//! failed assertion is a bug, reported by the fuzzer as a crash.
//!
//! Not a stable API: hidden from the docs, for the fuzzer and its smoke test only.

use crate::serial::framer::{Framer, Framing, Incoming, SerialEvent};
use crate::serial::structs::{StructCodec, StructError, StructFormat};
use crate::video::frame::Frame;
use crate::video::h264::{
    is_keyframe, nal_type, split_access_units, split_nals, sps_size, ParameterSets, MAX_SPS_MBS,
    NAL_PPS, NAL_SPS,
};
use crate::video::source::file::{AnnexBSource, Y4mSource};
use crate::video::source::{EncodedSource, VideoSource};
use serde_json::Value;
use shared_protocol::{Control, SessionDescription, Telemetry, MAX_MESSAGE_BYTES};

/// One target's body: the fuzzer's bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its file under `native/fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("control", control),
    ("structs", structs),
    ("h264", h264),
    ("y4m", y4m),
    ("framer", framer),
];

/// Two JSON values are equal, numbers up to the last bits of a float: serde_json
/// parses floats with best-effort precision, so a float may come back one ulp off.
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                    _ => false,
                }
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// `message`, sent as its wire text and parsed again, is the same kind of message
/// saying the same. A canonical number may be longer than the input's (1e15 is
/// written out), so a wire text over the message limit is not checked.
fn round_trip<M: std::fmt::Debug, E: std::fmt::Display>(
    message: &M,
    to_text: impl Fn(&M) -> String,
    parse: impl Fn(&str) -> Result<M, E>,
) {
    let wire = to_text(message);
    if wire.len() > MAX_MESSAGE_BYTES {
        return;
    }
    let again =
        parse(&wire).unwrap_or_else(|e| panic!("{message:?} sent as {wire:?} does not parse: {e}"));
    assert_eq!(
        std::mem::discriminant(message),
        std::mem::discriminant(&again),
        "{message:?} sent as {wire:?} came back as {again:?}"
    );
    assert!(
        same_wire(&wire, &to_text(&again)),
        "{message:?} sent as {wire:?} came back as {again:?}"
    );
}

/// Two wire texts say the same: equal JSON (see [`json_close`]), or equal text.
fn same_wire(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => json_close(&x, &y),
        _ => a == b,
    }
}

/// Data-channel messages and signaling: [`crate::rtc::session::read`] on the raw
/// bytes; [`Control::parse`], [`Telemetry::parse`] and
/// [`SessionDescription::from_json`] on the text. Whatever parses must come back the
/// same kind of message, saying the same, from its own wire text.
pub fn control(data: &[u8]) {
    let _ = crate::rtc::session::read(data, 0);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = Control::parse(text) {
        round_trip(&message, Control::to_text, Control::parse);
    }
    if let Ok(message) = Telemetry::parse(text) {
        round_trip(&message, Telemetry::to_text, Telemetry::parse);
    }
    if let Ok(description) = SessionDescription::from_json(text) {
        let wire = description.to_json();
        assert_eq!(
            SessionDescription::from_json(&wire).as_ref(),
            Ok(&description),
            "sent as {wire:?}"
        );
    }
}

/// The serial struct codec. The first byte gives the format's length (low 5 bits)
/// and whether the codec has keys (bit 5); the format string follows, then bytes.
/// Every whole struct of those bytes that unpacks packs back to the same bytes (pads
/// zeroed), through [`StructFormat`] and [`StructCodec`] alike; bytes that parse as
/// JSON are packed, and what packs unpacks.
pub fn structs(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let (format_text, body) = rest.split_at(usize::from(head & 0x1F).min(rest.len()));
    let format_text = String::from_utf8_lossy(format_text);
    let Ok(format) = StructFormat::parse(&format_text) else {
        return;
    };
    let size = format.size();
    let fields = format.fields();
    assert!(
        fields.iter().all(|f| f.offset + f.code.size() <= size),
        "{format_text:?}: a field lies outside the {size}-byte struct"
    );
    let keys = (head & 0x20 != 0).then(|| (0..fields.len()).map(|i| format!("k{i}")).collect());
    let codec = StructCodec::new(&format_text, keys).expect("one generated key per field");
    match format.unpack(body) {
        Err(StructError::Length { expected, got }) => {
            assert_eq!((expected, got), (size, body.len()));
            assert_ne!(got, size);
        }
        Ok(values) => assert_eq!((body.len(), values.len()), (size, fields.len())),
        Err(_) => assert_eq!(body.len(), size),
    }
    if size > 0 {
        for chunk in body.chunks_exact(size).take(64) {
            let Ok(values) = format.unpack(chunk) else {
                continue;
            };
            let mut expected = vec![0u8; size];
            for f in fields {
                let at = f.offset..f.offset + f.code.size();
                expected[at.clone()].copy_from_slice(&chunk[at]);
            }
            let packed = format
                .pack(&values)
                .unwrap_or_else(|e| panic!("{format_text:?}: {values:?} does not pack: {e}"));
            assert_eq!(packed, expected, "{format_text:?}: {values:?}");
            let decoded = codec.decode(chunk).expect("the format unpacked it");
            assert_eq!(codec.encode(&decoded).as_ref(), Ok(&expected));
        }
    }
    if let Ok(message) = serde_json::from_slice::<Value>(body) {
        if let Ok(bytes) = codec.encode(&message) {
            assert_eq!(bytes.len(), size);
            let back = codec
                .decode(&bytes)
                .unwrap_or_else(|e| panic!("{format_text:?}: {message} packs, not back: {e}"));
            assert_eq!(codec.encode(&back).as_ref(), Ok(&bytes));
        }
    }
}

/// The H.264 Annex B parser: NAL units, access units, parameter sets, SPS sizes and
/// the Annex B file source, on any bytes.
pub fn h264(data: &[u8]) {
    const MAX_SIDE: u32 = MAX_SPS_MBS * 16;
    let nals = split_nals(data);
    for nal in &nals {
        assert!(!nal.is_empty() && nal.last() != Some(&0), "{nal:?}");
        assert!(!nal.windows(3).any(|w| w == [0, 0, 1]), "{nal:?}");
        if let Ok((w, h)) = sps_size(nal) {
            assert!(
                w > 0 && h > 0 && w <= MAX_SIDE && h <= 2 * MAX_SIDE,
                "{w}x{h}"
            );
        }
    }
    let _ = is_keyframe(data);
    let mut sets = ParameterSets::default();
    let mut resplit = Vec::new();
    for unit in split_access_units(data) {
        let unit_nals = split_nals(&unit);
        let completed = sets.complete(&unit);
        let done = split_nals(&completed);
        assert!(done.ends_with(&unit_nals), "{unit:?} became {completed:?}");
        assert!(done[..done.len() - unit_nals.len()]
            .iter()
            .all(|n| matches!(nal_type(n), NAL_SPS | NAL_PPS)));
        assert_eq!(is_keyframe(&completed), is_keyframe(&unit));
        if let Some((w, h)) = sets.size() {
            assert!(w > 0 && h > 0, "{w}x{h}");
        }
        resplit.extend(unit_nals.iter().map(|n| n.to_vec()));
    }
    assert!(
        nals.len() >= resplit.len() && nals.iter().zip(&resplit).all(|(a, b)| *a == &b[..]),
        "the access units hold other NAL units than the stream"
    );
    if let Ok(mut source) = AnnexBSource::from_bytes("fuzz.h264", data) {
        assert!(!source.is_empty());
        let (w, h) = source.size();
        assert!(w > 0 && h > 0, "{w}x{h}");
        for _ in 0..=source.len().min(64) {
            let frame = source
                .next_frame()
                .expect("a loaded file always has a frame");
            assert!(!frame.data.is_empty());
        }
    }
}

/// The YUV4MPEG2 reader, on a file's bytes: the header, then up to 4 frames (looping).
pub fn y4m(data: &[u8]) {
    let Ok(mut source) = Y4mSource::from_bytes("fuzz.y4m", data.to_vec()) else {
        return;
    };
    let (w, h) = source.size();
    assert!(
        w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0 && w <= 8192 && h <= 8192,
        "{w}x{h}"
    );
    let mut frame = Frame::new(2, 2);
    for _ in 0..4 {
        if source.capture(&mut frame).is_err() {
            break;
        }
        assert_eq!((frame.width, frame.height), (w, h));
        assert_eq!(frame.data.len(), w * h * 3 / 2);
    }
}

/// The serial [`Framer`]. The first byte picks the framing: lines (with a 1 to 4 byte
/// delimiter that follows), raw chunks, or structs (a flags byte, a format string,
/// maybe a start byte). The rest is fed in chunks whose lengths come from the bytes
/// themselves. Lines hold no delimiter, structs re-encode to the format's size and
/// back, and the messages do not depend on how the bytes were cut.
pub fn framer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (framing, stream) = match mode % 3 {
        0 => {
            let n = 1 + usize::from((mode >> 2) & 3);
            if rest.len() < n {
                return;
            }
            let (delimiter, stream) = rest.split_at(n);
            (
                Framing::Lines {
                    delimiter: delimiter.to_vec(),
                },
                stream,
            )
        }
        1 => (Framing::Raw, rest),
        _ => {
            let Some((&flags, rest)) = rest.split_first() else {
                return;
            };
            let (format, rest) = rest.split_at(usize::from(flags & 0x0F).min(rest.len()));
            let Ok(format) = std::str::from_utf8(format) else {
                return;
            };
            let Ok(fields) = StructFormat::parse(format).map(|f| f.fields().len()) else {
                return;
            };
            let keys = (flags & 0x10 != 0).then(|| (0..fields).map(|i| format!("k{i}")).collect());
            let Ok(codec) = StructCodec::new(format, keys) else {
                return;
            };
            let (start_byte, stream) = match (flags & 0x20 != 0, rest.split_first()) {
                (true, Some((&start, stream))) => (Some(start), stream),
                (true, None) => return,
                (false, _) => (None, rest),
            };
            (Framing::Struct { codec, start_byte }, stream)
        }
    };
    let Ok(mut chunked) = Framer::new(framing.clone()) else {
        return;
    };
    let mut events = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + 1 + usize::from(stream[at] % 16)).min(stream.len());
        let before = events.len();
        chunked.push(&stream[at..end], &mut events);
        check_events(&framing, &events[before..]);
        at = end;
    }
    chunked.idle(&mut events);
    let mut after_idle = Vec::new();
    chunked.push(&[], &mut after_idle);
    chunked.idle(&mut after_idle);
    assert!(after_idle.is_empty(), "{after_idle:?}");

    let mut whole = Framer::new(framing.clone()).expect("the same framing");
    let mut whole_events = Vec::new();
    whole.push(stream, &mut whole_events);
    check_events(&framing, &whole_events);
    whole.idle(&mut whole_events);
    let messages = |events: &[SerialEvent]| -> Vec<Incoming> {
        events
            .iter()
            .filter_map(|e| match e {
                SerialEvent::Message(m) => Some(m.clone()),
                SerialEvent::Garbled(_) => None,
            })
            .collect()
    };
    let overflowed = |events: &[SerialEvent]| {
        events
            .iter()
            .any(|e| matches!(e, SerialEvent::Garbled(m) if m.contains("no line delimiter")))
    };
    match &framing {
        Framing::Raw => {
            let bytes = |events: &[SerialEvent]| -> Vec<u8> {
                messages(events)
                    .iter()
                    .flat_map(|m| match m {
                        Incoming::Bytes(b) => b.clone(),
                        other => panic!("raw framing gave {other:?}"),
                    })
                    .collect()
            };
            assert_eq!(bytes(&events), stream);
            assert_eq!(bytes(&whole_events), stream);
        }
        // Over-long lines are cleared where a chunk ends, which depends on the cuts.
        Framing::Lines { .. } if overflowed(&events) || overflowed(&whole_events) => {}
        _ => assert_eq!(messages(&events), messages(&whole_events)),
    }
}

/// What one push may give for `framing`.
fn check_events(framing: &Framing, events: &[SerialEvent]) {
    for event in events {
        match (framing, event) {
            (_, SerialEvent::Garbled(reason)) => assert!(!reason.is_empty()),
            (Framing::Raw, SerialEvent::Message(Incoming::Bytes(b))) => assert!(!b.is_empty()),
            (Framing::Lines { delimiter }, SerialEvent::Message(Incoming::Line(line))) => {
                assert!(
                    !line
                        .as_bytes()
                        .windows(delimiter.len())
                        .any(|w| w == delimiter),
                    "{line:?} holds the delimiter {delimiter:?}"
                );
            }
            (Framing::Struct { codec, .. }, SerialEvent::Message(Incoming::Struct(value))) => {
                let bytes = codec
                    .encode(value)
                    .unwrap_or_else(|e| panic!("decoded {value} does not encode: {e}"));
                assert_eq!(bytes.len(), codec.size(), "{value}");
                assert_eq!(codec.decode(&bytes).as_ref(), Ok(value));
            }
            (framing, SerialEvent::Message(message)) => {
                panic!("{framing:?} gave {message:?}")
            }
        }
    }
}

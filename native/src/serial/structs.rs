//! C-struct packing with Python `struct`-style format strings, as RTCBot's
//! `SerialConnection` uses to talk to an Arduino.
//!
//! A [`StructFormat`] is parsed from a format string such as `"<hB"`:
//!
//! - an optional first character picks byte order and alignment: `<` little-endian,
//!   `>` / `!` big-endian, `=` native order; all three are *packed* (no padding,
//!   standard sizes), which is what an Arduino `__attribute__((packed))` struct
//!   expects. `@` (also the default when no prefix is given, as in Python) is native
//!   order with native sizes **and alignment** (each field aligned to its size, `l`/`L`
//!   the platform's `long`), i.e. an unpacked C struct on *this* machine. For an
//!   Arduino always start with `<`.
//! - codes: `x` pad byte, `c` char (a one-byte string), `b`/`B` i8/u8, `?` bool,
//!   `h`/`H` i16/u16, `i`/`I` and `l`/`L` i32/u32, `q`/`Q` i64/u64, `f` f32, `d` f64;
//! - a decimal repeat count before a code: `3h` is three i16 fields, `4x` four pad bytes;
//! - whitespace between items is ignored.
//!
//! A [`StructCodec`] adds optional key names: with keys, a JSON object
//! (`{"value1": -23, "value2": 101}`) is packed and incoming bytes become an object;
//! without, JSON arrays are used. Every bad value (wrong type, out of range, missing
//! key) is a [`StructError`] naming the field; nothing panics.

use serde_json::{Map, Number, Value};
use thiserror::Error;

/// The most fields (after repeat counts) one format may hold.
pub const MAX_FIELDS: usize = 1024;
/// The largest struct, in bytes, one format may describe.
pub const MAX_SIZE: usize = 64 * 1024;

/// Why a format, a value or a byte string was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StructError {
    /// The format string is not valid.
    #[error("invalid struct format {format:?}: {reason}")]
    Format {
        /// The format string.
        format: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key names do not match the format's fields.
    #[error("struct keys do not match format {format:?}: {reason}")]
    Keys {
        /// The format string.
        format: String,
        /// What is wrong.
        reason: String,
    },
    /// A value cannot be packed into its field.
    #[error("cannot pack {field}: {reason}")]
    Value {
        /// The key name, or `field N`.
        field: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// The message does not have the shape the codec expects.
    #[error("cannot pack message: {0}")]
    Shape(String),
    /// A byte string has the wrong length for the format.
    #[error("struct needs {expected} bytes, got {got}")]
    Length {
        /// The format's size.
        expected: usize,
        /// The bytes given.
        got: usize,
    },
    /// Bytes decode to something JSON cannot hold (a NaN or infinite float).
    #[error("cannot decode {field}: {reason}")]
    Decode {
        /// The key name, or `field N`.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

/// Byte order of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Least significant byte first (`<`, and native on x86 and ARM).
    Little,
    /// Most significant byte first (`>`, `!`).
    Big,
}

/// One field kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `c`: one byte, as a one-character string.
    Char,
    /// `b`
    I8,
    /// `B`
    U8,
    /// `?`
    Bool,
    /// `h`
    I16,
    /// `H`
    U16,
    /// `i`, `l` (standard size)
    I32,
    /// `I`, `L` (standard size)
    U32,
    /// `q`, and `l` in native mode on 64-bit platforms
    I64,
    /// `Q`, and `L` in native mode on 64-bit platforms
    U64,
    /// `f`
    F32,
    /// `d`
    F64,
}

impl Code {
    /// Size in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Char | Self::I8 | Self::U8 | Self::Bool => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }

    /// Integer range, for integer codes.
    fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Self::I8 => (i8::MIN.into(), i8::MAX.into()),
            Self::U8 => (0, u8::MAX.into()),
            Self::I16 => (i16::MIN.into(), i16::MAX.into()),
            Self::U16 => (0, u16::MAX.into()),
            Self::I32 => (i32::MIN.into(), i32::MAX.into()),
            Self::U32 => (0, u32::MAX.into()),
            Self::I64 => (i64::MIN.into(), i64::MAX.into()),
            Self::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// The format character, for messages.
    pub fn letter(self) -> char {
        match self {
            Self::Char => 'c',
            Self::I8 => 'b',
            Self::U8 => 'B',
            Self::Bool => '?',
            Self::I16 => 'h',
            Self::U16 => 'H',
            Self::I32 => 'i',
            Self::U32 => 'I',
            Self::I64 => 'q',
            Self::U64 => 'Q',
            Self::F32 => 'f',
            Self::F64 => 'd',
        }
    }
}

/// One value field and where it sits in the struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// What it holds.
    pub code: Code,
    /// Byte offset from the start of the struct.
    pub offset: usize,
}

/// A parsed format string: the layout of one C struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructFormat {
    text: String,
    order: ByteOrder,
    fields: Vec<Field>,
    size: usize,
}

impl StructFormat {
    /// Parses a Python `struct` format string; see the module docs.
    pub fn parse(format: &str) -> Result<Self, StructError> {
        let err = |reason: String| StructError::Format {
            format: format.to_owned(),
            reason,
        };
        let native_order = if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let mut chars = format.chars().peekable();
        let (order, aligned) = match chars.peek() {
            Some('<') => (ByteOrder::Little, false),
            Some('>' | '!') => (ByteOrder::Big, false),
            Some('=') => (native_order, false),
            Some('@') => (native_order, true),
            _ => (native_order, true),
        };
        if matches!(chars.peek(), Some('<' | '>' | '!' | '=' | '@')) {
            chars.next();
        }
        let long_size = if aligned {
            std::mem::size_of::<std::ffi::c_long>()
        } else {
            4
        };
        let mut fields = Vec::new();
        let mut size = 0usize;
        while let Some(c) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            let mut count: Option<usize> = None;
            let mut code_char = c;
            if c.is_ascii_digit() {
                let mut n = c.to_digit(10).unwrap_or(0) as usize;
                loop {
                    match chars.next() {
                        Some(d) if d.is_ascii_digit() => {
                            n = n
                                .checked_mul(10)
                                .and_then(|n| n.checked_add(d.to_digit(10).unwrap_or(0) as usize))
                                .filter(|n| *n <= MAX_SIZE)
                                .ok_or_else(|| err(format!("repeat count over {MAX_SIZE}")))?;
                        }
                        Some(other) => {
                            code_char = other;
                            break;
                        }
                        None => {
                            return Err(err("a repeat count must be followed by a code".into()))
                        }
                    }
                }
                count = Some(n);
            }
            let count = count.unwrap_or(1);
            if code_char == 'x' {
                size += count;
            } else {
                let code = match code_char {
                    'c' => Code::Char,
                    'b' => Code::I8,
                    'B' => Code::U8,
                    '?' => Code::Bool,
                    'h' => Code::I16,
                    'H' => Code::U16,
                    'i' => Code::I32,
                    'I' => Code::U32,
                    'l' if long_size == 8 => Code::I64,
                    'L' if long_size == 8 => Code::U64,
                    'l' => Code::I32,
                    'L' => Code::U32,
                    'q' => Code::I64,
                    'Q' => Code::U64,
                    'f' => Code::F32,
                    'd' => Code::F64,
                    '<' | '>' | '!' | '=' | '@' => {
                        return Err(err(format!(
                            "byte order {code_char:?} is only allowed as the first character"
                        )))
                    }
                    's' | 'p' | 'e' | 'n' | 'N' | 'P' => {
                        return Err(err(format!("code {code_char:?} is not supported")))
                    }
                    other => return Err(err(format!("unknown code {other:?}"))),
                };
                for _ in 0..count {
                    if aligned {
                        let align = code.size();
                        size = size.div_ceil(align) * align;
                    }
                    fields.push(Field { code, offset: size });
                    size += code.size();
                    if fields.len() > MAX_FIELDS {
                        return Err(err(format!("more than {MAX_FIELDS} fields")));
                    }
                }
            }
            if size > MAX_SIZE {
                return Err(err(format!("larger than {MAX_SIZE} bytes")));
            }
        }
        Ok(Self {
            text: format.to_owned(),
            order,
            fields,
            size,
        })
    }

    /// The format string it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Struct size in bytes (Python's `struct.calcsize`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Byte order.
    pub fn order(&self) -> ByteOrder {
        self.order
    }

    /// The value fields, pads excluded.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Packs one value per field, in order (Python's `struct.pack`).
    pub fn pack(&self, values: &[Value]) -> Result<Vec<u8>, StructError> {
        self.pack_named(values.iter(), |i| format!("field {i}"))
    }

    fn pack_named<'a>(
        &self,
        values: impl ExactSizeIterator<Item = &'a Value>,
        name: impl Fn(usize) -> String,
    ) -> Result<Vec<u8>, StructError> {
        if values.len() != self.fields.len() {
            return Err(StructError::Shape(format!(
                "format {:?} has {} fields, got {} values",
                self.text,
                self.fields.len(),
                values.len()
            )));
        }
        let mut out = vec![0u8; self.size];
        for (i, (field, value)) in self.fields.iter().zip(values).enumerate() {
            let bytes = encode_value(field.code, self.order, value).map_err(|reason| {
                StructError::Value {
                    field: name(i),
                    reason,
                }
            })?;
            out[field.offset..field.offset + bytes.len()].copy_from_slice(&bytes);
        }
        Ok(out)
    }

    /// Unpacks exactly [`Self::size`] bytes into one value per field.
    pub fn unpack(&self, bytes: &[u8]) -> Result<Vec<Value>, StructError> {
        self.unpack_named(bytes, |i| format!("field {i}"))
    }

    fn unpack_named(
        &self,
        bytes: &[u8],
        name: impl Fn(usize) -> String,
    ) -> Result<Vec<Value>, StructError> {
        if bytes.len() != self.size {
            return Err(StructError::Length {
                expected: self.size,
                got: bytes.len(),
            });
        }
        self.fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let raw = &bytes[f.offset..f.offset + f.code.size()];
                decode_value(f.code, self.order, raw).map_err(|reason| StructError::Decode {
                    field: name(i),
                    reason,
                })
            })
            .collect()
    }
}

fn ordered<const N: usize>(mut le: [u8; N], order: ByteOrder) -> Vec<u8> {
    if order == ByteOrder::Big {
        le.reverse();
    }
    le.to_vec()
}

fn read<const N: usize>(raw: &[u8], order: ByteOrder) -> [u8; N] {
    let mut le = [0u8; N];
    le.copy_from_slice(raw);
    if order == ByteOrder::Big {
        le.reverse();
    }
    le
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

fn encode_value(code: Code, order: ByteOrder, value: &Value) -> Result<Vec<u8>, String> {
    let letter = code.letter();
    match code {
        Code::Char => match value {
            Value::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if (c as u32) < 256 => Ok(vec![c as u32 as u8]),
                    _ => Err(format!(
                        "'c' needs a one-character string (U+0000..U+00FF), got {}",
                        describe(value)
                    )),
                }
            }
            _ => Err(format!(
                "'c' needs a one-character string, got {}",
                describe(value)
            )),
        },
        Code::Bool => match value {
            Value::Bool(b) => Ok(vec![u8::from(*b)]),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(vec![n.as_u64().unwrap_or(0) as u8])
            }
            _ => Err(format!("'?' needs true or false, got {}", describe(value))),
        },
        Code::F32 | Code::F64 => {
            let Some(x) = value.as_f64() else {
                return Err(format!(
                    "'{letter}' needs a number, got {}",
                    describe(value)
                ));
            };
            if code == Code::F32 {
                if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                    return Err(format!("{x} is too large for 'f' (32-bit float)"));
                }
                Ok(ordered((x as f32).to_le_bytes(), order))
            } else {
                Ok(ordered(x.to_le_bytes(), order))
            }
        }
        _ => {
            let (min, max) = code.int_range().unwrap_or((0, 0));
            let n: i128 = match value {
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        i.into()
                    } else if let Some(u) = n.as_u64() {
                        u.into()
                    } else {
                        let f = n.as_f64().unwrap_or(f64::NAN);
                        if f.fract() != 0.0 || !f.is_finite() {
                            return Err(format!(
                                "'{letter}' needs an integer, got {}",
                                describe(value)
                            ));
                        }
                        if f < min as f64 || f > max as f64 {
                            return Err(format!(
                                "{f} is out of range for '{letter}' ({min}..={max})"
                            ));
                        }
                        f as i128
                    }
                }
                Value::Bool(b) => i128::from(*b),
                _ => {
                    return Err(format!(
                        "'{letter}' needs an integer, got {}",
                        describe(value)
                    ))
                }
            };
            if n < min || n > max {
                return Err(format!(
                    "{n} is out of range for '{letter}' ({min}..={max})"
                ));
            }
            Ok(match code {
                Code::I8 | Code::U8 => vec![n as u8],
                Code::I16 | Code::U16 => ordered((n as u16).to_le_bytes(), order),
                Code::I32 | Code::U32 => ordered((n as u32).to_le_bytes(), order),
                _ => ordered((n as u64).to_le_bytes(), order),
            })
        }
    }
}

fn decode_value(code: Code, order: ByteOrder, raw: &[u8]) -> Result<Value, String> {
    Ok(match code {
        Code::Char => Value::String(char::from(raw[0]).to_string()),
        Code::Bool => match raw[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            other => return Err(format!("bool byte is {other}, not 0 or 1")),
        },
        Code::I8 => Value::from(raw[0] as i8),
        Code::U8 => Value::from(raw[0]),
        Code::I16 => Value::from(i16::from_le_bytes(read(raw, order))),
        Code::U16 => Value::from(u16::from_le_bytes(read(raw, order))),
        Code::I32 => Value::from(i32::from_le_bytes(read(raw, order))),
        Code::U32 => Value::from(u32::from_le_bytes(read(raw, order))),
        Code::I64 => Value::from(i64::from_le_bytes(read(raw, order))),
        Code::U64 => Value::from(u64::from_le_bytes(read(raw, order))),
        Code::F32 | Code::F64 => {
            let x = if code == Code::F32 {
                f64::from(f32::from_le_bytes(read(raw, order)))
            } else {
                f64::from_le_bytes(read(raw, order))
            };
            Value::Number(
                Number::from_f64(x)
                    .ok_or_else(|| format!("float is {x}, which JSON cannot hold"))?,
            )
        }
    })
}

/// A format with optional key names: JSON in, bytes out, and back.
#[derive(Debug, Clone, PartialEq)]
pub struct StructCodec {
    format: StructFormat,
    keys: Option<Vec<String>>,
}

impl StructCodec {
    /// A codec for `format`; with `keys`, one unique non-empty name per value field
    /// (pads have none).
    pub fn new(format: &str, keys: Option<Vec<String>>) -> Result<Self, StructError> {
        let format = StructFormat::parse(format)?;
        if let Some(keys) = &keys {
            let err = |reason: String| StructError::Keys {
                format: format.as_str().to_owned(),
                reason,
            };
            if keys.len() != format.fields().len() {
                return Err(err(format!(
                    "{} keys for {} fields",
                    keys.len(),
                    format.fields().len()
                )));
            }
            for (i, key) in keys.iter().enumerate() {
                if key.is_empty() {
                    return Err(err(format!("key {i} is empty")));
                }
                if keys[..i].contains(key) {
                    return Err(err(format!("key {key:?} appears twice")));
                }
            }
        }
        Ok(Self { format, keys })
    }

    /// The layout.
    pub fn format(&self) -> &StructFormat {
        &self.format
    }

    /// The key names, if any.
    pub fn keys(&self) -> Option<&[String]> {
        self.keys.as_deref()
    }

    /// Struct size in bytes.
    pub fn size(&self) -> usize {
        self.format.size()
    }

    fn name(&self, i: usize) -> String {
        match &self.keys {
            Some(keys) => format!("{:?}", keys[i]),
            None => format!("field {i}"),
        }
    }

    /// Packs a JSON object (with keys: every key required, no others) or array.
    pub fn encode(&self, message: &Value) -> Result<Vec<u8>, StructError> {
        match (&self.keys, message) {
            (Some(keys), Value::Object(map)) => {
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    values.push(map.get(key).ok_or_else(|| {
                        StructError::Shape(format!("the object has no key {key:?}"))
                    })?);
                }
                if let Some(extra) = map.keys().find(|k| !keys.contains(k)) {
                    return Err(StructError::Shape(format!(
                        "unknown key {extra:?} (the struct has {keys:?})"
                    )));
                }
                self.format.pack_named(values.into_iter(), |i| self.name(i))
            }
            (_, Value::Array(values)) => self.format.pack_named(values.iter(), |i| self.name(i)),
            (Some(_), other) => Err(StructError::Shape(format!(
                "expected a JSON object or array, got {}",
                describe(other)
            ))),
            (None, other) => Err(StructError::Shape(format!(
                "expected a JSON array (no keys are configured), got {}",
                describe(other)
            ))),
        }
    }

    /// Unpacks one struct: an object with keys, an array without.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, StructError> {
        let values = self.format.unpack_named(bytes, |i| self.name(i))?;
        Ok(match &self.keys {
            Some(keys) => Value::Object(keys.iter().cloned().zip(values).collect::<Map<_, _>>()),
            None => Value::Array(values),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(k: &[&str]) -> Option<Vec<String>> {
        Some(k.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn packs_the_docs_control_message() {
        // RTCBot docs: writeFormat="<hB", {"value1": -23, "value2": 101}.
        let codec = StructCodec::new("<hB", keys(&["value1", "value2"])).unwrap();
        assert_eq!(codec.size(), 3);
        let bytes = codec
            .encode(&json!({"value1": -23, "value2": 101}))
            .unwrap();
        assert_eq!(bytes, [0xE9, 0xFF, 101]);
        assert_eq!(
            codec.decode(&bytes).unwrap(),
            json!({"value1": -23, "value2": 101})
        );
    }

    #[test]
    fn decodes_the_docs_sensor_message_and_echo_example() {
        // sensorMessage { uint8_t sensorID = 12; uint16_t measurement = 123; }
        let sensor = StructCodec::new("<BH", keys(&["sensorID", "measurement"])).unwrap();
        assert_eq!(
            sensor.decode(&[12, 123, 0]).unwrap(),
            json!({"sensorID": 12, "measurement": 123})
        );
        // Full example: write "<HB" {1003, 2}; the Arduino swaps; read "<BH" {2, 1003}.
        let write = StructCodec::new("<HB", keys(&["value1", "value2"])).unwrap();
        let read = StructCodec::new("<BH", keys(&["value1", "value2"])).unwrap();
        let out = write.encode(&json!({"value1": 1003, "value2": 2})).unwrap();
        assert_eq!(out, [0xEB, 0x03, 0x02]);
        let swapped = [out[2], out[0], out[1]];
        assert_eq!(
            read.decode(&swapped).unwrap(),
            json!({"value1": 2, "value2": 1003})
        );
    }

    #[test]
    fn matches_python_struct_for_every_code() {
        // Expected bytes from CPython: struct.pack(fmt, *values).
        let cases: &[(&str, Value, &[u8])] = &[
            (">hB", json!([-23, 101]), &[0xFF, 0xE9, 101]),
            ("!I", json!([1]), &[0, 0, 0, 1]),
            ("<bB?", json!([-1, 255, true]), &[0xFF, 0xFF, 1]),
            ("<c", json!(["A"]), b"A"),
            (
                "<iI",
                json!([-2, 4_000_000_000u32]),
                &[0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x28, 0x6B, 0xEE],
            ),
            ("<lL", json!([-1, 1]), &[0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0]),
            (
                "<q",
                json!([-2]),
                &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            ),
            (">Q", json!([u64::MAX]), &[0xFF; 8]),
            ("<f", json!([1.5]), &[0, 0, 0xC0, 0x3F]),
            (">d", json!([-2.0]), &[0xC0, 0, 0, 0, 0, 0, 0, 0]),
            ("<3h", json!([1, 2, 3]), &[1, 0, 2, 0, 3, 0]),
            ("<B2xH", json!([7, 258]), &[7, 0, 0, 2, 1]),
            ("< h B ", json!([1, 2]), &[1, 0, 2]),
            // Native alignment: '@bi' pads the byte to 4.
            ("@bi", json!([1, 2]), &[1, 0, 0, 0, 2, 0, 0, 0]),
            ("=bi", json!([1, 2]), &[1, 2, 0, 0, 0]),
            ("<0h", json!([]), &[]),
        ];
        for (fmt, values, expected) in cases {
            let f = StructFormat::parse(fmt).unwrap();
            let values = values.as_array().unwrap();
            let packed = f.pack(values).unwrap_or_else(|e| panic!("{fmt}: {e}"));
            assert_eq!(&packed, expected, "{fmt}");
            assert_eq!(f.size(), expected.len(), "{fmt}");
            assert_eq!(&f.unpack(&packed).unwrap(), values, "{fmt}");
        }
        // Integral floats are accepted for integer fields (the drive mapping rounds).
        assert_eq!(
            StructFormat::parse("<h")
                .unwrap()
                .pack(&[json!(3.0)])
                .unwrap(),
            [3, 0]
        );
    }

    #[test]
    fn refuses_bad_formats_and_values_clearly() {
        let formats = [
            ("<hz", "unknown code 'z'"),
            ("<h<", "only allowed as the first character"),
            ("<10s", "'s' is not supported"),
            ("<3", "must be followed by a code"),
            ("<99999999999h", "repeat count"),
            ("<2000B", "more than 1024 fields"),
        ];
        for (fmt, expected) in formats {
            let err = StructFormat::parse(fmt).unwrap_err().to_string();
            assert!(err.contains(expected), "{fmt}: {err}");
        }
        let codec = StructCodec::new("<hB?f", keys(&["a", "b", "c", "d"])).unwrap();
        let values = [
            (
                json!({"a": 40000, "b": 1, "c": true, "d": 0}),
                "\"a\": 40000 is out of range for 'h' (-32768..=32767)",
            ),
            (
                json!({"a": 1, "b": -1, "c": true, "d": 0}),
                "\"b\": -1 is out of range for 'B'",
            ),
            (
                json!({"a": 1.5, "b": 1, "c": true, "d": 0}),
                "'h' needs an integer, got 1.5",
            ),
            (
                json!({"a": "x", "b": 1, "c": true, "d": 0}),
                "'h' needs an integer, got \"x\"",
            ),
            (
                json!({"a": 1, "b": 1, "c": 2, "d": 0}),
                "'?' needs true or false",
            ),
            (
                json!({"a": 1, "b": 1, "c": true, "d": 1e300}),
                "too large for 'f'",
            ),
            (json!({"a": 1, "b": 1, "c": true}), "no key \"d\""),
            (
                json!({"a": 1, "b": 1, "c": true, "d": 0, "e": 1}),
                "unknown key \"e\"",
            ),
            (json!([1, 2]), "has 4 fields, got 2 values"),
            (json!("text"), "expected a JSON object or array"),
        ];
        for (value, expected) in values {
            let err = codec.encode(&value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
        assert!(StructCodec::new("<hB", keys(&["a"]))
            .unwrap_err()
            .to_string()
            .contains("1 keys for 2 fields"));
        assert!(StructCodec::new("<hB", keys(&["a", "a"]))
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert_eq!(
            codec.decode(&[1, 2]).unwrap_err(),
            StructError::Length {
                expected: 8,
                got: 2
            }
        );
        let err = codec
            .decode(&[0, 0, 0, 7, 0, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"c\": bool byte is 7"), "{err}");
        let nan = StructCodec::new("<f", None).unwrap();
        assert!(nan.decode(&f32::NAN.to_le_bytes()).is_err());
    }

    #[test]
    fn never_panics_on_odd_formats_or_bytes() {
        // Formats that parse, with their size; bytes of any other length are a
        // Length error, and the right length unpacks.
        for (fmt, size) in [("", 0), ("<", 0), ("@", 0), ("x", 1), ("<4x", 4)] {
            let f = StructFormat::parse(fmt).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
            assert_eq!((f.size(), f.fields().len()), (size, 0), "{fmt:?}");
            for len in 0..40 {
                let got = f.unpack(&vec![0xFF; len]);
                if len == size {
                    assert_eq!(got, Ok(vec![]), "{fmt:?} with {len} bytes");
                } else {
                    assert_eq!(
                        got,
                        Err(StructError::Length {
                            expected: size,
                            got: len
                        }),
                        "{fmt:?} with {len} bytes"
                    );
                }
            }
        }
        // 4 + 4 + 1 + 8 + 8 + 8 + 4 + 1 + 1 bytes, packed. All-0xFF bytes stop at the
        // bool (field 2), whose byte must be 0 or 1.
        let f = StructFormat::parse("<ll?QqdfcB").unwrap();
        assert_eq!((f.size(), f.fields().len()), (39, 9));
        for len in 0..40 {
            match f.unpack(&vec![0xFF; len]) {
                Err(StructError::Decode { field, reason }) if len == 39 => {
                    assert_eq!(field, "field 2");
                    assert!(reason.contains("bool byte is 255"), "{reason}");
                }
                Err(StructError::Length { expected: 39, got }) if len != 39 => {
                    assert_eq!(got, len);
                }
                other => panic!("{len} bytes gave {other:?}"),
            }
        }
        // Formats that do not parse are Format errors saying why.
        for (fmt, expected) in [
            ("<<", "only allowed as the first character"),
            ("9", "must be followed by a code"),
            ("h9", "must be followed by a code"),
            ("\u{0}", "unknown code"),
            ("é", "unknown code 'é'"),
        ] {
            match StructFormat::parse(fmt) {
                Err(StructError::Format { format, reason }) => {
                    assert_eq!(format, fmt);
                    assert!(reason.contains(expected), "{fmt:?}: {reason}");
                }
                other => panic!("{fmt:?} gave {other:?}"),
            }
        }
    }
}

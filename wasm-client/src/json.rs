//! The little JSON the client needs, without serde_json in the bundle.
//!
//! Writing is plain Rust: [`object`] writes a flat object with its fields in the given
//! order, escaping strings exactly as `JSON.stringify` (and serde_json) do. Numbers are
//! written the way JavaScript's `String(n)` writes them (`1`, `0.25`, `1e+21`), which is
//! what `JSON.stringify` writes too; in the browser that is `Number.prototype.toString`
//! itself, since core's float formatting is a large part of a wasm bundle.
//!
//! Reading goes through [`Parsed`], a parsed JSON value that the message readers in
//! [`wire`](crate::wire) look into: in the browser the result of `JSON.parse`, off the
//! browser (native builds and tests) a serde_json `Value`.

/// One field value of a flat JSON object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A JSON string.
    Str(&'a str),
    /// A JSON number; NaN and infinities are written `null`, as `JSON.stringify` does.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// The JSON text of an object with these fields, in this order.
pub fn object(fields: &[(&str, Field)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(&mut out, key);
        out.push(':');
        match *value {
            Field::Str(s) => quote(&mut out, s),
            Field::Num(n) if n.is_finite() => out.push_str(&number(n)),
            Field::Num(_) => out.push_str("null"),
            Field::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        }
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as `\n`-style
/// escapes or `\u00XX`, everything else (non-ASCII too) as it is.
fn quote(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite number as JavaScript's `String(n)` writes it.
#[cfg(target_arch = "wasm32")]
fn number(n: f64) -> String {
    crate::util::number(n)
}

/// A finite number as JavaScript's `String(n)` writes it: the shortest digits that
/// read back as `n`, in plain notation from 1e-6 up to 1e21 and as `1.5e+21` /
/// `1e-7` outside; `-0` as `0`.
#[cfg(not(target_arch = "wasm32"))]
fn number(n: f64) -> String {
    if n == 0.0 {
        return "0".to_owned();
    }
    let abs = n.abs();
    if (1e-6..1e21).contains(&abs) {
        // Rust's `Display` also writes the shortest round-trip digits, never with an
        // exponent.
        format!("{n}")
    } else {
        let text = format!("{n:e}");
        match text.split_once('e') {
            Some((digits, exp)) if !exp.starts_with('-') => format!("{digits}e+{exp}"),
            _ => text,
        }
    }
}

/// A parsed JSON value, as the message readers see it.
pub trait Parsed: Sized {
    /// The value of a JSON text, `None` when it is not JSON.
    fn parse(text: &str) -> Option<Self>;
    /// True for objects and arrays (`typeof v === "object"`, `null` excluded).
    fn is_object(&self) -> bool;
    /// An object's field; `None` when it is missing or this is not an object.
    fn field(&self, key: &str) -> Option<Self>;
    /// `null`.
    fn is_null(&self) -> bool;
    /// The number, if this is one.
    fn as_f64(&self) -> Option<f64>;
    /// The boolean, if this is one.
    fn as_bool(&self) -> Option<bool>;
    /// The string, if this is one.
    fn as_string(&self) -> Option<String>;
    /// The value written back as compact JSON text.
    fn to_text(&self) -> Option<String>;
    /// An object's fields in order (none for anything else).
    fn entries(&self) -> Vec<(String, Self)>;
    /// An array's items (`None` for anything else).
    fn items(&self) -> Option<Vec<Self>>;
}

/// A value as a person reads it: a string as it is, a number as JavaScript writes it,
/// anything else as compact JSON.
pub fn display<V: Parsed>(value: &V) -> String {
    if let Some(text) = value.as_string() {
        return text;
    }
    match value.as_f64() {
        Some(n) if n.is_finite() => number(n),
        _ => value.to_text().unwrap_or_default(),
    }
}

#[cfg(target_arch = "wasm32")]
impl Parsed for wasm_bindgen::JsValue {
    fn parse(text: &str) -> Option<Self> {
        js_sys::JSON::parse(text).ok()
    }

    fn is_object(&self) -> bool {
        wasm_bindgen::JsValue::is_object(self)
    }

    fn field(&self, key: &str) -> Option<Self> {
        if !wasm_bindgen::JsValue::is_object(self) {
            return None;
        }
        js_sys::Reflect::get(self, &key.into())
            .ok()
            .filter(|v| !v.is_undefined())
    }

    fn is_null(&self) -> bool {
        wasm_bindgen::JsValue::is_null(self)
    }

    fn as_f64(&self) -> Option<f64> {
        wasm_bindgen::JsValue::as_f64(self)
    }

    fn as_bool(&self) -> Option<bool> {
        wasm_bindgen::JsValue::as_bool(self)
    }

    fn as_string(&self) -> Option<String> {
        wasm_bindgen::JsValue::as_string(self)
    }

    fn to_text(&self) -> Option<String> {
        js_sys::JSON::stringify(self).ok().map(String::from)
    }

    fn entries(&self) -> Vec<(String, Self)> {
        use wasm_bindgen::JsCast;
        if !wasm_bindgen::JsValue::is_object(self) || js_sys::Array::is_array(self) {
            return Vec::new();
        }
        let Some(object) = self.dyn_ref::<js_sys::Object>() else {
            return Vec::new();
        };
        js_sys::Object::entries(object)
            .iter()
            .filter_map(|pair| {
                let pair: js_sys::Array = pair.dyn_into().ok()?;
                Some((pair.get(0).as_string()?, pair.get(1)))
            })
            .collect()
    }

    fn items(&self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(self).then(|| js_sys::Array::from(self).iter().collect())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Parsed for serde_json::Value {
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    fn is_object(&self) -> bool {
        self.is_object() || self.is_array()
    }

    fn field(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key).cloned()
    }

    fn is_null(&self) -> bool {
        serde_json::Value::is_null(self)
    }

    fn as_f64(&self) -> Option<f64> {
        serde_json::Value::as_f64(self)
    }

    fn as_bool(&self) -> Option<bool> {
        serde_json::Value::as_bool(self)
    }

    fn as_string(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn to_text(&self) -> Option<String> {
        Some(self.to_string())
    }

    fn entries(&self) -> Vec<(String, Self)> {
        self.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
}

/// The parsed JSON value of this target: `JSON.parse`'s in the browser.
#[cfg(target_arch = "wasm32")]
pub type Value = wasm_bindgen::JsValue;

/// The parsed JSON value of this target: serde_json's off the browser.
#[cfg(not(target_arch = "wasm32"))]
pub type Value = serde_json::Value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
            "quote \" backslash \\ slash /",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}",
            "ünï 😀 \u{2028}",
        ] {
            let mut out = String::new();
            quote(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn numbers_are_written_like_javascript() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (0.001, "0.001"),
            (-0.333, "-0.333"),
            (1234.5678, "1234.5678"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.7e308, "1.7e+308"),
            (9_007_199_254_740_991.0, "9007199254740991"),
        ];
        for (n, js) in cases {
            assert_eq!(number(n), js, "{n:?}");
        }
    }

    #[test]
    fn objects_keep_their_field_order() {
        let text = object(&[
            ("b", Field::Num(f64::NAN)),
            ("a", Field::Bool(true)),
            ("c", Field::Str("x")),
        ]);
        assert_eq!(text, r#"{"b":null,"a":true,"c":"x"}"#);
        assert_eq!(object(&[]), "{}");
    }
}

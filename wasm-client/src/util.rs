//! Small helpers shared by the client modules: browser ones (wasm32 only),
//! [`median`] and [`clamp`].

#[cfg(target_arch = "wasm32")]
pub use browser::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use crate::json::Field;
    use wasm_bindgen::{JsCast, JsValue};

    /// `performance.now()` in milliseconds (0 outside a window).
    pub fn now_ms() -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map_or(0.0, |p| p.now())
    }

    /// The wall clock in microseconds since the Unix epoch, as precise as the browser
    /// allows: `performance.timeOrigin + performance.now()`.
    pub fn epoch_us() -> f64 {
        match web_sys::window().and_then(|w| w.performance()) {
            Some(p) => (p.time_origin() + p.now()) * 1000.0,
            None => js_sys::Date::now() * 1000.0,
        }
    }

    /// A query parameter of the page URL.
    pub fn query_param(name: &str) -> Option<String> {
        let search = web_sys::window()?.location().search().ok()?;
        web_sys::UrlSearchParams::new_with_str(&search)
            .ok()?
            .get(name)
            .filter(|v| !v.is_empty())
    }

    /// Where the page keeps the robot's token (per origin, so per robot).
    const TOKEN_KEY: &str = "rtcbot-token";

    /// The robot's token: `?token=` in the page URL (the address the robot printed,
    /// or its QR code), which is then kept in `localStorage` and taken out of the
    /// address bar (so it is not bookmarked, shared or shown); else the kept one.
    pub fn page_token() -> Option<String> {
        let window = web_sys::window()?;
        let storage = window.local_storage().ok().flatten();
        let Some(token) = query_param("token") else {
            return storage.and_then(|s| s.get_item(TOKEN_KEY).ok().flatten());
        };
        if let Some(storage) = &storage {
            let _ = storage.set_item(TOKEN_KEY, &token);
        }
        let location = window.location();
        if let (Ok(search), Ok(path), Ok(hash), Ok(history)) = (
            location.search(),
            location.pathname(),
            location.hash(),
            window.history(),
        ) {
            if let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) {
                params.delete("token");
                let rest = String::from(params.to_string());
                let query = if rest.is_empty() {
                    String::new()
                } else {
                    format!("?{rest}")
                };
                let _ = history.replace_state_with_url(
                    &JsValue::NULL,
                    "",
                    Some(&format!("{path}{query}{hash}")),
                );
            }
        }
        Some(token)
    }

    /// A plain JS object with these fields, set in this order.
    pub fn object(fields: &[(&str, JsValue)]) -> js_sys::Object {
        let object = js_sys::Object::new();
        for (key, value) in fields {
            let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), value);
        }
        object
    }

    /// `v` with `digits` decimals, as JavaScript's `toFixed` writes it: `fixed(2.25, 1)`
    /// is `"2.3"`. Numbers on the page are formatted by the browser because core's float
    /// formatting is a large part of a wasm bundle.
    pub fn fixed(v: f64, digits: u8) -> String {
        js_sys::Number::from(v)
            .to_fixed(digits)
            .map_or_else(|_| String::new(), String::from)
    }

    /// Like [`fixed`], with a `+` before numbers that are not negative.
    pub fn signed(v: f64, digits: u8) -> String {
        let text = fixed(v, digits);
        if text.starts_with('-') {
            text
        } else {
            format!("+{text}")
        }
    }

    /// `v` as JavaScript's `String(v)` writes it: the shortest text that reads back as
    /// `v` (`1`, `0.25`).
    pub fn number(v: f64) -> String {
        js_sys::Number::from(v)
            .to_string_with_radix(10)
            .map_or_else(|_| String::new(), String::from)
    }

    /// What `error` says, word for word as its `Display`, but with the refused number
    /// written by JavaScript ([`number`]): `Display` would link core's float
    /// formatting (about 6 KB of the npm package's gzipped wasm) for that one field.
    pub fn protocol_error(error: &shared_protocol::ProtocolError) -> String {
        use shared_protocol::ProtocolError as E;
        match error {
            E::TooLarge { len, max } => {
                format!("message is {len} bytes, larger than the {max}-byte limit")
            }
            E::Malformed { what, detail } => format!("malformed {what}: {detail}"),
            E::UnknownType(kind) => format!(
                "unknown message type {kind:?} (plain JSON without a \"type\" field is passed \
                 through)"
            ),
            E::OutOfRange {
                field,
                value,
                range,
            } => format!(
                "{field} = {} is out of range (expected {range})",
                number(*value)
            ),
            E::InvalidSdp(why) => format!("invalid SDP: {why}"),
        }
    }

    /// The number a text stands for, as JavaScript's `Number(text)` reads it (NaN when
    /// it is not one).
    pub fn parse_number(text: &str) -> f64 {
        JsValue::from_str(text).unchecked_into_f64()
    }

    /// A readable message for a JS exception or rejection value.
    pub fn js_error(err: &JsValue) -> String {
        if let Some(e) = err.dyn_ref::<js_sys::Error>() {
            return String::from(e.message());
        }
        if let Some(s) = err.as_string() {
            return s;
        }
        format!("{err:?}")
    }

    /// A plain JS object with these fields, set in this order: what `JSON.parse` makes
    /// of [`json::object`](crate::json::object)'s text.
    pub fn fields_object(fields: &[(&str, Field)]) -> js_sys::Object {
        let values: Vec<(&str, JsValue)> = fields
            .iter()
            .map(|(key, value)| {
                let value = match *value {
                    Field::Str(s) => JsValue::from_str(s),
                    Field::Num(n) => JsValue::from_f64(n),
                    Field::Bool(b) => JsValue::from_bool(b),
                };
                (*key, value)
            })
            .collect();
        object(&values)
    }
}

/// `v` limited to `lo..=hi` (NaN stays NaN), like `f64::clamp` but without its
/// `min <= max` assertion, whose message formats floats with `Debug` and so links
/// core's float formatting (about 7 KB of the gzipped bundle). `lo > hi` gives `hi`.
pub fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo.min(hi)
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// The median of `samples` (which it sorts), `None` when empty.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    // An insertion sort: the windows are short (60 latency samples), and the standard
    // library's sort would add its quicksort to the bundle (about 1 KB gzipped).
    for i in 1..samples.len() {
        let mut j = i;
        while j > 0 && samples[j - 1].total_cmp(&samples[j]).is_gt() {
            samples.swap(j - 1, j);
            j -= 1;
        }
    }
    let mid = samples.len() / 2;
    Some(if samples.len() % 2 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::{clamp, median};

    #[test]
    fn clamp_limits_and_keeps_nan() {
        assert_eq!(clamp(2.0, -1.0, 1.0), 1.0);
        assert_eq!(clamp(-2.0, -1.0, 1.0), -1.0);
        assert_eq!(clamp(0.5, -1.0, 1.0), 0.5);
        assert!(clamp(f64::NAN, 0.0, 1.0).is_nan());
        assert_eq!(clamp(f64::INFINITY, 0.0, 1.0), 1.0);
        assert_eq!(
            clamp(0.5, 1.0, 0.0),
            0.0,
            "an empty range gives hi, no panic"
        );
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        let mut many: Vec<f64> = (0..61).map(|i| f64::from((i * 37) % 61)).collect();
        assert_eq!(median(&mut many), Some(30.0));
        assert!(many.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }
}

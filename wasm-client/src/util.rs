//! Small browser helpers shared by the client modules.

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

/// The median of `samples` (which it sorts), `None` when empty.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    Some(if samples.len() % 2 == 0 {
        (samples[mid - 1] + samples[mid]) / 2.0
    } else {
        samples[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}

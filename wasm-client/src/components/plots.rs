//! Small plots of the last minute: latency, round trip and bitrate.

use crate::history::{History, Series};
use crate::util::fixed;
use yew::prelude::*;

// The plot's box in SVG units: large enough that whole units draw smoothly. Whole
// numbers, written as integers: formatting an `f64` would link core's float
// formatting (about 7 KB of the gzipped bundle) for this one attribute.
const W_UNITS: u32 = 1200;
const H_UNITS: u32 = 280;
const W: f64 = W_UNITS as f64;
const H: f64 = H_UNITS as f64;

/// Props of [`Plots`].
#[derive(Properties, PartialEq)]
pub struct PlotsProps {
    /// The figures.
    pub history: History,
}

fn plot(
    id: &'static str,
    label: &'static str,
    unit: &'static str,
    series: &Series,
    floor: f64,
) -> Html {
    let last = series
        .last()
        .map_or_else(|| "–".to_owned(), |v| format!("{} {unit}", fixed(v, 0)));
    let top = series
        .max()
        .map_or_else(String::new, |m| format!("max {}", fixed(m.max(floor), 0)));
    html! {
        <figure class="plot" id={id}>
            <figcaption><span>{ label }</span><strong>{ last }</strong><small>{ top }</small></figcaption>
            <svg viewBox={format!("0 0 {W_UNITS} {H_UNITS}")} preserveAspectRatio="none" role="img" aria-label={label}>
                { for series.polylines(W, H, floor).into_iter().map(|points| html! {
                    <polyline points={points} />
                }) }
            </svg>
        </figure>
    }
}

/// Latency, round trip and bitrate over the last minute.
#[component]
pub fn Plots(props: &PlotsProps) -> Html {
    let h = &props.history;
    html! {
        <div class="plots" aria-label="The last minute">
            { plot("plot-latency", "Latency", "ms", &h.latency_ms, 100.0) }
            { plot("plot-rtt", "Round trip", "ms", &h.rtt_ms, 20.0) }
            { plot("plot-kbps", "Bitrate", "kb/s", &h.kbps, 100.0) }
        </div>
    }
}

//! Glass-to-glass latency: reading the robot's frame [`Stamp`] back from a `<video>`.
//! No UI framework.
//!
//! The robot's test-pattern camera paints a frame number and its capture time into the
//! top-left corner of every frame. [`StampReader`] draws just that corner of the
//! current frame, at the video's native size, to a small canvas, turns RGBA into luma
//! and decodes it with [`Stamp::read`]. [`FrameWatcher`] does this for every presented
//! frame (with `requestVideoFrameCallback` when the browser has it, else a 30 Hz timer)
//! and reports the latency: the time the frame is shown minus its capture time, both
//! in microseconds since the epoch. This assumes the robot's and the browser's clocks
//! agree (true on one machine, or with NTP to a few ms).
//!
//! Reading and watching the `<video>` is wasm32 only; [`luma`], [`FrameInfo`] and
//! [`LatencyWindow`] are pure and tested natively.

use crate::util::median;
use shared_protocol::Stamp;
use std::collections::VecDeque;

#[cfg(target_arch = "wasm32")]
pub use browser::{FrameWatcher, StampReader};

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::{luma, FrameInfo};
    use crate::util::epoch_us;
    use gloo::timers::callback::Interval;
    use shared_protocol::Stamp;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement};

    /// Reads stamps from video frames through a small offscreen canvas.
    pub struct StampReader {
        canvas: HtmlCanvasElement,
        ctx: CanvasRenderingContext2d,
    }

    impl StampReader {
        /// A reader, or `None` when the page has no 2D canvas.
        pub fn new() -> Option<Self> {
            let document = web_sys::window()?.document()?;
            let canvas: HtmlCanvasElement =
                document.create_element("canvas").ok()?.dyn_into().ok()?;
            let options = js_sys::Object::new();
            js_sys::Reflect::set(&options, &"willReadFrequently".into(), &JsValue::TRUE).ok()?;
            let ctx = canvas
                .get_context_with_context_options("2d", &options)
                .ok()??
                .dyn_into()
                .ok()?;
            Some(Self { canvas, ctx })
        }

        /// The stamp in the frame `video` currently shows, if any.
        pub fn read(&self, video: &HtmlVideoElement) -> Option<Stamp> {
            let (width, height) = (video.video_width() as usize, video.video_height() as usize);
            if !Stamp::fits(width, height) {
                return None;
            }
            let (aw, ah) = Stamp::area(width);
            if self.canvas.width() as usize != aw || self.canvas.height() as usize != ah {
                self.canvas.set_width(aw as u32);
                self.canvas.set_height(ah as u32);
            }
            let (w, h) = (aw as f64, ah as f64);
            self.ctx
                .draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                    video, 0.0, 0.0, w, h, 0.0, 0.0, w, h,
                )
                .ok()?;
            let rgba = self.ctx.get_image_data(0.0, 0.0, w, h).ok()?.data();
            Stamp::read(width, height, |x, y| {
                let i = (y * aw + x) * 4;
                match rgba.get(i..i + 3) {
                    Some(&[r, g, b]) => luma(r, g, b),
                    _ => 0,
                }
            })
        }
    }

    /// The `requestVideoFrameCallback` callback, kept where it can re-register itself.
    type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut(f64, JsValue)>>>>;

    /// Calls back once per presented video frame until dropped.
    pub struct FrameWatcher {
        video: HtmlVideoElement,
        alive: Rc<Cell<bool>>,
        handle: Rc<Cell<Option<u32>>>,
        rvfc: FrameCallback,
        _timer: Option<Interval>,
    }

    impl FrameWatcher {
        /// Watches `video`, calling `on_frame` for each new frame.
        pub fn new(video: HtmlVideoElement, on_frame: impl Fn(FrameInfo) + 'static) -> Self {
            let reader = Rc::new(StampReader::new());
            let on_frame = Rc::new(on_frame);
            let alive = Rc::new(Cell::new(true));
            let handle = Rc::new(Cell::new(None));
            let rvfc: FrameCallback = Rc::new(RefCell::new(None));
            let has_rvfc =
                js_sys::Reflect::has(&video, &"requestVideoFrameCallback".into()).unwrap_or(false);
            let mut timer = None;
            if has_rvfc {
                let callback = {
                    let (video, alive, handle, rvfc) = (
                        video.clone(),
                        Rc::clone(&alive),
                        Rc::clone(&handle),
                        Rc::clone(&rvfc),
                    );
                    let (reader, on_frame) = (Rc::clone(&reader), Rc::clone(&on_frame));
                    move |_now: f64, metadata: JsValue| {
                        if !alive.get() {
                            return;
                        }
                        let shown_us =
                            js_sys::Reflect::get(&metadata, &"expectedDisplayTime".into())
                                .ok()
                                .and_then(|v| v.as_f64())
                                .and_then(|t| {
                                    let origin = web_sys::window()?.performance()?.time_origin();
                                    Some((origin + t) * 1000.0)
                                })
                                .unwrap_or_else(epoch_us);
                        let stamp = reader.as_ref().as_ref().and_then(|r| r.read(&video));
                        on_frame(FrameInfo { stamp, shown_us });
                        if let Some(cb) = rvfc.borrow().as_ref() {
                            handle.set(request_frame(&video, cb));
                        }
                    }
                };
                let closure = Closure::<dyn FnMut(f64, JsValue)>::new(callback);
                handle.set(request_frame(&video, &closure));
                *rvfc.borrow_mut() = Some(closure);
            } else {
                let video = video.clone();
                let last = Cell::new((f64::NAN, None::<u32>));
                timer = Some(Interval::new(33, move || {
                    let time = video.current_time();
                    let stamp = reader.as_ref().as_ref().and_then(|r| r.read(&video));
                    let key = (time, stamp.map(|s| s.frame));
                    let (t0, f0) = last.get();
                    if video.ready_state() < 2 || (key.0 == t0 && key.1 == f0) {
                        return;
                    }
                    last.set(key);
                    on_frame(FrameInfo {
                        stamp,
                        shown_us: epoch_us(),
                    });
                }));
            }
            Self {
                video,
                alive,
                handle,
                rvfc,
                _timer: timer,
            }
        }
    }

    impl Drop for FrameWatcher {
        fn drop(&mut self) {
            self.alive.set(false);
            if let Some(handle) = self.handle.take() {
                if let Ok(cancel) =
                    js_sys::Reflect::get(&self.video, &"cancelVideoFrameCallback".into())
                {
                    if let Some(cancel) = cancel.dyn_ref::<js_sys::Function>() {
                        let _ = cancel.call1(&self.video, &JsValue::from(handle));
                    }
                }
            }
            // The callback is cancelled, so the closure can go (this also breaks the cycle).
            self.rvfc.borrow_mut().take();
        }
    }

    fn request_frame(
        video: &HtmlVideoElement,
        cb: &Closure<dyn FnMut(f64, JsValue)>,
    ) -> Option<u32> {
        let request = js_sys::Reflect::get(video, &"requestVideoFrameCallback".into()).ok()?;
        let request = request.dyn_ref::<js_sys::Function>()?;
        request
            .call1(video, cb.as_ref().unchecked_ref())
            .ok()?
            .as_f64()
            .map(|h| h as u32)
    }
}

/// BT.601 luma from RGB, in integer arithmetic.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8) as u8
}

/// What [`FrameWatcher`] learns from one presented frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    /// The stamp, when the frame carries one.
    pub stamp: Option<Stamp>,
    /// When the frame was (or is about to be) shown, µs since the epoch.
    pub shown_us: f64,
}

impl FrameInfo {
    /// Glass-to-glass latency in ms, when the frame carries a stamp.
    pub fn latency_ms(&self) -> Option<f64> {
        self.stamp
            .map(|s| (self.shown_us - s.capture_us as f64) / 1000.0)
    }
}

/// Latency samples over a sliding window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyWindow {
    samples: VecDeque<f64>,
    capacity: usize,
}

impl LatencyWindow {
    /// A window of the last `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Adds one sample, dropping the oldest when full.
    pub fn push(&mut self, ms: f64) {
        if !ms.is_finite() {
            return;
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// The median of the window.
    pub fn p50(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.samples.iter().copied().collect();
        median(&mut v)
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_of_video_range_black_and_white() {
        assert_eq!(luma(16, 16, 16), 16);
        assert_eq!(luma(235, 235, 235), 235);
        assert_eq!(luma(255, 255, 255), 255);
    }

    #[test]
    fn window_keeps_the_last_samples() {
        let mut w = LatencyWindow::new(3);
        assert_eq!(w.p50(), None);
        for ms in [100.0, 1.0, 2.0, 3.0, f64::NAN] {
            w.push(ms);
        }
        assert_eq!(w.p50(), Some(2.0));
    }
}

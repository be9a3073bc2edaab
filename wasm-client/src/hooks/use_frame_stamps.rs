use crate::latency::{FrameWatcher, LatencyWindow};
use crate::state::{Action, AppState};
use gloo::timers::callback::Interval;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use web_sys::HtmlVideoElement;
use yew::prelude::*;

/// Latency samples in the median window.
const WINDOW: usize = 60;
/// How often the figures go to the reducer.
const PUBLISH_MS: u32 = 250;

/// Watches every frame the `<video>` presents, reads its stamp, and publishes frame
/// count, last stamp frame number and median latency to the reducer 4 times a second.
#[hook]
pub fn use_frame_stamps(video: NodeRef, dispatch: UseReducerDispatcher<AppState>) {
    use_effect_with(video, move |video| {
        let element = video.cast::<HtmlVideoElement>();
        let frames = Rc::new(Cell::new(0u64));
        let stamp_frame = Rc::new(Cell::new(None::<u32>));
        let window = Rc::new(RefCell::new(LatencyWindow::new(WINDOW)));
        let watcher = element.map(|element| {
            let (frames, stamp_frame, window) = (
                Rc::clone(&frames),
                Rc::clone(&stamp_frame),
                Rc::clone(&window),
            );
            FrameWatcher::new(element, move |info| {
                frames.set(frames.get() + 1);
                if let Some(stamp) = info.stamp {
                    stamp_frame.set(Some(stamp.frame));
                }
                if let Some(ms) = info.latency_ms() {
                    window.borrow_mut().push(ms);
                }
            })
        });
        let publish = Interval::new(PUBLISH_MS, move || {
            dispatch.dispatch(Action::Frames {
                frames: frames.get(),
                stamp_frame: stamp_frame.get(),
                latency_ms: window.borrow().p50(),
            });
        });
        move || drop((watcher, publish))
    });
}

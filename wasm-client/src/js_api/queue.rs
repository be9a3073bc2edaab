//! `Queue`: rtcbot.js's small async queue (Python's `asyncio.Queue` API).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[derive(Default)]
struct State {
    items: VecDeque<JsValue>,
    waiting: VecDeque<js_sys::Function>,
}

/// A simple async queue, useful for turning callbacks into `await`s:
/// `conn.subscribe(q.put_nowait)`, then `let msg = await q.get()`.
#[wasm_bindgen]
pub struct Queue {
    state: Rc<RefCell<State>>,
    put_nowait: JsValue,
}

#[wasm_bindgen]
impl Queue {
    /// An empty queue.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Queue {
        let state = Rc::new(RefCell::new(State::default()));
        let put_nowait = Closure::<dyn Fn(JsValue)>::new({
            let state = Rc::clone(&state);
            move |item: JsValue| put(&state, item)
        })
        .into_js_value();
        Self { state, put_nowait }
    }

    /// Adds an item; the oldest pending `get()` receives it. A bound function, so
    /// `conn.subscribe(q.put_nowait)` works.
    #[wasm_bindgen(getter, unchecked_return_type = "(item: any) => void")]
    pub fn put_nowait(&self) -> JsValue {
        self.put_nowait.clone()
    }

    /// Resolves to the oldest item, waiting for one if the queue is empty.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(&self) -> js_sys::Promise {
        let mut state = self.state.borrow_mut();
        if let Some(item) = state.items.pop_front() {
            return js_sys::Promise::resolve(&item);
        }
        let mut resolver = None;
        let promise = js_sys::Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
        if let Some(resolve) = resolver {
            state.waiting.push_back(resolve);
        }
        promise
    }

    /// Items waiting to be taken.
    pub fn qsize(&self) -> usize {
        self.state.borrow().items.len()
    }

    /// True when no item is waiting.
    pub fn empty(&self) -> bool {
        self.state.borrow().items.is_empty()
    }
}

fn put(state: &RefCell<State>, item: JsValue) {
    let resolve = {
        let mut state = state.borrow_mut();
        match state.waiting.pop_front() {
            Some(resolve) => resolve,
            None => {
                state.items.push_back(item);
                return;
            }
        }
    };
    let _ = resolve.call1(&JsValue::NULL, &item);
}

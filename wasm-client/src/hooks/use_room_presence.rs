//! Whether a relay room has its robot, shown before and while connecting; the
//! connection tries at once when the robot arrives instead of waiting out its backoff.

use crate::connection::Connection;
use crate::session::{room_presence, RoomPresence};
use crate::state::{Action, AppState};
use gloo::timers::future::TimeoutFuture;
use std::cell::Cell;
use std::rc::Rc;
use yew::prelude::*;

/// How often the room is asked.
const POLL_MS: u32 = 2000;
/// How long one answer may take.
const ANSWER_MS: u32 = 1500;

/// Asks the relay room the page posts to (`GET status` beside the connect URL) every
/// [`POLL_MS`] while mounted; stops after the first answer where there is no room (a
/// robot's own page answers 404).
#[hook]
pub fn use_room_presence(connection: Rc<Connection>, dispatch: UseReducerDispatcher<AppState>) {
    use_effect_with((), move |_| {
        let running = Rc::new(Cell::new(true));
        {
            let running = Rc::clone(&running);
            wasm_bindgen_futures::spawn_local(async move {
                let mut last: Option<RoomPresence> = None;
                let mut asked = false;
                while running.get() {
                    let now = room_presence(connection.connect_url(), ANSWER_MS).await;
                    if !running.get() {
                        break;
                    }
                    match now {
                        Some(now) => {
                            if now.arrived_since(last.as_ref()) {
                                connection.wake();
                            }
                            if last.as_ref() != Some(&now) {
                                dispatch.dispatch(Action::Presence(now.clone()));
                            }
                            last = Some(now);
                        }
                        // Not a relay room's page: nothing to show, nothing to ask.
                        None if !asked => break,
                        None => {}
                    }
                    asked = true;
                    TimeoutFuture::new(POLL_MS).await;
                }
            });
        }
        move || running.set(false)
    });
}

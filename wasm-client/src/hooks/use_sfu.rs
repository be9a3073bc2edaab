//! Watching through the robot's SFU: feeds the [`Plan`] what happens (the session
//! going live, the robot's figures offering a feed, the setting, the subscription's
//! news, time) and does what it says: starts and closes the [`Subscriber`], turns
//! the robot's media to this page on and off ([`Connection::set_robot_media`]),
//! remembers the robot's feed per connect URL in `localStorage`, and puts the
//! [`SfuView`] in the reducer.

use crate::connection::Connection;
use crate::session;
use crate::sfu::plan::{self, Plan};
use crate::sfu::{Subscriber, SubscriberEvent};
use crate::state::{Action, AppState, SfuView};
use crate::util::now_ms;
use gloo::timers::callback::Interval;
use shared_protocol::{SfuWatch, StreamStats};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use yew::prelude::*;

/// How often time is told to the plan.
const TICK_MS: u32 = 250;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The feed the robot at `connect_url` offered on an earlier page load.
pub fn remembered_feed(connect_url: &str) -> Option<SfuWatch> {
    let text = storage()?
        .get_item(&plan::memory_key(connect_url))
        .ok()
        .flatten()?;
    plan::read_watch(&text)
}

struct Driver {
    me: Weak<Driver>,
    plan: RefCell<Plan>,
    current: RefCell<Option<(u32, Subscriber)>>,
    /// The current subscription's streams.
    streams: RefCell<(Option<web_sys::MediaStream>, Option<web_sys::MediaStream>)>,
    connection: Rc<Connection>,
    dispatch: UseReducerDispatcher<AppState>,
}

impl Driver {
    /// Does what the plan says now.
    fn sync(&self) {
        let (memory, want, robot_media, source, state, reason) = {
            let mut plan = self.plan.borrow_mut();
            (
                plan.take_memory(),
                plan.subscription().map(|(id, w)| (id, w.clone())),
                plan.robot_media(),
                plan.source(),
                plan.state_name(),
                plan.reason().map(str::to_owned),
            )
        };
        if let (Some(memory), Some(storage)) = (memory, storage()) {
            let key = plan::memory_key(self.connection.connect_url());
            let _ = match memory {
                Some(watch) => storage.set_item(&key, &plan::watch_text(&watch)),
                None => storage.remove_item(&key),
            };
        }
        let current = self.current.borrow().as_ref().map(|(id, _)| *id);
        if current != want.as_ref().map(|(id, _)| *id) {
            if let Some((_, old)) = self.current.borrow_mut().take() {
                old.close();
            }
            self.streams.replace((None, None));
            if let Some((id, watch)) = want {
                self.subscribe(id, watch);
            }
        }
        self.connection.set_robot_media(robot_media);
        let (video, audio) = self.streams.borrow().clone();
        self.dispatch.dispatch(Action::Sfu(SfuView {
            source,
            state,
            reason,
            robot_media,
            video,
            audio,
        }));
    }

    fn subscribe(&self, id: u32, watch: SfuWatch) {
        // The robot session's own ICE servers (through a relay room, its TURN servers
        // with the credentials minted for this page), else the page's `?ice=`.
        let configuration = match self.connection.peer_connection() {
            Some(pc) => pc.get_configuration(),
            None => session::configuration(&self.connection.config().ice_servers),
        };
        let me = self.me.clone();
        let started = Subscriber::start(watch, configuration, move |event| {
            if let Some(driver) = me.upgrade() {
                driver.heard(id, event);
            }
        });
        match started {
            Ok(subscriber) => {
                self.current.replace(Some((id, subscriber)));
            }
            Err(why) => {
                // Said on the next tick, not from inside this sync.
                self.plan.borrow_mut().ended(id, why, now_ms());
            }
        }
    }

    fn heard(&self, id: u32, event: SubscriberEvent) {
        let current = self.current.borrow().as_ref().map(|(id, _)| *id);
        if current != Some(id) {
            return;
        }
        match event {
            SubscriberEvent::Video(stream) => self.streams.borrow_mut().0 = Some(stream),
            SubscriberEvent::Audio(stream) => self.streams.borrow_mut().1 = Some(stream),
            SubscriberEvent::Playing => self.plan.borrow_mut().playing(id),
            SubscriberEvent::Stats(stats) => {
                self.dispatch.dispatch(Action::SfuVideo(stats));
                return;
            }
            SubscriberEvent::Ended(why) => {
                self.current.borrow_mut().take();
                self.plan.borrow_mut().ended(id, why, now_ms());
            }
        }
        self.sync();
    }

    fn close(&self) {
        if let Some((_, subscriber)) = self.current.borrow_mut().take() {
            subscriber.close();
        }
    }
}

/// Runs the page's SFU side while mounted (see the module doc). `live`: the session
/// to the robot is live; `stats`: the robot's latest figures; `prefer`: the setting.
#[hook]
pub fn use_sfu(
    connection: Rc<Connection>,
    live: bool,
    stats: Option<StreamStats>,
    prefer: bool,
    dispatch: UseReducerDispatcher<AppState>,
) {
    let driver = use_memo((), move |_| {
        let remembered = remembered_feed(connection.connect_url());
        Rc::new_cyclic(|me| Driver {
            me: me.clone(),
            plan: RefCell::new(Plan::new(prefer, remembered)),
            current: RefCell::new(None),
            streams: RefCell::new((None, None)),
            connection,
            dispatch,
        })
    });
    {
        let driver = Rc::clone(&*driver);
        use_effect_with((), move |_| {
            let ticking = Rc::clone(&driver);
            let timer = Interval::new(TICK_MS, move || {
                ticking.plan.borrow_mut().tick(now_ms());
                ticking.sync();
            });
            move || {
                drop(timer);
                driver.close();
            }
        });
    }
    {
        let driver = Rc::clone(&*driver);
        use_effect_with(live, move |live| {
            driver.plan.borrow_mut().live(*live, now_ms());
        });
    }
    {
        let driver = Rc::clone(&*driver);
        use_effect_with(prefer, move |prefer| {
            driver.plan.borrow_mut().set_prefer(*prefer, now_ms());
            driver.sync();
        });
    }
    {
        let driver = Rc::clone(&*driver);
        use_effect_with(stats, move |stats| {
            if let Some(stats) = stats.as_ref().filter(|_| live) {
                let watch = stats.sfu.as_ref().and_then(|s| s.watch.as_ref());
                driver.plan.borrow_mut().stats(watch, now_ms());
                driver.sync();
            }
        });
    }
}

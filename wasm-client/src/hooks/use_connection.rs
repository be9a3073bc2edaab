use crate::connection::{Config, Connection};
use crate::state::{Action, AppState};
use crate::util::{page_token, query_param};
use std::rc::Rc;
use yew::prelude::*;

/// Connects to the robot once for the component's lifetime, feeding every connection
/// event into the reducer. Closes the connection on unmount.
#[hook]
pub fn use_connection(dispatch: UseReducerDispatcher<AppState>) -> Rc<Connection> {
    let connection = use_memo((), move |_| {
        let mut config = Config::default();
        if let Some(url) = query_param("connect") {
            config.connect_url = url;
        }
        config.token = page_token();
        if let Some(ice) = query_param("ice") {
            config.ice_servers = ice
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        // A robot that offered its SFU before: straight to it, without its own media
        // (`use_sfu` turns them on if the robot no longer offers it).
        config.robot_media = !(crate::state::stored_prefer_sfu()
            && super::remembered_feed(&config.connect_url).is_some());
        Connection::start(config, move |event| dispatch.dispatch(Action::Conn(event)))
    });
    {
        // Leaving the page (navigation, closing the tab) closes the connection while the
        // page can still send, so the robot frees the drive at once instead of waiting
        // for ICE to notice the silence. `pagehide`, not `unload`: it also fires when
        // the page goes into the back/forward cache.
        let connection = Rc::clone(&connection);
        use_effect_with((), move |_| {
            let on_pagehide = {
                let connection = Rc::clone(&connection);
                gloo::events::EventListener::new(&gloo::utils::window(), "pagehide", move |_| {
                    connection.close()
                })
            };
            // A page restored from the back/forward cache had its connection closed
            // on the way out: load it afresh, which connects again.
            let on_pageshow =
                gloo::events::EventListener::new(&gloo::utils::window(), "pageshow", |event| {
                    let persisted = js_sys::Reflect::get(event, &"persisted".into())
                        .is_ok_and(|p| p.is_truthy());
                    if persisted {
                        let _ = gloo::utils::window().location().reload();
                    }
                });
            move || {
                drop((on_pagehide, on_pageshow));
                connection.close();
            }
        });
    }
    connection
}

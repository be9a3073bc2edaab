use crate::connection::{Config, Connection};
use crate::state::{Action, AppState};
use crate::util::query_param;
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
        if let Some(ice) = query_param("ice") {
            config.ice_servers = ice
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        Connection::start(config, move |event| dispatch.dispatch(Action::Conn(event)))
    });
    {
        let connection = Rc::clone(&connection);
        use_effect_with((), move |_| move || connection.close());
    }
    connection
}

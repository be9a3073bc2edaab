use crate::connection::Connection;
use crate::drive::{DriveMixer, DriveSender, REPEAT_MS};
use crate::state::{Action, AppState};
use std::rc::Rc;
use yew::prelude::*;

/// The drive mixer every input feeds; it sends full drive states on `connection`
/// (at once on change, 20 Hz while moving) and records them in the reducer.
#[hook]
pub fn use_drive(
    connection: Rc<Connection>,
    dispatch: UseReducerDispatcher<AppState>,
) -> DriveMixer {
    let mixer = use_memo((), move |_| {
        DriveMixer::new(DriveSender::new(REPEAT_MS, move |state| {
            connection.send_drive(state);
            dispatch.dispatch(Action::Drive(*state));
        }))
    });
    (*mixer).clone()
}

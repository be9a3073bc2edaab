//! The app's hooks: each wires one piece of the framework-free client into Yew.

mod use_audio_meters;
mod use_connection;
mod use_drive;
mod use_frame_stamps;
mod use_gamepad;
mod use_keyboard_drive;
mod use_local_media;
mod use_room_presence;
mod use_sfu;

pub use use_audio_meters::use_audio_meters;
pub use use_connection::use_connection;
pub use use_drive::use_drive;
pub use use_frame_stamps::use_frame_stamps;
pub use use_gamepad::{use_gamepad, DEFAULT_GAMEPAD_HZ};
pub use use_keyboard_drive::use_keyboard_drive;
pub use use_local_media::use_local_media;
pub use use_room_presence::use_room_presence;
pub use use_sfu::{remembered_feed, use_sfu};

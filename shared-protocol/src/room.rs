//! A relay room's addresses (`rtcbot-relay`, rtcbot.dev's protocol): where a page or
//! client that posts its offers to a room finds the room's other resources (`ice`,
//! `status`), and which signaling URLs are a robot's own rather than a room's.
//! Pure: the browser client and the Rust client share it.

/// The address of a relay room's `name` (`ice`, `status`) for a URL offers are posted
/// to: the app's `/<room>/connect` (or the relative `connect`) gives `/<room>/name`;
/// rtcbot.dev's `/<room>`, `/<room>/name`. On a robot's own server (`/connect`) that
/// is `/name`, which it answers 404.
pub fn room_url(connect_url: &str, name: &str) -> String {
    let url = connect_url.split(['?', '#']).next().unwrap_or_default();
    match url.strip_suffix("connect") {
        Some(base) if base.is_empty() || base.ends_with('/') => format!("{base}{name}"),
        _ => format!("{}/{name}", url.trim_end_matches('/')),
    }
}

/// Whether offers posted to `connect_url` may go through a relay room: anything but
/// a robot's own `/connect` (`http://robot:8080/connect`, `/connect`, `connect` from a
/// robot's root page), so a page talking to a robot directly never asks it for a
/// room's addresses.
pub fn may_be_room(connect_url: &str) -> bool {
    let url = connect_url.split(['?', '#']).next().unwrap_or_default();
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    !matches!(path.trim_end_matches('/'), "/connect" | "connect" | "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_addresses_sit_beside_where_offers_go() {
        assert_eq!(room_url("connect", "ice"), "ice");
        assert_eq!(room_url("/r1/connect", "status"), "/r1/status");
        assert_eq!(
            room_url("http://h:8/r1/connect", "ice"),
            "http://h:8/r1/ice"
        );
        assert_eq!(room_url("http://h:8/r1", "ice"), "http://h:8/r1/ice");
        assert_eq!(room_url("http://h:8/r1/", "ice"), "http://h:8/r1/ice");
        assert_eq!(
            room_url("/reconnect", "ice"),
            "/reconnect/ice",
            "a room named so"
        );
        assert_eq!(room_url("/connect?x=1", "ice"), "/ice");
    }

    #[test]
    fn a_robots_own_connect_is_no_room() {
        for robot in [
            "/connect",
            "connect",
            "http://r:8080/connect",
            "https://r/connect?x",
            "http://r:8080/",
        ] {
            assert!(!may_be_room(robot), "{robot}");
        }
        for room in [
            "http://relay/my-room",
            "/my-room/connect",
            "https://relay/r/connect",
            "wss://x/r",
        ] {
            assert!(may_be_room(room), "{room}");
        }
    }
}

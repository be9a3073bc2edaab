//! The `[relay]` settings.

use crate::auth::Role;
use serde::{Deserialize, Serialize};

/// Where the robot connects out to, and what offers through it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The room's address: `ws://HOST:PORT/ROOM` or `wss://...` (`http(s)://` is taken
    /// as `ws(s)://`, as RTCBot's `Websocket` does).
    pub url: String,
    /// The room's key: the first robot to connect with it claims the room, and no
    /// robot without it can take the room after (it goes as `Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The role of a peer whose offer came through the relay without a token of the
    /// robot's (`"token"` in the offer's JSON): `driver` by default, as anyone who
    /// knows the room drives on rtcbot.dev; `viewer` to ask for a token to drive.
    #[serde(default = "driver")]
    pub role: Role,
}

fn driver() -> Role {
    Role::Driver
}

impl RelayConfig {
    /// A relay at `url`, no key, offers drive.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: None,
            role: Role::Driver,
        }
    }

    /// The WebSocket URL, checked: `ws`/`wss` (from `http`/`https` too), a host and a
    /// room in the path.
    pub fn websocket_url(&self) -> Result<String, String> {
        let url = self.url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("relay.url {url:?} must start with ws://, wss://, http:// or https://")
        })?;
        let scheme = match scheme {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => {
                return Err(format!(
                    "relay.url {url:?}: {other}:// is not ws://, wss://, http:// or https://"
                ))
            }
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(format!("relay.url {url:?} has no host"));
        }
        let room = path.split(['?', '#']).next().unwrap_or("");
        if room.is_empty() || room.ends_with('/') {
            return Err(format!(
                "relay.url {url:?} names no room: use ws://HOST:PORT/ROOM"
            ));
        }
        Ok(format!("{scheme}://{rest}"))
    }

    /// The room's address to show (logs, `/health`, the start-up block): the WebSocket
    /// URL without its query, where a `?key=` would otherwise be shown to whoever
    /// reads them.
    pub fn shown_url(&self) -> String {
        let url = self.websocket_url().unwrap_or_else(|_| self.url.clone());
        match url.split_once(['?', '#']) {
            Some((bare, _)) => format!("{bare}?…"),
            None => url,
        }
    }

    /// Checks the settings: the setting's name and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.websocket_url().map_err(|e| ("relay.url", e))?;
        if self.key.as_deref().is_some_and(str::is_empty) {
            return Err(("relay.key", "an empty key claims nothing".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_taken_as_websockets_and_a_room_is_needed() {
        let url = |u: &str| RelayConfig::new(u).websocket_url();
        assert_eq!(url("ws://relay:8080/bot").unwrap(), "ws://relay:8080/bot");
        assert_eq!(
            url("https://rtcbot.dev/myRoom11").unwrap(),
            "wss://rtcbot.dev/myRoom11"
        );
        assert_eq!(url("http://h/r?x=1").unwrap(), "ws://h/r?x=1");
        for bad in [
            "relay:8080/bot",
            "ftp://h/r",
            "ws:///r",
            "ws://h",
            "ws://h/",
            "ws://h/r/",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
        let err = url("ws://h").unwrap_err();
        assert!(err.contains("names no room"), "{err}");
    }

    #[test]
    fn a_key_in_the_url_is_never_shown() {
        let shown = RelayConfig::new("https://h/r?key=secret").shown_url();
        assert_eq!(shown, "wss://h/r?…");
        assert_eq!(RelayConfig::new("ws://h/r").shown_url(), "ws://h/r");
    }

    #[test]
    fn the_toml_form_defaults_to_drivers() {
        let c: RelayConfig = toml::from_str("url = \"ws://h/r\"\nkey = \"k\"\n").unwrap();
        assert_eq!(c.role, Role::Driver);
        assert_eq!(c.key.as_deref(), Some("k"));
        assert!(c.validate().is_ok());
        let empty = RelayConfig {
            key: Some(String::new()),
            ..RelayConfig::new("ws://h/r")
        };
        assert_eq!(empty.validate().unwrap_err().0, "relay.key");
    }
}

//! The relay's settings, in one typed struct: from the command line, or a TOML file.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the relay runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// How long a browser's offer waits for the robot's answer, seconds (then 504, and
    /// the robot's socket is closed: its next frame could no longer be told apart).
    pub offer_timeout_s: f64,
    /// Offers a room takes a second, on average.
    pub offers_per_second: f64,
    /// Offers a room takes at once.
    pub offer_burst: u32,
    /// Offers one client address may make a minute, across rooms (on top of each
    /// room's own rate: one address flooding a room cannot take its real viewers'
    /// share).
    pub offers_per_address_per_minute: u32,
    /// Offers one client address may make at once.
    pub offer_address_burst: u32,
    /// Behind a reverse proxy (Caddy, nginx): the client is the last
    /// `X-Forwarded-For` entry, not the proxy. Leave it off when clients reach the
    /// relay directly (they could write that header themselves).
    pub forwarded_for: bool,
    /// Offers waiting for one room's robot; more get 503.
    pub offer_queue: usize,
    /// The largest offer, answer or WebSocket message, bytes.
    pub max_message_bytes: usize,
    /// Rooms at most (a robot registering beyond it gets 503).
    pub max_rooms: usize,
    /// Rooms claimed from the start: name → key. A robot takes such a room only with
    /// its key; any other room a robot claims with the key it connects with.
    pub room_keys: HashMap<String, String>,
    /// The built browser app (`www/dist`): served at `/<room>/`, where it connects
    /// through the room. Without it, `/<room>` is a page that says whether its robot is
    /// there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www: Option<PathBuf>,
    /// STUN URLs handed to pages (`GET /<room>/ice`).
    pub stun_urls: Vec<String>,
    /// TURN URLs handed to pages with short-lived credentials (needs `turn_secret`).
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret` (`use-auth-secret` in `turnserver.conf`): the
    /// relay mints each page's TURN credentials with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret: Option<String>,
    /// How long minted TURN credentials last, seconds.
    pub turn_ttl_s: u64,
    /// Redis (`redis://[:PASSWORD@]HOST:PORT[/DB]`) shared by several relays, so that
    /// a robot on one is reached through any ([`shared`](crate::shared)). Without it,
    /// rooms live in this relay's memory only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().expect("a literal address"),
            offer_timeout_s: 10.0,
            offers_per_second: 5.0,
            offer_burst: 10,
            offer_queue: 8,
            offers_per_address_per_minute: 60,
            offer_address_burst: 6,
            forwarded_for: false,
            max_message_bytes: 64 * 1024,
            max_rooms: 10_000,
            room_keys: HashMap::new(),
            www: None,
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl_s: 3600,
            redis_url: None,
        }
    }
}

impl RelayConfig {
    /// The offer timeout.
    pub fn offer_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.offer_timeout_s)
    }

    /// Checks ranges the types cannot express: the setting's name and why.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.1..=120.0).contains(&self.offer_timeout_s) {
            return Err(format!(
                "offer_timeout_s: {} must be in 0.1..=120",
                self.offer_timeout_s
            ));
        }
        if !(self.offers_per_second > 0.0 && self.offers_per_second <= 10_000.0) {
            return Err(format!(
                "offers_per_second: {} must be in (0, 10000]",
                self.offers_per_second
            ));
        }
        if self.offer_burst == 0
            || self.offer_queue == 0
            || self.max_rooms == 0
            || self.offers_per_address_per_minute == 0
            || self.offer_address_burst == 0
        {
            return Err("offer_burst, offer_queue, max_rooms, offers_per_address_per_minute and offer_address_burst must be at least 1".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(format!(
                "max_message_bytes: {} must be in 1024..=16777216",
                self.max_message_bytes
            ));
        }
        if !self.turn_urls.is_empty() && self.turn_secret.as_deref().unwrap_or("").is_empty() {
            return Err(
                "turn_urls: TURN URLs need turn_secret (coturn's static-auth-secret)".into(),
            );
        }
        if !(60..=7 * 24 * 3600).contains(&self.turn_ttl_s) {
            return Err(format!(
                "turn_ttl_s: {} must be in 60..=604800",
                self.turn_ttl_s
            ));
        }
        for url in self.stun_urls.iter().chain(&self.turn_urls) {
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return Err(format!(
                    "{url:?} is not a stun:, stuns:, turn: or turns: URL"
                ));
            }
        }
        if let Some(url) = &self.redis_url {
            crate::shared::check_url(url).map_err(|e| e.to_string())?;
        }
        for (room, key) in &self.room_keys {
            crate::room::check_name(room).map_err(|e| format!("room_keys: {e}"))?;
            if key.is_empty() {
                return Err(format!("room_keys: room {room:?} has an empty key"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_setting() {
        assert_eq!(RelayConfig::default().validate(), Ok(()));
        let bad = RelayConfig {
            offer_timeout_s: 0.0,
            ..RelayConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("offer_timeout_s"));
        let bad = RelayConfig {
            room_keys: [("a/b".to_owned(), "k".to_owned())].into(),
            ..RelayConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("room_keys"));
        let bad = RelayConfig {
            redis_url: Some("localhost:6379".into()),
            ..RelayConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("redis_url"));
    }

    #[test]
    fn a_toml_file_sets_what_it_names() {
        let config: RelayConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\n[room_keys]\nbot = \"secret\"\n").unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.room_keys["bot"], "secret");
        assert_eq!(config.offer_queue, 8, "the rest keeps its default");
    }
}

//! The `[webrtc]` settings: local ICE sockets and STUN/TURN servers.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// WebRTC peer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// Local UDP addresses ICE binds to. `0.0.0.0:0` means every non-loopback interface
    /// on a random port; `127.0.0.1:0` adds loopback for a browser on the robot itself.
    pub ice_udp: Vec<String>,
    /// STUN/TURN servers, for robots behind NAT. None by default: on a LAN, host
    /// candidates are enough and the robot makes no outside connection.
    pub ice_servers: Vec<IceServer>,
}

/// One STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub username: String,
    /// TURN password.
    #[serde(default)]
    pub credential: String,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_udp: vec!["0.0.0.0:0".into(), "127.0.0.1:0".into()],
            ice_servers: Vec::new(),
        }
    }
}

impl WebRtcConfig {
    /// Checks the addresses and URLs: the setting's name and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.ice_udp.is_empty() {
            return Err(("webrtc.ice_udp", "needs at least one address".into()));
        }
        for addr in &self.ice_udp {
            if addr.parse::<SocketAddr>().is_err() {
                return Err((
                    "webrtc.ice_udp",
                    format!("{addr:?} is not an ip:port address"),
                ));
            }
        }
        for server in &self.ice_servers {
            for url in &server.urls {
                let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
                    .iter()
                    .any(|s| url.starts_with(s));
                if !scheme_ok {
                    return Err((
                        "webrtc.ice_servers",
                        format!("{url:?} must start with stun:, stuns:, turn: or turns:"),
                    ));
                }
            }
        }
        Ok(())
    }
}

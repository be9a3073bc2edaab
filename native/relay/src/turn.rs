//! Short-lived TURN credentials (pure, unit-tested): coturn's REST scheme
//! (`use-auth-secret` with a `static-auth-secret` in `turnserver.conf`). The relay and
//! coturn share the secret; the relay hands each page a username
//! `<expiry, Unix seconds>:<room>` and its password, base64(HMAC-SHA1(secret,
//! username)), which coturn checks on its own and refuses once expired. So no
//! long-lived TURN password ever reaches a browser.

use base64::Engine;
use serde::Serialize;

/// One ICE server as `RTCPeerConnection`'s configuration takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// The TURN username (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The credentials for `room`, valid until `expiry` (Unix seconds).
pub fn credentials(secret: &str, room: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{room}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, password)
}

/// The ICE servers a page in `room` gets at `now` (Unix seconds): the STUN URLs, and
/// the TURN URLs with credentials valid for `ttl_s` when there is a secret.
pub fn ice_servers(
    stun: &[String],
    turn: &[String],
    secret: Option<&str>,
    room: &str,
    now: u64,
    ttl_s: u64,
) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun.to_vec(),
            username: None,
            credential: None,
        });
    }
    if let (false, Some(secret)) = (turn.is_empty(), secret) {
        let (username, credential) = credentials(secret, room, now + ttl_s);
        servers.push(IceServer {
            urls: turn.to_vec(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_coturns_hmac_of_the_username() {
        // python3: base64.b64encode(hmac.new(b"north", b"1700003600:myroom", sha1).digest())
        let (username, password) = credentials("north", "myroom", 1_700_003_600);
        assert_eq!(username, "1700003600:myroom");
        assert_eq!(password, "Syck3JERvhMxRSEVsGOBlJH/Xs0=");
    }

    #[test]
    fn turn_without_a_secret_is_left_out_and_stun_has_no_credentials() {
        let stun = vec!["stun:stun.example.org:3478".to_owned()];
        let turn = vec!["turn:turn.example.org:3478".to_owned()];
        let servers = ice_servers(&stun, &turn, None, "r", 100, 60);
        assert_eq!(servers.len(), 1);
        assert_eq!(
            serde_json::to_value(&servers[0]).unwrap(),
            serde_json::json!({"urls": ["stun:stun.example.org:3478"]})
        );
        let servers = ice_servers(&stun, &turn, Some("s"), "r", 100, 60);
        assert_eq!(
            servers[1].username.as_deref(),
            Some("160:r"),
            "expires at now + ttl"
        );
        assert_eq!(servers[1].credential, Some(credentials("s", "r", 160).1));
    }
}

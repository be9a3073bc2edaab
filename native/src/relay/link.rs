//! The robot's connection to its relay room: it connects out, answers each offer
//! frame with an answer frame (as RTCBot's tutorial robot does, but for every offer,
//! not one), pings the relay, and when the socket drops (a relay restart, a network
//! that went away) connects again with backoff. Peers already connected are the
//! robot's, not the link's: they stay.
//!
//! The link knows nothing of the robot: it hands each offer to an [`Answerer`]
//! (the robot is one: `Robot` implements it).

use super::config::RelayConfig;
use crate::auth::tokens::Tokens;
use crate::auth::Role;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use shared_protocol::{SdpType, SessionDescription};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The first wait before connecting again; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait before connecting again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the robot pings the relay (keeps a NAT's mapping open, finds a dead
/// relay).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// What the link is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayStatus {
    /// The room's address (its key never shows).
    pub url: String,
    /// Connected to the room now.
    pub connected: bool,
    /// Times it connected.
    pub connects: u64,
    /// Offers answered through it.
    pub offers: u64,
    /// Why the last connection failed or ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The link's status, shared with whoever reports it or waits for it.
#[derive(Debug, Clone)]
pub struct RelayState(Arc<watch::Sender<RelayStatus>>);

impl Default for RelayState {
    fn default() -> Self {
        Self(Arc::new(watch::channel(RelayStatus::default()).0))
    }
}

impl RelayState {
    /// A snapshot.
    pub fn status(&self) -> RelayStatus {
        self.0.borrow().clone()
    }

    /// Every change from now on (`wait_for` a connection, say).
    pub fn changes(&self) -> watch::Receiver<RelayStatus> {
        self.0.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut RelayStatus)) {
        self.0.send_modify(f);
    }
}

/// What answers the offers that come through the relay.
pub trait Answerer: Clone + Send + Sync + 'static {
    /// Answers `offer` for a peer with `role`, or says why not.
    fn answer(
        &self,
        offer: SessionDescription,
        role: Role,
    ) -> impl Future<Output = Result<SessionDescription, String>> + Send;
}

/// Keeps `answerer` in the relay room of `config` until `shutdown` completes: offers
/// with a token among `tokens` get its role, others `config.role` (every one is an
/// admin without `tokens`, as on `/connect` without auth). `state` says how it goes;
/// a bad `config` ends it at once with its reason there.
pub async fn run(
    answerer: impl Answerer,
    config: RelayConfig,
    tokens: Option<Tokens>,
    state: RelayState,
    shutdown: impl Future<Output = ()>,
) {
    let url = match config.websocket_url() {
        Ok(url) => url,
        Err(err) => {
            tracing::error!("{err}");
            state.update(|s| s.last_error = Some(err));
            return;
        }
    };
    // What logs and /health show: never a key the URL carries.
    let shown = config.shown_url();
    state.update(|s| s.url = shown.clone());
    let links = async {
        let mut backoff = BACKOFF_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let ended = match connect(&url, config.key.as_deref()).await {
                Ok(socket) => {
                    tracing::info!("relay: in the room at {shown}");
                    state.update(|s| {
                        s.connected = true;
                        s.connects += 1;
                        s.last_error = None;
                    });
                    let why = serve(socket, &answerer, &config, tokens.as_ref(), &state).await;
                    state.update(|s| s.connected = false);
                    why
                }
                Err(err) => err,
            };
            if started.elapsed() >= STABLE {
                backoff = BACKOFF_MIN;
            }
            tracing::warn!("relay {shown}: {ended}; connecting again in {backoff:?}");
            state.update(|s| s.last_error = Some(ended));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    };
    tokio::select! {
        () = links => {}
        () = shutdown => {}
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, key: Option<&str>) -> Result<Socket, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("bad relay URL: {e}"))?;
    if let Some(key) = key {
        let value = format!("Bearer {key}")
            .parse()
            .map_err(|_| "the relay key is not a valid header value".to_owned())?;
        request.headers_mut().insert("authorization", value);
    }
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(format!(
                "the relay refused the robot ({}): {body}",
                response.status()
            ))
        }
        Ok(Err(err)) => Err(format!("cannot connect: {err}")),
        Err(_) => Err("connecting took over 10 s".into()),
    }
}

/// Answers the room's offers until the socket ends; why it ended.
async fn serve(
    socket: Socket,
    answerer: &impl Answerer,
    config: &RelayConfig,
    tokens: Option<&Tokens>,
    state: &RelayState,
) -> String {
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    None => return "the relay closed the connection".into(),
                    Some(Err(err)) => return format!("the connection failed: {err}"),
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(frame) if !frame.reason.is_empty() => {
                                format!("the relay closed the connection: {}", frame.reason)
                            }
                            _ => "the relay closed the connection".into(),
                        };
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                let reply = answer(answerer, config, tokens, &text).await;
                if reply.is_ok() {
                    state.update(|s| s.offers += 1);
                }
                let body = match reply {
                    Ok(answer) => answer,
                    Err(err) => {
                        tracing::warn!("relay: an offer was not answered: {err}");
                        serde_json::json!({ "error": err }).to_string()
                    }
                };
                if let Err(err) = sink.send(Message::Text(body.into())).await {
                    return format!("the connection failed: {err}");
                }
            }
            _ = ping.tick() => {
                if let Err(err) = sink.send(Message::Ping(Default::default())).await {
                    return format!("the connection failed: {err}");
                }
            }
        }
    }
}

/// The robot's answer to one offer frame (JSON text), or why there is none.
async fn answer(
    answerer: &impl Answerer,
    config: &RelayConfig,
    tokens: Option<&Tokens>,
    text: &str,
) -> Result<String, String> {
    let offer = SessionDescription::from_json(text).map_err(|e| e.to_string())?;
    if offer.kind != SdpType::Offer {
        return Err("expected {\"type\":\"offer\"}: the robot answers, the browser offers".into());
    }
    let role = role_of(tokens, config.role, text);
    // In a task of its own, as `/connect` does: a negotiation is never cut half-way.
    let negotiation = {
        let answerer = answerer.clone();
        tokio::spawn(async move { answerer.answer(offer, role).await })
    };
    let answer = negotiation
        .await
        .map_err(|_| "the negotiation task failed".to_owned())??;
    serde_json::to_string(&answer).map_err(|e| e.to_string())
}

/// The role of an offer through the relay: its `"token"`'s, when it has one of the
/// robot's; else the configured role. Without auth, every peer is an admin, as on
/// `/connect`.
fn role_of(tokens: Option<&Tokens>, default: Role, offer: &str) -> Role {
    let Some(tokens) = tokens else {
        return Role::Admin;
    };
    serde_json::from_str::<serde_json::Value>(offer)
        .ok()
        .and_then(|v| v.get("token")?.as_str().and_then(|t| tokens.role_of(t)))
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;

    #[test]
    fn a_token_in_the_offer_gives_its_role_and_none_the_configured_one() {
        let auth = AuthConfig::default().with_token(Role::Admin, "admin-token-0123456789");
        let tokens = Tokens::new(&auth);
        let offer = |token: &str| format!(r#"{{"type":"offer","sdp":"v=0","token":"{token}"}}"#);
        assert_eq!(
            role_of(
                Some(&tokens),
                Role::Viewer,
                &offer("admin-token-0123456789")
            ),
            Role::Admin
        );
        assert_eq!(
            role_of(Some(&tokens), Role::Viewer, &offer("nope")),
            Role::Viewer
        );
        assert_eq!(
            role_of(
                Some(&tokens),
                Role::Driver,
                r#"{"type":"offer","sdp":"v=0"}"#
            ),
            Role::Driver
        );
        assert_eq!(role_of(None, Role::Viewer, "{}"), Role::Admin, "no auth");
    }
}

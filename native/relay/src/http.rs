//! The relay's HTTP face, rtcbot.dev's protocol:
//!
//! - `GET /<room>` with a WebSocket upgrade: a robot takes the room (`?key=` or
//!   `Authorization: Bearer` claims it, or proves it holds it). Each offer for the
//!   room arrives as one text frame of JSON; the robot's next text frame is the answer;
//! - `POST /<room>` (or `/<room>/connect`): the body, a browser's offer, goes to the
//!   room's robot; the answer comes back as the response. 404 when no robot is in the
//!   room, 504 when it does not answer in time, 429 over the room's rate, 413 over the
//!   size limit; with Redis ([`shared`](crate::shared)), the robot may be on another
//!   relay, and 503 says Redis is unreachable when it is needed;
//! - `GET /<room>/peers` with a WebSocket upgrade: the room's pages signal each other
//!   ([`peers`](crate::peers)), e.g. operators of one robot with perfect negotiation;
//! - `GET /<room>/ice`: the ICE servers a page should use, TURN with credentials
//!   minted for it ([`turn`](crate::turn));
//! - errors are one line of plain text, as the robot's own;
//! - `GET /<room>` in a browser: with `www` set, the browser app at `/<room>/`
//!   (its assets are relative, so it posts its offer to `/<room>/connect`); else a
//!   page saying whether a robot is in the room. `GET /<room>/status` says that as
//!   JSON; `GET /health`, the relay's counts.
//!
//! Any origin's page may POST offers (CORS): as on rtcbot.dev, a room's name (and a
//! robot's key) is what guards it, and RTCBot's tutorial pages are served elsewhere.

use crate::rooms::{ForwardError, RegisterError, Registration, Rooms};
use crate::shared::Shared;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// How often the relay pings a robot's socket (keeps NAT mappings open, finds dead
/// robots).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The rooms.
    pub rooms: Arc<Rooms>,
    /// The largest message, bytes.
    pub max_message_bytes: usize,
    /// How long an offer waits for its answer.
    pub offer_timeout: Duration,
    /// The browser app's folder, served at `/<room>/`.
    pub www: Option<std::path::PathBuf>,
    /// Everything else (the ICE servers pages get).
    pub config: Arc<crate::RelayConfig>,
    /// Offers per client address.
    pub limiter: crate::limit::AddressLimiter,
    /// The rooms shared with other relays through Redis, if configured.
    pub shared: Option<Arc<Shared>>,
}

impl AppState {
    /// Whether a robot is in `room`: here, or (with Redis) on another relay.
    async fn present(&self, room: &str) -> bool {
        match &self.shared {
            Some(shared) => shared.present(room).await,
            None => self.rooms.present(room),
        }
    }
}

/// The relay's routes.
pub fn app(state: AppState) -> Router {
    let limit = state.max_message_bytes;
    let peers = Arc::new(crate::peers::Peers::default());
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/{room}", get(room_get).post(offer))
        .route("/{room}/connect", axum::routing::post(offer))
        .route("/{room}/status", get(status))
        .route("/{room}/ice", get(ice))
        .route("/{room}/peers", get(peers_get))
        .route("/{room}/", get(app_page))
        .route("/{room}/{*file}", get(app_file))
        .layer(DefaultBodyLimit::max(limit))
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
        )
        .layer(axum::Extension(peers))
        .with_state(state)
}

/// A socket with small buffers (most robots and pages sit idle in their rooms:
/// tungstenite's default of 128 KiB each way made an idle robot cost 135 KiB of the
/// relay's memory) and messages up to `max_bytes`.
fn sized(upgrade: WebSocketUpgrade, max_bytes: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(max_bytes)
        .max_frame_size(max_bytes)
}

/// An error reply: one line of plain text, as the robot's own `/connect` gives.
fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>rtcbot-relay</title><h1>rtcbot-relay</h1>\
         <p>Robots connect to <code>ws://this-host/ROOM</code>; open <code>/ROOM</code> \
         to see whether its robot is there, and POST offers to <code>/ROOM</code>.</p>",
    )
}

async fn health(State(state): State<AppState>) -> Response {
    let counts = state.rooms.counts();
    match &state.shared {
        None => Json(counts).into_response(),
        Some(shared) => Json(serde_json::json!({
            "rooms": counts.rooms,
            "robots": counts.robots,
            "redis": *shared.status().borrow(),
        }))
        .into_response(),
    }
}

async fn status(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    if let Err(err) = crate::room::check_name(&room) {
        return error(StatusCode::BAD_REQUEST, err);
    }
    let present = state.present(&room).await;
    Json(serde_json::json!({ "room": room, "robot": present })).into_response()
}

/// `GET /<room>/ice`: the ICE servers for a page in the room, TURN with credentials
/// minted now (`{"iceServers": [...]}`, as `RTCPeerConnection` takes them).
async fn ice(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    if let Err(err) = crate::room::check_name(&room) {
        return error(StatusCode::BAD_REQUEST, err);
    }
    let c = &state.config;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let servers = crate::turn::ice_servers(
        &c.stun_urls,
        &c.turn_urls,
        c.turn_secret.as_deref(),
        &room,
        now,
        c.turn_ttl_s,
    );
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "iceServers": servers })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

/// The robot's key: `Authorization: Bearer KEY`, else `?key=KEY`.
fn key_of(headers: &HeaderMap, query: &KeyQuery) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query.key.clone())
        .filter(|k| !k.is_empty())
}

async fn room_get(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return page(&state, &room).await;
    };
    let key = key_of(&headers, &query);
    let admitted = match &state.shared {
        Some(shared) => shared.admit(&room, key.as_deref()).await,
        None => Ok(()),
    };
    let registration = match admitted.and_then(|()| state.rooms.register(&room, key.as_deref())) {
        Ok(registration) => registration,
        Err(err @ RegisterError::Room(crate::room::RoomError::WrongKey(_))) => {
            return error(StatusCode::FORBIDDEN, err)
        }
        Err(err @ RegisterError::Room(_)) => return error(StatusCode::BAD_REQUEST, err),
        Err(err @ RegisterError::Full(_)) => return error(StatusCode::SERVICE_UNAVAILABLE, err),
    };
    tracing::info!(room, id = registration.id, "a robot took the room");
    if let Some(shared) = &state.shared {
        shared.arrived(&room).await;
    }
    let rooms = state.rooms.clone();
    let shared = state.shared.clone();
    let timeout = state.offer_timeout;
    // Until the socket is up, the seat gives the room back if the upgrade never
    // completes (the robot went away before the 101 reached it).
    let seat = Seat {
        rooms: rooms.clone(),
        shared: shared.clone(),
        room: registration.room.clone(),
        id: registration.id,
        taken: false,
    };
    sized(upgrade, state.max_message_bytes).on_upgrade(move |socket| async move {
        seat.taken();
        let room = registration.room.clone();
        robot_socket(socket, rooms, registration, timeout).await;
        if let Some(shared) = shared {
            shared.left(&room).await;
        }
    })
}

/// A robot's place in its room between its registration and its socket: dropped
/// before it is [`taken`](Seat::taken) (the upgrade failed), it leaves the room, here
/// and in Redis.
struct Seat {
    rooms: Arc<Rooms>,
    shared: Option<Arc<Shared>>,
    room: String,
    id: u64,
    taken: bool,
}

impl Seat {
    /// The socket is up: its task leaves the room when it ends.
    fn taken(mut self) {
        self.taken = true;
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        tracing::info!(
            room = self.room,
            id = self.id,
            "a robot left before its socket was up"
        );
        self.rooms.unregister(&self.room, self.id);
        if let Some(shared) = self.shared.take() {
            let room = std::mem::take(&mut self.room);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { shared.left(&room).await });
            }
        }
    }
}

/// A room's page for a person: the app (at `/<room>/`, so its relative URLs stay in
/// the room), or whether its robot is there.
async fn page(state: &AppState, room: &str) -> Response {
    if let Err(err) = crate::room::check_name(room) {
        return error(StatusCode::BAD_REQUEST, err);
    }
    if state.www.is_some() {
        return axum::response::Redirect::permanent(&format!("/{room}/")).into_response();
    }
    let present = state.present(room).await;
    let (class, text) = if present {
        ("present", "A robot is connected to this room.")
    } else {
        ("absent", "No robot is connected to this room.")
    };
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>{room} · rtcbot-relay</title>\
         <h1>Room {room}</h1><p id=robot class={class}>{text}</p>\
         <p>POST an offer to this address to connect.</p>"
    ))
    .into_response()
}

/// `GET /<room>/`: the browser app.
async fn app_page(State(state): State<AppState>, Path(room): Path<String>) -> Response {
    app_file(State(state), Path((room, "index.html".to_owned()))).await
}

/// `GET /<room>/<file>`: one of the app's files.
async fn app_file(
    State(state): State<AppState>,
    Path((room, file)): Path<(String, String)>,
) -> Response {
    use tower::ServiceExt;
    if let Err(err) = crate::room::check_name(&room) {
        return error(StatusCode::BAD_REQUEST, err);
    }
    let Some(www) = &state.www else {
        return error(StatusCode::NOT_FOUND, "this relay serves no app (--www)");
    };
    let request = axum::http::Request::builder()
        .uri(format!("/{}", file.trim_start_matches('/')))
        .body(axum::body::Body::empty())
        .expect("a path from a matched route");
    match tower_http::services::ServeDir::new(www)
        .oneshot(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

async fn offer(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0);
    let client = crate::limit::client(&headers, peer, state.config.forwarded_for);
    if client.is_some_and(|ip| !state.limiter.take(ip)) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many offers from your address: try again in a few seconds",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the offer must be UTF-8 JSON");
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the offer must be a JSON object, {\"type\":\"offer\",\"sdp\":...}",
            )
        }
    }
    let forwarded = match &state.shared {
        Some(shared) => shared.forward(&room, text.to_owned()).await,
        None => state.rooms.forward(&room, text.to_owned()).await,
    };
    match forwarded {
        Ok(answer) => answer_response(answer),
        Err(err) => {
            let status = match &err {
                ForwardError::Room(_) => StatusCode::BAD_REQUEST,
                ForwardError::NoRobot(_) => StatusCode::NOT_FOUND,
                ForwardError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                ForwardError::Busy(_) | ForwardError::Shared(_) => StatusCode::SERVICE_UNAVAILABLE,
                ForwardError::Timeout(..) => StatusCode::GATEWAY_TIMEOUT,
                ForwardError::Left(_) => StatusCode::BAD_GATEWAY,
            };
            error(status, err)
        }
    }
}

/// The robot's answer as the response: JSON as it came, or its error (a robot says
/// `{"error": ...}` when it cannot answer) as 502.
fn answer_response(answer: String) -> Response {
    let value = serde_json::from_str::<serde_json::Value>(&answer);
    match value {
        Ok(serde_json::Value::Object(map))
            if map.contains_key("error") && !map.contains_key("sdp") =>
        {
            let why = map["error"]
                .as_str()
                .map_or_else(|| map["error"].to_string(), str::to_owned);
            error(
                StatusCode::BAD_GATEWAY,
                format!("the robot could not answer: {why}"),
            )
        }
        Ok(_) => ([(header::CONTENT_TYPE, "application/json")], answer).into_response(),
        Err(_) => error(StatusCode::BAD_GATEWAY, "the robot's answer was not JSON"),
    }
}

/// One robot's socket: hands it the room's offers one at a time, takes its next text
/// frame as the answer, pings it, and leaves the room when it closes.
async fn robot_socket(
    socket: WebSocket,
    rooms: Arc<Rooms>,
    mut registration: Registration,
    timeout: Duration,
) {
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let why = loop {
        tokio::select! {
            forward = registration.offers.recv() => {
                let Some(forward) = forward else {
                    break "another robot took the room";
                };
                if sink.send(Message::Text(forward.offer.into())).await.is_err() {
                    break "the socket closed";
                }
                match tokio::time::timeout(timeout, next_text(&mut stream)).await {
                    Ok(Some(answer)) => {
                        let _ = forward.answer.send(answer);
                    }
                    Ok(None) => break "the socket closed",
                    // Its late answer could be taken for the next offer's: it goes.
                    Err(_) => break "the robot did not answer an offer in time",
                }
            }
            message = stream.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "the socket closed",
                Some(Ok(Message::Text(text))) => {
                    tracing::debug!(room = registration.room, "a frame with no offer to answer: {text:.80}");
                }
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break "the socket closed";
                }
            }
        }
    };
    // Out of the room first: once the robot sees its socket close, no offer (from
    // this relay or through another) reaches it any more.
    rooms.unregister(&registration.room, registration.id);
    let _ = sink.send(Message::Close(None)).await;
    tracing::info!(
        room = registration.room,
        id = registration.id,
        "a robot left the room: {why}"
    );
}

/// The socket's next text frame (pings and pongs skipped); `None` once it closes.
async fn next_text(stream: &mut futures_util::stream::SplitStream<WebSocket>) -> Option<String> {
    while let Some(message) = stream.next().await {
        match message.ok()? {
            Message::Text(text) => return Some(text.to_string()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// `GET /<room>/peers` with a WebSocket upgrade: a page joins the room's pages
/// ([`peers`](crate::peers)).
async fn peers_get(
    State(state): State<AppState>,
    axum::Extension(peers): axum::Extension<Arc<crate::peers::Peers>>,
    Path(room): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    match peers.check(&room) {
        Ok(()) => {}
        Err(err @ crate::peers::PeerError::Full(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, err)
        }
        Err(err) => return error(StatusCode::BAD_REQUEST, err),
    }
    sized(upgrade, state.max_message_bytes).on_upgrade(move |socket| async move {
        // Joined once the socket is up, so a page that never got here is never
        // announced to the others.
        match peers.join(&room) {
            Ok(member) => peer_socket(socket, peers, member).await,
            Err(err) => refuse(socket, &err.to_string()).await,
        }
    })
}

/// Tells a page why it cannot join, and closes.
async fn refuse(mut socket: WebSocket, why: &str) {
    let reply = serde_json::json!({ "type": "error", "error": why });
    let _ = socket.send(Message::Text(reply.to_string().into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// One page's socket: passes its frames on, hands it the others', pings it, and
/// leaves the room when it closes or falls too far behind.
async fn peer_socket(
    socket: WebSocket,
    peers: Arc<crate::peers::Peers>,
    mut member: crate::peers::Member,
) {
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            frame = member.inbox.recv() => {
                let Some(frame) = frame else { break };
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
            }
            message = stream.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => {
                    if let Err(err) = peers.relay(&mut member, &text) {
                        let reply = serde_json::json!({ "type": "error", "error": err.to_string() });
                        if sink.send(Message::Text(reply.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    peers.leave(&member);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_robot_whose_socket_never_came_up_leaves_its_room() {
        let rooms = Arc::new(Rooms::new(Arc::new(crate::RelayConfig::default())));
        let seat = |rooms: &Arc<Rooms>| {
            let registration = rooms.register("r", None).unwrap();
            Seat {
                rooms: rooms.clone(),
                shared: None,
                room: "r".into(),
                id: registration.id,
                taken: false,
            }
        };
        drop(seat(&rooms));
        assert!(
            !rooms.present("r"),
            "an upgrade that failed gives the room back"
        );
        seat(&rooms).taken();
        assert!(rooms.present("r"), "a socket that came up keeps it");
    }
}

//! The robot's HTTP side: signaling and the browser bundle.
//!
//! [`router`] is the robot's axum router; merge your own routes and tower middleware
//! into it (as WebGear_RTC lets you) and serve it with [`serve_app`], or serve it as it
//! is with [`serve`], which also shuts the robot down when `shutdown` completes.
//!
//! - `POST /connect`: RTCBot's signaling. The body is an offer
//!   `{"type":"offer","sdp":"..."}`; the response is the answer. Bad JSON or SDP gets
//!   400 with the reason, a body over [`MAX_BODY_BYTES`] gets 413, a full robot 503.
//!   A failure on the robot's side gets 500 with a generic message; its details go
//!   to the log (tracing), not to whoever sent the offer.
//! - With auth on ([`crate::auth`]), `/connect` needs a token, `Authorization:
//!   Bearer <token>` or `?token=<token>`: none or a wrong one gets 401, and each client
//!   address has a quota of calls (429 past it, with `Retry-After`). The token's role
//!   goes to the peer: a viewer's drive states are refused.
//! - `/connect` answers cross-origin requests only from `cors_origins`.
//! - `POST /whep`, `DELETE /whep/<session>`: WHEP for standard players ([`whep`]),
//!   with `/connect`'s auth and quota; its viewers watch and never drive.
//! - `GET /health`: JSON with peer and video counters, each viewer's video link
//!   (bandwidth estimate, loss, NACKs, round trip) and the drive state in force.
//! - `GET /`: the built `www` bundle ([`embedded`]: a folder, or the one built into
//!   the binary), or a page saying how to build it.

pub mod embedded;
pub mod first_run;
pub mod tls;
pub mod whep;

use crate::auth::{ConnectLimiter, Role, Tokens};
use crate::control::PeerId;
use crate::robot::Robot;
use crate::rtc::PeerError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shared_protocol::{SdpType, SessionDescription};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeFile;

/// The largest `/connect` body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest a `/connect` body may take to arrive: a client that trickles its body
/// (or never sends it) is cut off instead of holding a connection for good.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the robot's [`router`] on `listener` until `shutdown` completes, then shuts
/// the robot down (every peer closed, the motors stopped).
pub async fn serve(
    listener: tokio::net::TcpListener,
    robot: Robot,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, router(robot.clone()), robot, shutdown).await
}

/// Serves `app` (the robot's [`router`] with your routes and middleware merged in)
/// until `shutdown` completes, then shuts `robot` down.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    robot: Robot,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, app, robot, shutdown).await
}

/// [`serve_app`] over HTTPS with `tls` (see [`tls::identity`]): plain HTTP on the same
/// port is redirected to `https://`.
pub async fn serve_app_tls(
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    app: Router,
    robot: Robot,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // `tap_io` gives the listener axum's connect info (the client's address).
    let listener = tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
    serve_on(listener, app, robot, shutdown).await
}

async fn serve_on<L>(
    listener: L,
    app: Router,
    robot: Robot,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    for<'a> std::net::SocketAddr:
        axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    // The robot stops when `shutdown` completes, not when the last HTTP connection
    // closes: a long-lived route of yours must not keep the motors running.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            robot.shutdown().await;
        })
        .await
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what systemd sends): the `shutdown` to
/// hand [`serve`] in a robot program.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!("cannot watch for SIGTERM ({err}); stopping on Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// What the routes share: the robot, and the gate `/connect` passes when auth is on.
#[derive(Clone)]
struct AppState {
    robot: Robot,
    gate: Option<std::sync::Arc<Gate>>,
    /// The WHEP sessions and their peers.
    whep: std::sync::Arc<whep::Sessions>,
}

/// The tokens and the per-address quota, made once from `[auth]`.
struct Gate {
    tokens: Tokens,
    limiter: ConnectLimiter,
}

impl FromRef<AppState> for Robot {
    fn from_ref(state: &AppState) -> Robot {
        state.robot.clone()
    }
}

/// The robot's routes: `POST /connect`, WHEP (`POST /whep`, `DELETE /whep/<session>`),
/// `GET /health`, the browser bundle.
pub fn router(robot: Robot) -> Router {
    let gate = robot.config().auth().map(|auth| {
        std::sync::Arc::new(Gate {
            tokens: Tokens::new(auth),
            limiter: ConnectLimiter::new(auth.connect_burst, auth.connect_per_minute),
        })
    });
    let connect_route = post(connect).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        BODY_TIMEOUT,
    ));
    let whep_route = post(whep::offer).options(whep::options).layer(
        tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT),
    );
    let whep_session = delete(whep::end);
    let (connect_route, whep_route, whep_session) = match cors(&robot.config().cors_origins) {
        Some(layer) => (
            connect_route.layer(layer.clone()),
            whep_route.layer(layer.clone()),
            whep_session.layer(layer),
        ),
        None => (connect_route, whep_route, whep_session),
    };
    Router::new()
        .route("/connect", connect_route)
        .route(whep::ENDPOINT, whep_route)
        .route("/whep/{session}", whep_session)
        .route("/health", get(health))
        .route("/", get(index))
        .fallback(embedded::fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState {
            robot,
            gate,
            whep: Default::default(),
        })
}

/// Cross-origin access to `/connect` and WHEP for the configured origins, if any
/// (WHEP's `Location` readable by the page).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::POST, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([header::LOCATION]),
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// `POST /connect`: the caller's address (when served with connect info, as [`serve`]
/// does) bounds its connecting peers and, with auth on, its calls.
async fn connect(
    State(state): State<AppState>,
    Admitted { client, role }: Admitted,
    body: Bytes,
) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body must be UTF-8 JSON");
    };
    let offer = match SessionDescription::from_json(text) {
        Ok(offer) => offer,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    if offer.kind != SdpType::Offer {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"type\":\"offer\"}: the robot answers, the browser offers",
        );
    }
    match negotiate(&state.robot, offer, client, role).await {
        Ok((_, answer)) => Json(answer).into_response(),
        Err(err) => connect_error(&err),
    }
}

/// A request the gate let in (extracted before its body is read): the caller's
/// address, when served with connect info as [`serve`] does, and the role its token
/// grants (admin with auth off). A request it refuses gets the [`Refusal`].
struct Admitted {
    client: Option<std::net::IpAddr>,
    role: Role,
}

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Refusal> {
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let role = match &state.gate {
            None => Role::Admin,
            Some(gate) => admit(gate, client, &parts.headers, &parts.uri)?,
        };
        Ok(Self { client, role })
    }
}

/// Answers `offer` for a peer with `role` from `client`: its id and the answer.
///
/// Negotiated in a task of its own: a client that hangs up mid-request cancels the
/// handler, and a negotiation cut off half-way would leave a connection nobody
/// closes. The task finishes it and adds (or closes) the peer either way.
async fn negotiate(
    robot: &Robot,
    offer: SessionDescription,
    client: Option<std::net::IpAddr>,
    role: Role,
) -> Result<(PeerId, SessionDescription), PeerError> {
    let robot = robot.clone();
    let negotiation =
        tokio::spawn(async move { robot.connect_session(&offer, client, role).await });
    negotiation
        .await
        .unwrap_or(Err(PeerError::Negotiation("the negotiation task failed")))
}

/// Why `/connect` turned a request away before reading its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Its address is over its quota; the next call is allowed in this many seconds.
    Quota(u64),
    /// No token.
    NoToken,
    /// A token that is none of the robot's.
    WrongToken,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = match self {
            Refusal::Quota(seconds) => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many calls from your address: try again in {seconds} s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
                return response;
            }
            Refusal::NoToken => error(
                StatusCode::UNAUTHORIZED,
                "this robot needs a token: open the address it printed when it started \
                 (with ?token=...), or send Authorization: Bearer <token>",
            ),
            Refusal::WrongToken => error(
                StatusCode::UNAUTHORIZED,
                "that token is not one of this robot's",
            ),
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"rtcbot\""),
        );
        response
    }
}

/// The role the request's token grants: refused past the client's quota (checked
/// first, so guessing costs quota), or without a valid token.
fn admit(
    gate: &Gate,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Role, Refusal> {
    if let Some(ip) = client {
        if let Err(wait) = gate.limiter.check(ip) {
            tracing::debug!(%ip, "/connect over its quota");
            return Err(Refusal::Quota(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match crate::auth::tokens::presented(authorization, uri.query()) {
        None => Err(Refusal::NoToken),
        Some(token) => gate.tokens.role_of(token).ok_or_else(|| {
            tracing::info!(client = ?client, "/connect with a wrong token");
            Refusal::WrongToken
        }),
    }
}

/// The 500 body: the details are in the robot's log, not for whoever sent the offer.
const INTERNAL_ERROR: &str = "the robot could not answer the offer; its log says why";

/// What a failed `/connect` answers: the user's own mistake (400) or a full or
/// stopping robot (503) with the reason, anything else a 500 with a generic message
/// and the details logged.
fn connect_error(err: &PeerError) -> Response {
    match err {
        PeerError::BadOffer(_) => error(StatusCode::BAD_REQUEST, err.to_string()),
        PeerError::TooManyConnecting {
            per_client: true, ..
        } => error(StatusCode::TOO_MANY_REQUESTS, err.to_string()),
        PeerError::TooMany(_) | PeerError::ShuttingDown | PeerError::TooManyConnecting { .. } => {
            error(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
        PeerError::WebRtc(_) | PeerError::Negotiation(_) => {
            tracing::error!(error = %err, "connect failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
        }
    }
}

async fn health(State(robot): State<Robot>) -> Response {
    let c = robot.counters();
    let steadiness = robot.stream().steadiness();
    let drive = *robot.controls().drive().borrow();
    let peers = robot.peers();
    let links: Vec<_> = peers
        .iter()
        .filter_map(|p| {
            let link = p.link?;
            Some(serde_json::json!({
                "peer": p.id,
                "drives": p.drives,
                "bandwidth_kbps": link.bandwidth_kbps,
                "packets_lost": link.packets_lost,
                "nacks": link.nacks,
                "rtt_ms": link.rtt_ms,
                "layer": link.layers.highest(),
                "layer_switches": link.layer_switches,
            }))
        })
        .collect();
    let audio = robot.audio().map(|a| a.counters()).unwrap_or_default();
    let heard = robot.incoming_audio().counters();
    let camera_in = robot.incoming_video().counters();
    let peer_media: Vec<_> = peers
        .iter()
        .map(|p| {
            serde_json::json!({
                "peer": p.id,
                "renegotiations": p.media.renegotiations,
                "audio_out": p.media.audio_out,
                "audio_in": p.media.audio_in,
                "video_in": p.media.video_in,
            })
        })
        .collect();
    Json(serde_json::json!({
        "status": "ok",
        "audio": {
            "source": robot.audio().map(|a| a.source_name().to_owned()),
            "ended": robot.audio().and_then(|a| a.ended()),
            "encoders_started": audio.encoders_started,
            "frames_encoded": audio.frames_encoded,
            "listeners": audio.listeners,
            "source_errors": audio.source_errors,
            "received_packets": heard.received_packets,
            "decoded_blocks": heard.decoded_blocks,
            "decode_errors": heard.decode_errors,
            "played_blocks": heard.played_blocks,
            "dropped_blocks": heard.dropped_blocks,
            "speaker": robot.incoming_audio().speaker(),
        },
        "browser_video": {
            "units_received": camera_in.units_received,
            "frames_decoded": camera_in.frames_decoded,
            "decode_errors": camera_in.decode_errors,
            "width": camera_in.width,
            "height": camera_in.height,
            "decode_ms_mean": (camera_in.frames_decoded > 0).then(|| {
                camera_in.decode_ns as f64 / camera_in.frames_decoded as f64 / 1e6
            }),
        },
        "peer_media": peer_media,
        "relay": robot.relay_status(),
        "sfu": robot.sfu_status(),
        "peers": robot.peer_count(),
        "viewers": c.viewers,
        "encoders_started": c.encoders_started,
        "frames_encoded": c.frames_encoded,
        "frames_skipped": c.frames_skipped,
        "fps": steadiness.fps,
        "max_frame_gap_ms": steadiness.max_gap.as_secs_f64() * 1000.0,
        "keyframe_requests_dropped": c.keyframe_requests_dropped,
        "target_kbps": (c.target_kbps != 0).then_some(c.target_kbps),
        "bitrate_changes": c.bitrate_changes,
        "video_links": links,
        "process": crate::robot::ProcessStats::now(),
        "peer_states": crate::rtc::peer::live_peer_states(),
        "encoder": robot.encoder_name(),
        "driver": robot.controls().driver().is_some(),
        "silence_stops": robot.controls().silence_stops(),
        "drive": drive,
    }))
    .into_response()
}

async fn index(State(robot): State<Robot>, request: axum::extract::Request) -> Response {
    let (method, headers) = (request.method(), request.headers());
    if let Some(page) = embedded::serve(robot.config(), method, headers, "/") {
        return page;
    }
    let index = robot.config().www.join("index.html");
    if index.is_file() {
        return match ServeFile::new(index).try_call(request).await {
            Ok(response) => response.into_response(),
            Err(err) => {
                tracing::error!(error = %err, "cannot serve index.html");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the robot could not read its web page; its log says why",
                )
            }
        };
    }
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>rtcbot-rs</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
         <h1>The robot is running</h1><p>The browser app is not built yet: no <code>{}</code>{}.</p>\
         <p>Build it with <code>bash scripts/build-web.sh</code> (or run the robot with \
         <code>bash scripts/run.sh</code>, which builds it first), then reload this page.</p>\
         <p>Signaling is live at <code>POST /connect</code>.</p></body>",
        robot.config().www.join("index.html").display(),
        if embedded::is_embedded() {
            " (the page built into this binary is served only when <code>www</code> is not set)"
        } else {
            ", and none built into this binary"
        }
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn robot() -> Robot {
        robot_with(|_| {})
    }

    /// A robot without a bundle, on loopback ICE, with `edit` applied to its config.
    fn robot_with(edit: impl FnOnce(&mut Config)) -> Robot {
        let mut config = Config {
            www: std::path::PathBuf::from("/nonexistent-www"),
            ..Config::default()
        };
        config.webrtc.ice_udp = vec!["127.0.0.1:0".into()];
        edit(&mut config);
        Robot::start(config).unwrap()
    }

    async fn post_connect(app: Router, body: impl Into<Body>) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::post("/connect").body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn bad_offers_get_400_with_the_reason() {
        let app = router(robot());
        let cases = [
            ("{", "malformed session description"),
            (
                r#"{"type":"answer","sdp":"v=0\r\nm=video 9 x 96\r\n"}"#,
                "expected {\"type\":\"offer\"}",
            ),
            (r#"{"type":"offer","sdp":"hello"}"#, "v=0"),
            (
                r#"{"type":"offer","sdp":"v=0\r\nm=video garbage\r\n"}"#,
                "the offer was refused",
            ),
        ];
        for (body, expected) in cases {
            let (status, text) = post_connect(app.clone(), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
            assert!(text.contains(expected), "{body} gave {text:?}");
        }
        let (status, _) = post_connect(app.clone(), vec![0xff, 0xfe]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    const DRIVER: &str = "driver-token-for-the-router-test";

    /// A `/connect` request with a bad offer (so one that passes the gate gets 400),
    /// from `client`, with `auth` as its Authorization header and `query`.
    fn gated(client: [u8; 4], auth: Option<&str>, query: &str) -> Request<Body> {
        let mut request = Request::post(format!("/connect{query}"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let mut request = request.body(Body::from("{")).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                client, 40000,
            ))));
        request
    }

    #[tokio::test]
    async fn with_auth_connect_needs_a_token_and_a_quota() {
        let app = router(robot_with(|c| {
            c.auth = Some(crate::auth::AuthConfig {
                connect_burst: 4,
                ..crate::auth::AuthConfig::default().with_token(Role::Driver, DRIVER)
            });
        }));
        let call = |request: Request<Body>| {
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.unwrap();
                let status = response.status();
                let challenge = response.headers().get("www-authenticate").cloned();
                (status, challenge, body_text(response).await)
            }
        };
        let (status, challenge, text) = call(gated([10, 0, 0, 1], None, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert_eq!(challenge.unwrap(), "Bearer realm=\"rtcbot\"");
        assert!(text.contains("needs a token"), "{text}");
        let (status, _, text) = call(gated(
            [10, 0, 0, 1],
            Some("Bearer not-the-token-at-all"),
            "",
        ))
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(text.contains("not one of this robot's"), "{text}");
        // The right token, either way, passes the gate (and meets the bad offer).
        let bearer = format!("Bearer {DRIVER}");
        let (status, ..) = call(gated([10, 0, 0, 1], Some(&bearer), "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, ..) = call(gated([10, 0, 0, 1], None, &format!("?token={DRIVER}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Four calls so far from 10.0.0.1: its burst. The next is refused, even with
        // the right token; another address goes on.
        let response = app
            .clone()
            .oneshot(gated([10, 0, 0, 1], Some(&bearer), ""))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().get("retry-after").is_some());
        let (status, ..) = call(gated([10, 0, 0, 2], Some(&bearer), "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn auth_on_without_a_token_is_refused_at_start() {
        let config = Config {
            auth: Some(crate::auth::AuthConfig::default()),
            ..Config::default()
        };
        let err = Robot::start(config).err().expect("refused").to_string();
        assert!(err.contains("auth"), "{err}");
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn internal_failures_answer_500_without_their_details() {
        let secret = "udp bind 10.1.2.3:5000 failed in /srv/robot";
        for err in [
            PeerError::WebRtc(webrtc::error::Error::Other(secret.into())),
            PeerError::Negotiation("no local description after answering"),
        ] {
            let response = connect_error(&err);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let text = body_text(response).await;
            assert_eq!(text, INTERNAL_ERROR, "{err}");
        }
        // The user's own mistakes and a full or stopping robot keep their reasons.
        let response = connect_error(&PeerError::TooMany(4));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body_text(response).await.contains("the limit is 4"));
        let response = connect_error(&PeerError::ShuttingDown);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body_text(response).await.contains("shutting down"));
        let response = connect_error(&PeerError::BadOffer(webrtc::error::Error::Other(
            "no m= line".into(),
        )));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(body_text(response).await.contains("no m= line"));
    }

    #[tokio::test]
    async fn cross_origin_connects_only_from_configured_origins() {
        let preflight = |origin: &str| {
            Request::builder()
                .method("OPTIONS")
                .uri("/connect")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .body(Body::empty())
                .unwrap()
        };
        // The origin the robot allows a preflight from, if any.
        let allowed = |app: Router, origin: &'static str| async move {
            let response = app.oneshot(preflight(origin)).await.unwrap();
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let closed = router(robot());
        assert_eq!(allowed(closed, "http://evil.example").await, None);

        let open = router(robot_with(|c| {
            c.cors_origins = vec!["http://localhost:5173".into()]
        }));
        assert_eq!(
            allowed(open.clone(), "http://localhost:5173")
                .await
                .as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(allowed(open, "http://evil.example").await, None);
    }

    #[tokio::test]
    async fn oversize_bodies_get_413() {
        let (status, _) = post_connect(router(robot()), vec![b' '; MAX_BODY_BYTES + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn serves_health_and_a_help_page_without_a_bundle() {
        let app = router(robot());
        let get = |path: &'static str| {
            let app = app.clone();
            async move {
                let response = app
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                body_text(response).await
            }
        };
        let health: serde_json::Value = serde_json::from_str(&get("/health").await).unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["peers"], 0);
        assert_eq!(health["keyframe_requests_dropped"], 0);
        assert_eq!(health["drive"]["forward"], 0.0);
        assert!(get("/").await.contains("scripts/build-web.sh"));
    }
}

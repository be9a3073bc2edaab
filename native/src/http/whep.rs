//! WHEP (the WebRTC-HTTP egress protocol, draft-ietf-wish-whep, WHIP's RFC 9725 for
//! watching): how standard players and media tools ask for the robot's stream.
//!
//! - `POST /whep` with an SDP offer (`Content-Type: application/sdp`) answers
//!   `201 Created` with the answer SDP (`application/sdp`, non-trickle: every
//!   candidate in it) and `Location: /whep/<session>`; the offer goes through the same
//!   negotiation as `/connect` (one H.264 encode for every viewer, Opus when the
//!   robot has a source and the offer receives audio);
//! - `DELETE /whep/<session>` ends that session at once (200); an unknown session gets
//!   404;
//! - `OPTIONS /whep` says `Accept-Post: application/sdp`.
//!
//! Auth and quota are `/connect`'s: a token (`Authorization: Bearer`, or `?token=`)
//! and the per-address call quota, on `DELETE` too (it would otherwise be a way to
//! try tokens without a quota). A WHEP session is a viewer whatever its token's role:
//! it watches and never drives. It needs no data channel: the robot drops it when its
//! connection closes or fails, as any peer, and its session then answers 404.
//!
//! Wrong content type: 415; a body that is not an SDP offer, or an offer that
//! receives no media: 400 with the reason. The rules and the session table are pure
//! and unit-tested here; the routes are tested through the router.

use super::{connect_error, error, negotiate, Admitted, AppState};
use crate::auth::Role;
use crate::control::PeerId;
use crate::rtc::sdp::MediaWants;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shared_protocol::SessionDescription;
use std::collections::HashMap;
use std::sync::Mutex;
use thiserror::Error;

/// The media type of WHEP's offers and answers.
pub const SDP_TYPE: &str = "application/sdp";

/// `Accept-Post`, which says what a `POST` takes (RFC 7694; not among `http`'s names).
pub const ACCEPT_POST: header::HeaderName = header::HeaderName::from_static("accept-post");

/// The WHEP endpoint's path; sessions live under it.
pub const ENDPOINT: &str = "/whep";

/// Whether a `Content-Type` header value names SDP (parameters and case aside).
pub fn is_sdp(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(SDP_TYPE))
}

/// Why a WHEP offer was refused before negotiation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OfferRefusal {
    /// The request is not `application/sdp`.
    #[error(
        "POST /whep takes an SDP offer: send it with Content-Type: application/sdp \
         (this request said {})",
        .0.as_deref().map_or("nothing".to_owned(), |t| format!("{t:?}"))
    )]
    NotSdp(Option<String>),
    /// The body is not UTF-8.
    #[error("the offer is not UTF-8 text")]
    NotText,
    /// The body does not start as an SDP does.
    #[error("the body is not an SDP offer: an SDP starts with \"v=0\"")]
    NoVersion,
    /// The offer receives neither video nor audio.
    #[error(
        "the offer receives no media: a WHEP offer needs a recvonly (or sendrecv) video \
         or audio section"
    )]
    ReceivesNothing,
}

/// Reads a WHEP offer: its content type, then its text, then whether it is an SDP
/// that receives media (the WebRTC stack checks the rest when negotiating).
pub fn read_offer<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<&'a str, OfferRefusal> {
    if !is_sdp(content_type) {
        return Err(OfferRefusal::NotSdp(content_type.map(str::to_owned)));
    }
    let sdp = std::str::from_utf8(body).map_err(|_| OfferRefusal::NotText)?;
    if !sdp.trim_start().starts_with("v=0") {
        return Err(OfferRefusal::NoVersion);
    }
    let wants = MediaWants::of(sdp);
    if !wants.receive_video && !wants.receive_audio {
        return Err(OfferRefusal::ReceivesNothing);
    }
    Ok(sdp)
}

impl IntoResponse for OfferRefusal {
    fn into_response(self) -> Response {
        let status = match self {
            OfferRefusal::NotSdp(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = error(status, self.to_string());
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            response
                .headers_mut()
                .insert(ACCEPT_POST, HeaderValue::from_static(SDP_TYPE));
        }
        response
    }
}

/// Characters in a session id: 16 random bytes, base64url without padding.
const SESSION_ID_CHARS: usize = 22;

/// A WHEP session's id, the last part of its `Location`: random, so that nobody ends
/// a session they were not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A new random id (128 bits from the OS-seeded CSPRNG).
    pub fn generate() -> Self {
        use base64::Engine;
        let bytes: [u8; 16] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `text` as a session id, if it is shaped like one.
    pub fn parse(text: &str) -> Option<Self> {
        let shaped = text.len() == SESSION_ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(text.to_owned()))
    }

    /// The session's resource, for the `Location` header.
    pub fn location(&self) -> String {
        format!("{ENDPOINT}/{}", self.0)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The WHEP sessions and their peers. The robot removes a peer whose connection
/// closed or failed; its session is forgotten at the next `POST` (each one first drops
/// the sessions of peers that are gone), so the table holds no more sessions than the
/// robot holds peers, plus the ones that left since.
#[derive(Debug, Default)]
pub struct Sessions {
    peers: Mutex<HashMap<SessionId, PeerId>>,
}

impl Sessions {
    /// Records a new session for `peer`, first forgetting those whose peer is not
    /// `live`; returns its id.
    pub fn open(&self, peer: PeerId, live: impl Fn(PeerId) -> bool) -> SessionId {
        let id = SessionId::generate();
        let mut peers = self.peers.lock().expect("whep sessions lock");
        peers.retain(|_, p| live(*p));
        peers.insert(id.clone(), peer);
        id
    }

    /// Takes session `id` out of the table: its peer, if it had one.
    pub fn close(&self, id: &SessionId) -> Option<PeerId> {
        self.peers.lock().expect("whep sessions lock").remove(id)
    }

    /// Sessions recorded now.
    pub fn len(&self) -> usize {
        self.peers.lock().expect("whep sessions lock").len()
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `POST /whep`: an SDP offer in, `201 Created` with the answer and the session's
/// `Location` out.
pub(super) async fn offer(
    State(state): State<AppState>,
    Admitted { client, role }: Admitted,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let sdp = match read_offer(content_type, &body) {
        Ok(sdp) => sdp,
        Err(refusal) => return refusal.into_response(),
    };
    tracing::debug!(?client, token_role = %role, "WHEP offer");
    let offer = SessionDescription::offer(sdp);
    let (peer, answer) = match negotiate(&state.robot, offer, client, Role::Viewer).await {
        Ok(answered) => answered,
        Err(err) => return connect_error(&err),
    };
    let live: Vec<PeerId> = state.robot.peers().iter().map(|p| p.id).collect();
    let session = state.whep.open(peer, |p| p == peer || live.contains(&p));
    tracing::info!(peer, %session, "WHEP session opened");
    let location = HeaderValue::from_str(&session.location()).expect("a session id is ASCII");
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(SDP_TYPE)),
            (header::LOCATION, location),
        ],
        answer.sdp,
    )
        .into_response()
}

/// `DELETE /whep/<session>`: ends the session's peer now.
pub(super) async fn end(
    State(state): State<AppState>,
    _: Admitted,
    Path(session): Path<String>,
) -> Response {
    let peer = SessionId::parse(&session).and_then(|id| state.whep.close(&id));
    match peer {
        Some(peer) if state.robot.disconnect(peer, "its WHEP session was deleted") => {
            StatusCode::OK.into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "no such WHEP session: it was deleted, its connection ended, or it never was",
        ),
    }
}

/// `OPTIONS /whep`: what `POST` takes.
pub(super) async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(ACCEPT_POST, SDP_TYPE), (header::ALLOW, "POST, OPTIONS")],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_is_recognised_with_parameters_and_any_case() {
        assert!(is_sdp(Some("application/sdp")));
        assert!(is_sdp(Some("Application/SDP; charset=utf-8")));
        assert!(is_sdp(Some(" application/sdp ")));
        assert!(!is_sdp(Some("application/json")));
        assert!(!is_sdp(Some("application/sdpx")));
        assert!(!is_sdp(Some("text/plain; application/sdp")));
        assert!(!is_sdp(Some("")));
        assert!(!is_sdp(None));
    }

    const RECVONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                            m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=recvonly\r\n";

    #[test]
    fn offers_are_checked_in_order() {
        let sdp = Some(SDP_TYPE);
        assert_eq!(read_offer(sdp, RECVONLY.as_bytes()), Ok(RECVONLY));
        assert_eq!(
            read_offer(Some("application/json"), RECVONLY.as_bytes()),
            Err(OfferRefusal::NotSdp(Some("application/json".into())))
        );
        assert_eq!(
            read_offer(None, b"\xff"),
            Err(OfferRefusal::NotSdp(None)),
            "the type is checked before the body"
        );
        assert_eq!(read_offer(sdp, b"v=0\xff"), Err(OfferRefusal::NotText));
        assert_eq!(
            read_offer(sdp, br#"{"type":"offer","sdp":"v=0"}"#),
            Err(OfferRefusal::NoVersion)
        );
        assert_eq!(read_offer(sdp, b""), Err(OfferRefusal::NoVersion));
        let sends_only = RECVONLY.replace("recvonly", "sendonly");
        assert_eq!(
            read_offer(sdp, sends_only.as_bytes()),
            Err(OfferRefusal::ReceivesNothing)
        );
        let data_only = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert_eq!(
            read_offer(sdp, data_only.as_bytes()),
            Err(OfferRefusal::ReceivesNothing)
        );
        let audio = RECVONLY.replace("m=video", "m=audio");
        assert!(read_offer(sdp, audio.as_bytes()).is_ok());
    }

    #[test]
    fn refusals_say_what_to_send() {
        let text = OfferRefusal::NotSdp(Some("text/plain".into())).to_string();
        assert!(text.contains("Content-Type: application/sdp"), "{text}");
        assert!(text.contains("\"text/plain\""), "{text}");
        let text = OfferRefusal::NotSdp(None).to_string();
        assert!(text.contains("said nothing"), "{text}");
        let response = OfferRefusal::NotSdp(None).into_response();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(response.headers()[ACCEPT_POST], SDP_TYPE);
        let response = OfferRefusal::ReceivesNothing.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn session_ids_are_random_and_parsed_strictly() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), SESSION_ID_CHARS);
        assert_eq!(SessionId::parse(&a.to_string()), Some(a.clone()));
        assert_eq!(a.location(), format!("/whep/{a}"));
        for bad in [
            "",
            "short",
            "../../../../../../etc/pass",
            "aaaaaaaaaaaaaaaaaaaaa=",
            "aaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    use crate::config::Config;
    use crate::robot::Robot;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const VIEWER: &str = "viewer-token-for-the-whep-test";

    /// The robot's router with a viewer token and a quota of `burst` calls.
    fn app(burst: u32) -> axum::Router {
        let mut config = Config {
            www: std::path::PathBuf::from("/nonexistent-www"),
            ..Config::default()
        };
        config.webrtc.ice_udp = vec!["127.0.0.1:0".into()];
        config.auth = Some(crate::auth::AuthConfig {
            connect_burst: burst,
            ..crate::auth::AuthConfig::default().with_token(Role::Viewer, VIEWER)
        });
        super::super::router(Robot::start(config).unwrap())
    }

    /// `request` from 10.0.0.`client` with the viewer token when `token`; returns the
    /// status, the headers and the body.
    async fn call(
        app: &axum::Router,
        request: axum::http::request::Builder,
        body: &str,
        token: bool,
        client: u8,
    ) -> (StatusCode, HeaderMap, String) {
        let request = match token {
            true => request.header("authorization", format!("Bearer {VIEWER}")),
            false => request,
        };
        let mut request = request.body(Body::from(body.to_owned())).unwrap();
        let from = std::net::SocketAddr::from(([10, 0, 0, client], 40000));
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(from));
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (parts.status, parts.headers, text)
    }

    fn post(content_type: &str) -> axum::http::request::Builder {
        Request::post("/whep").header("content-type", content_type)
    }

    #[tokio::test]
    async fn the_routes_refuse_what_whep_does_not_allow() {
        let app = app(100);
        let (status, headers, _) = call(&app, Request::options("/whep"), "", false, 1).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers[ACCEPT_POST], SDP_TYPE);
        let (status, _, text) = call(&app, post(SDP_TYPE), RECVONLY, false, 1).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        let (status, headers, text) = call(&app, post("text/plain"), RECVONLY, true, 1).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
        assert_eq!(headers[ACCEPT_POST], SDP_TYPE);
        let (status, _, text) = call(&app, post(SDP_TYPE), "{}", true, 1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("starts with \"v=0\""), "{text}");
        // Shaped like SDP, refused by the WebRTC stack: 400 with its reason.
        let (status, _, text) = call(&app, post(SDP_TYPE), RECVONLY, true, 1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("the offer was refused"), "{text}");
        let unknown = format!("/whep/{}", SessionId::generate());
        let (status, _, _) = call(&app, Request::delete(&unknown), "", true, 1).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(&app, Request::delete("/whep/x"), "", true, 1).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(&app, Request::delete(&unknown), "", false, 1).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "DELETE needs the token");
        let (status, _, _) = call(&app, Request::get(&unknown), "", true, 1).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn whep_shares_the_connect_quota() {
        let app = app(3);
        let (status, ..) = call(&app, post(SDP_TYPE), "", true, 2).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, ..) = call(&app, Request::delete("/whep/x"), "", true, 2).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let connect = Request::post("/connect");
        let (status, ..) = call(&app, connect, "{", true, 2).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Three calls: the burst. The fourth, on either route, waits its turn.
        let (status, headers, _) = call(&app, post(SDP_TYPE), "", true, 2).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key(header::RETRY_AFTER));
        let (status, ..) = call(&app, Request::delete("/whep/x"), "", true, 2).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "DELETE counts too");
        let (status, ..) = call(&app, post(SDP_TYPE), "", true, 3).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "another address goes on");
    }

    #[tokio::test]
    async fn pages_of_configured_origins_may_use_whep_and_read_its_location() {
        let mut config = Config {
            www: std::path::PathBuf::from("/nonexistent-www"),
            cors_origins: vec!["http://player.example".into()],
            ..Config::default()
        };
        config.webrtc.ice_udp = vec!["127.0.0.1:0".into()];
        let app = super::super::router(Robot::start(config).unwrap());
        let origin = |request: axum::http::request::Builder| {
            request.header("origin", "http://player.example")
        };
        let preflight =
            origin(Request::options("/whep/x")).header("access-control-request-method", "DELETE");
        let (status, headers, _) = call(&app, preflight, "", false, 4).await;
        assert!(status.is_success(), "{status}");
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://player.example"
        );
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("DELETE"), "{methods}");
        // The page reads the session's Location from the POST's answer.
        let (_, headers, _) = call(&app, origin(post(SDP_TYPE)), "", false, 4).await;
        assert_eq!(headers["access-control-expose-headers"], "location");
    }

    #[test]
    fn sessions_of_gone_peers_are_forgotten_at_the_next_open() {
        let sessions = Sessions::default();
        let first = sessions.open(1, |_| true);
        let second = sessions.open(2, |_| true);
        assert_eq!(sessions.len(), 2);
        // Peer 1 left (its connection closed): the next session drops its entry.
        let third = sessions.open(3, |p| p != 1);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.close(&first), None);
        assert_eq!(sessions.close(&second), Some(2));
        assert_eq!(sessions.close(&second), None, "closed once");
        assert_eq!(sessions.close(&third), Some(3));
        assert!(sessions.is_empty());
    }
}

//! The browser half of [`session`](super): peer connection, data channel, offer and
//! answer, gathering, `POST`, tracks.

use super::{HttpError, PostError, Role, SessionError};
use crate::util::js_error;
use futures::channel::oneshot;
use futures::future::{self, Either};
use gloo::events::EventListener;
use gloo::timers::future::TimeoutFuture;
use shared_protocol::{DEFAULT_CHANNEL, DRIVE_CHANNEL};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcIceGatheringState,
    RtcIceServer, RtcOfferOptions, RtcPeerConnection, RtcSessionDescription,
    RtcSessionDescriptionInit, RtcTrackEvent,
};

/// An `RTCConfiguration` with one ICE server per URL (`stun:...`); no URLs means host
/// candidates only.
pub fn configuration(ice_servers: &[impl AsRef<str>]) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    let servers = js_sys::Array::new();
    for url in ice_servers {
        let server = RtcIceServer::new();
        server.set_urls(&js_sys::Array::of1(&JsValue::from_str(url.as_ref())));
        servers.push(&server);
    }
    config.set_ice_servers(&servers);
    config
}

/// A configuration with `servers`, a JS array of `RTCIceServer` dictionaries as a
/// relay hands them (see [`relay_ice_servers`]).
pub fn configuration_with(servers: &JsValue) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    config.set_ice_servers(servers);
    config
}

/// The ICE servers a relay room hands its pages: `GET ice` in the room (see
/// [`room_url`](super::room_url)), `{"iceServers": [...]}` with TURN credentials
/// minted for this page. `None` when nothing sensible answers within `timeout_ms` (a
/// robot's own server answers 404).
pub async fn relay_ice_servers(connect_url: &str, timeout_ms: u32) -> Option<JsValue> {
    let json = beside_connect(connect_url, "ice", timeout_ms).await?;
    let servers = js_sys::Reflect::get(&json, &JsValue::from_str("iceServers")).ok()?;
    js_sys::Array::is_array(&servers).then_some(servers)
}

/// Whether a robot is in the relay room the connect URL posts to: `GET status` in the
/// room (`/<room>/status`, `{"room": ..., "robot": true}`). `None` where that is not a
/// relay room (a robot's own server answers 404) or nothing answers within
/// `timeout_ms`.
pub async fn room_presence(connect_url: &str, timeout_ms: u32) -> Option<super::RoomPresence> {
    let json = beside_connect(connect_url, "status", timeout_ms).await?;
    let get = |key: &str| js_sys::Reflect::get(&json, &JsValue::from_str(key)).ok();
    Some(super::RoomPresence {
        room: get("room")?.as_string()?,
        robot: get("robot")?.as_bool()?,
    })
}

/// `GET`s `name` in the room the connect URL posts to and reads it as JSON; `None`
/// on an error status, on anything but JSON, or after `timeout_ms`.
async fn beside_connect(connect_url: &str, name: &str, timeout_ms: u32) -> Option<JsValue> {
    let window = web_sys::window()?;
    let fetch = JsFuture::from(window.fetch_with_str(&super::room_url(connect_url, name)));
    futures::pin_mut!(fetch);
    let response = match future::select(fetch, TimeoutFuture::new(timeout_ms)).await {
        Either::Left((Ok(response), _)) => response.unchecked_into::<web_sys::Response>(),
        _ => return None,
    };
    if !response.ok() {
        return None;
    }
    JsFuture::from(response.json().ok()?).await.ok()
}

/// A new peer connection with `config`.
pub fn peer_connection(config: &RtcConfiguration) -> Result<RtcPeerConnection, SessionError> {
    RtcPeerConnection::new_with_configuration(config)
        .map_err(|e| SessionError::Configuration(js_error(&e)))
}

/// Creates the `default` data channel RTCBot peers talk on.
pub fn data_channel(pc: &RtcPeerConnection, ordered: bool) -> RtcDataChannel {
    let init = RtcDataChannelInit::new();
    init.set_ordered(ordered);
    pc.create_data_channel_with_data_channel_dict(DEFAULT_CHANNEL, &init)
}

/// Creates the `drive` channel drive states go on: unordered, no retransmission, so a
/// lost packet never holds back newer states (see `shared_protocol::DRIVE_CHANNEL`).
pub fn drive_channel(pc: &RtcPeerConnection) -> RtcDataChannel {
    let init = RtcDataChannelInit::new();
    init.set_ordered(false);
    init.set_max_retransmits(0);
    pc.create_data_channel_with_data_channel_dict(DRIVE_CHANNEL, &init)
}

/// Makes the offer (with `options`, if any), sets it and returns it once ICE gathering
/// completed or `gather_timeout_ms` passed, with the candidates found by then.
pub async fn offer(
    pc: &RtcPeerConnection,
    options: Option<&RtcOfferOptions>,
    gather_timeout_ms: u32,
) -> Result<RtcSessionDescription, SessionError> {
    let promise = match options {
        Some(options) => pc.create_offer_with_rtc_offer_options(options),
        None => pc.create_offer(),
    };
    local(pc, Role::Offer, promise, gather_timeout_ms).await
}

/// Answers the remote offer already set: makes the answer, sets it and returns it
/// once gathered, like [`offer`].
pub async fn answer(
    pc: &RtcPeerConnection,
    gather_timeout_ms: u32,
) -> Result<RtcSessionDescription, SessionError> {
    local(pc, Role::Answer, pc.create_answer(), gather_timeout_ms).await
}

async fn local(
    pc: &RtcPeerConnection,
    role: Role,
    created: js_sys::Promise,
    gather_timeout_ms: u32,
) -> Result<RtcSessionDescription, SessionError> {
    let description = JsFuture::from(created)
        .await
        .map_err(|e| SessionError::Create(role, js_error(&e)))?;
    JsFuture::from(pc.set_local_description(description.unchecked_ref()))
        .await
        .map_err(|e| SessionError::SetLocal(role, js_error(&e)))?;
    gathered(pc, gather_timeout_ms).await;
    pc.local_description()
        .ok_or(SessionError::NoLocalDescription)
}

/// Applies the remote peer's description.
pub async fn set_remote(
    pc: &RtcPeerConnection,
    description: &RtcSessionDescriptionInit,
) -> Result<(), SessionError> {
    JsFuture::from(pc.set_remote_description(description))
        .await
        .map(drop)
        .map_err(|e| SessionError::SetRemote(js_error(&e)))
}

/// Resolves when ICE gathering completes, or after `timeout_ms`.
pub async fn gathered(pc: &RtcPeerConnection, timeout_ms: u32) {
    if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
        return;
    }
    let (tx, rx) = oneshot::channel::<()>();
    let tx = RefCell::new(Some(tx));
    let _listener = EventListener::new(pc, "icegatheringstatechange", {
        let pc = pc.clone();
        move |_| {
            if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    future::select(rx, TimeoutFuture::new(timeout_ms)).await;
}

/// The stream an incoming track belongs to; a track sent without a stream is wrapped
/// in a new one, so the owner always gets a stream to show.
pub fn stream_of(event: &RtcTrackEvent) -> Option<MediaStream> {
    match event.streams().get(0).dyn_into::<MediaStream>() {
        Ok(stream) => Some(stream),
        Err(_) => MediaStream::new_with_tracks(&js_sys::Array::of1(&event.track())).ok(),
    }
}

/// `POST`s `body` (an offer's JSON) to `url` as `application/json`, with `token` as
/// `Authorization: Bearer` when given; the reply's text on a 2xx. With `timeout_ms`,
/// gives up after that long.
pub async fn post_offer(
    url: &str,
    body: &str,
    token: Option<&str>,
    timeout_ms: Option<u32>,
) -> Result<String, PostError> {
    let Some(timeout_ms) = timeout_ms else {
        return fetch_text(url, body, token).await;
    };
    let fetch = fetch_text(url, body, token);
    futures::pin_mut!(fetch);
    match future::select(fetch, TimeoutFuture::new(timeout_ms)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(PostError::TimedOut),
    }
}

async fn fetch_text(url: &str, body: &str, token: Option<&str>) -> Result<String, PostError> {
    let request_error = |e: JsValue| PostError::Request(js_error(&e));
    let window = web_sys::window().ok_or(PostError::NoWindow)?;
    let headers = web_sys::Headers::new().map_err(request_error)?;
    headers
        .set("Content-Type", "application/json")
        .map_err(request_error)?;
    if let Some(token) = token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(request_error)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(body));
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(request_error)?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| PostError::Unreachable(js_error(&e)))?
        .unchecked_into();
    let broke_off = |e: JsValue| PostError::BrokeOff(js_error(&e));
    let text = JsFuture::from(response.text().map_err(broke_off)?)
        .await
        .map_err(broke_off)?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        Ok(text)
    } else {
        Err(PostError::Status(HttpError::new(
            response.status(),
            response.status_text(),
            &text,
        )))
    }
}

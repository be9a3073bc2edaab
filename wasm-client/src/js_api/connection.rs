//! `RTCConnection`: rtcbot.js's connection object, message for message, on top of
//! the shared [`session`](crate::session) core. Tracks put after connecting are
//! renegotiated over the `default` data channel by the session's
//! [`Renegotiator`](crate::session::Renegotiator), as the app does.

use super::{call, describe, err, function};
use crate::session::{self, Handled, PostError, Renegotiation, Renegotiator, SessionError};
use crate::util::js_error;
use gloo::events::EventListener;
use shared_protocol::DEFAULT_CHANNEL;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use web_sys::{
    MediaStream, MediaStreamTrack, MessageEvent, RtcConfiguration, RtcDataChannel,
    RtcDataChannelEvent, RtcDataChannelState, RtcOfferOptions, RtcPeerConnection, RtcRtpSender,
    RtcSdpType, RtcSessionDescription, RtcSessionDescriptionInit, RtcTrackEvent,
};

/// Longest wait for ICE gathering before the description is returned with the
/// candidates found so far (rtcbot.js waits forever).
const GATHER_TIMEOUT_MS: u32 = 10_000;

/// rtcbot.js's default ICE servers.
const DEFAULT_STUN: &str = "stun:stun.l.google.com:19302";

/// Which media a [`StreamHandler`] handles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// One direction of media (rtcbot.js's `ConnectionStreamHandler`).
#[derive(Default)]
struct Media {
    callback: RefCell<Option<js_sys::Function>>,
    offer_to_receive: Cell<bool>,
    incoming: RefCell<Option<MediaStream>>,
    outgoing: RefCell<Option<MediaStreamTrack>>,
    /// The sender of the outgoing track: a later `putSubscription` replaces its track.
    sender: RefCell<Option<RtcRtpSender>>,
}

pub(crate) struct Inner {
    pc: RtcPeerConnection,
    ordered: bool,
    default_channel: RefCell<Option<RtcDataChannel>>,
    /// The offerer's unordered, unreliable channel for drive states.
    drive_channel: RefCell<Option<RtcDataChannel>>,
    channels: RefCell<Vec<RtcDataChannel>>,
    queued: RefCell<Vec<String>>,
    /// The newest drive state put before any channel opened: drive states are
    /// latest-wins, so older ones are not replayed.
    pending_drive: RefCell<Option<(String, bool)>>,
    on_message: RefCell<Option<js_sys::Function>>,
    video: Media,
    audio: Media,
    has_remote: Cell<bool>,
    offered: Cell<bool>,
    closed: Cell<bool>,
    /// Made without an `rtcConfiguration`: `connect(url)` to a relay room takes the
    /// room's ICE servers (TURN with credentials minted for this page).
    room_ice: bool,
    /// Renegotiates tracks put after connecting.
    renegotiator: Renegotiator,
    /// Listeners hold an `Rc<Inner>`, like a JS peer connection keeps its handlers
    /// alive; `close()` clears them and so breaks the cycle.
    listeners: RefCell<Vec<EventListener>>,
    /// Closes the connection on `pagehide`; holds it weakly.
    page_listener: RefCell<Option<EventListener>>,
}

impl Inner {
    fn media(&self, kind: Kind) -> &Media {
        match kind {
            Kind::Video => &self.video,
            Kind::Audio => &self.audio,
        }
    }

    /// Sends `text` on the default channel, or queues it until the channel opens.
    pub(crate) fn send_text(&self, text: String) -> Result<(), JsValue> {
        if self.closed.get() {
            return Err(err("put_nowait: the connection is closed"));
        }
        let channel = self.default_channel.borrow().clone();
        match channel {
            Some(dc) if dc.ready_state() == RtcDataChannelState::Open => {
                self.flush(&dc);
                dc.send_with_str(&text)
                    .map_err(|e| err(format!("put_nowait: could not send: {}", js_error(&e))))
            }
            _ => {
                self.queued.borrow_mut().push(text);
                Ok(())
            }
        }
    }

    fn flush(&self, dc: &RtcDataChannel) {
        let queued = std::mem::take(&mut *self.queued.borrow_mut());
        for text in queued {
            if let Err(e) = dc.send_with_str(&text) {
                web_sys::console::error_2(&"rtcbot: could not send a queued message".into(), &e);
            }
        }
        self.flush_drive();
    }

    /// Sends a drive state: on the drive channel when open, else on the default
    /// channel when open, else keeps it as the one pending state (replacing an older
    /// one), sent when a channel opens.
    /// A stop (`stopped`) always goes on the reliable default channel: it is sent once
    /// and must not be lost (`seq` orders states across the two channels).
    pub(crate) fn send_drive(&self, text: String, stopped: bool) -> Result<(), JsValue> {
        if self.closed.get() {
            return Err(err("DriveSender: the connection is closed"));
        }
        *self.pending_drive.borrow_mut() = Some((text, stopped));
        self.flush_drive();
        Ok(())
    }

    fn flush_drive(&self) {
        let open = |c: &RefCell<Option<RtcDataChannel>>| {
            c.borrow()
                .clone()
                .filter(|dc| dc.ready_state() == RtcDataChannelState::Open)
        };
        let stopped = matches!(*self.pending_drive.borrow(), Some((_, true)));
        let channel = if stopped {
            open(&self.default_channel)
        } else {
            open(&self.drive_channel).or_else(|| open(&self.default_channel))
        };
        let Some(dc) = channel else {
            return;
        };
        let pending = self.pending_drive.borrow_mut().take();
        if let Some((text, _)) = pending {
            if let Err(e) = dc.send_with_str(&text) {
                web_sys::console::error_2(&"rtcbot: could not send a drive state".into(), &e);
            }
        }
    }

    /// Listens to a data channel: messages go to the subscriber; the `default` one
    /// also carries `put_nowait` and flushes the queue when it opens.
    fn adopt_channel(self: &Rc<Self>, dc: RtcDataChannel, is_default: bool) {
        let mut listeners = Vec::with_capacity(2);
        listeners.push(self.message_listener(&dc));
        if is_default {
            self.renegotiator.set_channel(&dc);
            *self.default_channel.borrow_mut() = Some(dc.clone());
            listeners.push(EventListener::new(&dc, "open", {
                let inner = Rc::clone(self);
                let dc = dc.clone();
                move |_| inner.flush(&dc)
            }));
        }
        self.channels.borrow_mut().push(dc);
        self.listeners.borrow_mut().extend(listeners);
    }

    /// Passes every message of `dc` to the subscriber.
    fn message_listener(self: &Rc<Self>, dc: &RtcDataChannel) -> EventListener {
        EventListener::new(dc, "message", {
            let inner = Rc::clone(self);
            move |event| {
                let Some(event) = event.dyn_ref::<MessageEvent>() else {
                    return;
                };
                // Renegotiation messages are the connection's own business.
                if let Some(text) = event.data().as_string() {
                    if inner.renegotiator.handle(&text) == Handled::Consumed {
                        return;
                    }
                }
                let callback = inner.on_message.borrow().clone();
                call(callback.as_ref(), &event.data());
            }
        })
    }

    /// Creates the drive channel (offerer only); a pending drive state goes out when it
    /// opens. The robot sends its latest-wins readings (stream figures, sensor values)
    /// back on it; they reach the subscriber like any message.
    fn open_drive_channel(self: &Rc<Self>) {
        let dc = session::drive_channel(&self.pc);
        let opened = EventListener::new(&dc, "open", {
            let inner = Rc::clone(self);
            move |_| inner.flush_drive()
        });
        let messages = self.message_listener(&dc);
        *self.drive_channel.borrow_mut() = Some(dc.clone());
        self.channels.borrow_mut().push(dc);
        self.listeners.borrow_mut().extend([opened, messages]);
    }

    fn on_track(&self, event: &RtcTrackEvent) {
        let track = event.track();
        let kind = match track.kind().as_str() {
            "video" => Kind::Video,
            "audio" => Kind::Audio,
            other => {
                web_sys::console::error_1(&format!("rtcbot: unknown track kind {other:?}").into());
                return;
            }
        };
        // A track sent without a stream is wrapped, so the subscriber still gets one.
        let Some(stream) = session::stream_of(event) else {
            return;
        };
        let media = self.media(kind);
        *media.incoming.borrow_mut() = Some(stream.clone());
        let callback = media.callback.borrow().clone();
        if let Some(callback) = callback {
            call(Some(&callback), &stream.into());
        }
    }

    async fn set_remote(&self, description: &JsValue) -> Result<(), JsValue> {
        let init = description_init("setRemoteDescription", description)?;
        let is_answer = init.get_type() == RtcSdpType::Answer;
        session::set_remote(&self.pc, &init)
            .await
            .map_err(|e| err(format!("setRemoteDescription: {e}")))?;
        self.has_remote.set(true);
        if is_answer {
            // Our first offer is answered: changes renegotiate from now on.
            self.renegotiator.established();
        }
        Ok(())
    }

    /// The local description made by the session core, as `{type, sdp}`.
    fn described(
        what: &str,
        local: Result<RtcSessionDescription, SessionError>,
    ) -> Result<JsValue, JsValue> {
        let local = local.map_err(|e| err(format!("{what}: {e}")))?;
        let out = js_sys::Object::new();
        set(
            &out,
            "type",
            &JsValue::from_str(sdp_type_name(local.type_())),
        );
        set(&out, "sdp", &JsValue::from_str(&local.sdp()));
        Ok(out.into())
    }

    async fn local_description(self: Rc<Self>, description: JsValue) -> Result<JsValue, JsValue> {
        const WHAT: &str = "getLocalDescription";
        if self.closed.get() {
            return Err(err(format!("{WHAT}: the connection is closed")));
        }
        let answering =
            self.has_remote.get() || !description.is_undefined() && !description.is_null();
        if answering {
            if !self.has_remote.get() {
                self.set_remote(&description).await.map_err(|e| {
                    err(format!(
                        "{WHAT}: {}",
                        js_error(&e).replace("setRemoteDescription: ", "")
                    ))
                })?;
            }
            self.renegotiator.begin();
            let answer = session::answer(&self.pc, GATHER_TIMEOUT_MS).await;
            if answer.is_ok() {
                self.renegotiator.established();
            }
            return Self::described(WHAT, answer);
        }
        if self.offered.replace(true) {
            return Err(err(format!(
                "{WHAT}: this connection already made its offer; set the answer with \
                 setRemoteDescription, or create a new RTCConnection to connect again"
            )));
        }
        self.adopt_channel(session::data_channel(&self.pc, self.ordered), true);
        self.open_drive_channel();
        let options = RtcOfferOptions::new();
        options.set_offer_to_receive_video(self.video.offer_to_receive.get());
        options.set_offer_to_receive_audio(self.audio.offer_to_receive.get());
        self.renegotiator.begin();
        let offer = session::offer(&self.pc, Some(&options), GATHER_TIMEOUT_MS).await;
        Self::described(WHAT, offer)
    }

    fn close(&self) {
        self.closed.set(true);
        // Dropping the listeners first: no close events reach the subscriber.
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        drop(listeners);
        for dc in self.channels.borrow_mut().drain(..) {
            dc.close();
        }
        self.default_channel.borrow_mut().take();
        self.drive_channel.borrow_mut().take();
        self.queued.borrow_mut().clear();
        self.pending_drive.borrow_mut().take();
        self.pc.close();
    }
}

fn set(obj: &js_sys::Object, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn sdp_type_name(kind: RtcSdpType) -> &'static str {
    match kind {
        RtcSdpType::Offer => "offer",
        RtcSdpType::Pranswer => "pranswer",
        RtcSdpType::Rollback => "rollback",
        _ => "answer",
    }
}

/// Checks a `{type, sdp}` description; the error says what was wrong with it.
fn description_init(what: &str, value: &JsValue) -> Result<RtcSessionDescriptionInit, JsValue> {
    if value.is_string() {
        return Err(err(format!(
            "{what} expects the description object {{type, sdp}}, got a string: parse the \
             robot's reply first (await response.json())"
        )));
    }
    if !value.is_object() {
        return Err(err(format!(
            "{what} expects the description object {{type, sdp}}, got {}",
            describe(value)
        )));
    }
    let kind = get(value, "type");
    let sdp = get(value, "sdp");
    if sdp.is_undefined() {
        if let Some(message) = get(value, "error").as_string() {
            return Err(err(format!(
                "{what}: the robot refused the offer: {message}"
            )));
        }
    }
    let kind = match kind.as_string().as_deref() {
        Some("offer") => RtcSdpType::Offer,
        Some("answer") => RtcSdpType::Answer,
        Some("pranswer") => RtcSdpType::Pranswer,
        Some("rollback") => RtcSdpType::Rollback,
        _ => {
            return Err(err(format!(
                "{what}: the description's type must be \"offer\", \"answer\", \"pranswer\" or \
                 \"rollback\", got {}",
                describe(&kind)
            )))
        }
    };
    let Some(sdp) = sdp.as_string() else {
        return Err(err(format!(
            "{what}: the description's sdp must be a string, got {}",
            describe(&sdp)
        )));
    };
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(&sdp);
    Ok(init)
}

/// How long `connect` waits for a relay room's ICE servers.
const ROOM_ICE_MS: u32 = 2000;

/// A connection to a robot (or to any RTCBot peer), like rtcbot.js's `RTCConnection`.
///
/// The page makes the offer with `getLocalDescription()`, `POST`s it to the robot and
/// hands the reply to `setRemoteDescription()`; messages go out with `put_nowait`
/// (strings as they are, anything else as JSON) and come in through `subscribe` as the
/// raw text, exactly as with rtcbot.js.
#[wasm_bindgen(js_name = RTCConnection)]
pub struct RtcConnection {
    inner: Rc<Inner>,
    put_nowait: JsValue,
}

#[wasm_bindgen(js_class = RTCConnection)]
impl RtcConnection {
    /// `new RTCConnection(defaultOrdered = true, rtcConfiguration)`: `rtcConfiguration`
    /// is handed to `RTCPeerConnection` (default: rtcbot.js's Google STUN server; pass
    /// `{iceServers: []}` for LAN-only).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = defaultOrdered, unchecked_param_type = "boolean | undefined")]
        default_ordered: JsValue,
        #[wasm_bindgen(js_name = rtcConfiguration, unchecked_param_type = "RTCConfiguration | undefined")]
        rtc_configuration: JsValue,
    ) -> Result<RtcConnection, JsValue> {
        let ordered = match default_ordered.as_bool() {
            Some(b) => b,
            None if default_ordered.is_undefined() || default_ordered.is_null() => true,
            None => {
                return Err(err(format!(
                    "RTCConnection: defaultOrdered must be a boolean, got {}",
                    describe(&default_ordered)
                )))
            }
        };
        let room_ice = rtc_configuration.is_undefined() || rtc_configuration.is_null();
        let config: RtcConfiguration = if room_ice {
            session::configuration(&[DEFAULT_STUN])
        } else if rtc_configuration.is_object() {
            rtc_configuration.unchecked_into()
        } else {
            return Err(err(format!(
                "RTCConnection: rtcConfiguration must be an RTCConfiguration object such as \
                 {{iceServers: []}}, got {}",
                describe(&rtc_configuration)
            )));
        };
        if js_sys::Reflect::get(&js_sys::global(), &"RTCPeerConnection".into())
            .map_or(true, |v| v.is_undefined())
        {
            return Err(err(
                "RTCConnection: this environment has no WebRTC (RTCPeerConnection is missing); \
                 use it in a browser",
            ));
        }
        let pc =
            session::peer_connection(&config).map_err(|e| err(format!("RTCConnection: {e}")))?;
        let renegotiator = Renegotiator::new(&pc, |outcome| {
            if let Renegotiation::Failed(why) = outcome {
                web_sys::console::error_1(&format!("rtcbot: renegotiation: {why}").into());
            }
        });
        let inner = Rc::new(Inner {
            pc: pc.clone(),
            ordered,
            default_channel: RefCell::new(None),
            drive_channel: RefCell::new(None),
            channels: RefCell::new(Vec::new()),
            queued: RefCell::new(Vec::new()),
            pending_drive: RefCell::new(None),
            on_message: RefCell::new(None),
            video: Media::default(),
            audio: Media::default(),
            has_remote: Cell::new(false),
            offered: Cell::new(false),
            closed: Cell::new(false),
            room_ice,
            renegotiator,
            listeners: RefCell::new(Vec::new()),
            page_listener: RefCell::new(None),
        });
        let track = EventListener::new(&pc, "track", {
            let inner = Rc::clone(&inner);
            move |event| {
                if let Some(event) = event.dyn_ref::<RtcTrackEvent>() {
                    inner.on_track(event);
                }
            }
        });
        let datachannel = EventListener::new(&pc, "datachannel", {
            let inner = Rc::clone(&inner);
            move |event| {
                if let Some(event) = event.dyn_ref::<RtcDataChannelEvent>() {
                    let dc = event.channel();
                    let is_default = dc.label() == DEFAULT_CHANNEL;
                    inner.adopt_channel(dc, is_default);
                }
            }
        });
        inner.listeners.borrow_mut().extend([track, datachannel]);
        // A page being left closes its connections while it can still send, so the
        // robot learns at once that this peer (and maybe its driver) is gone.
        if let Some(window) = web_sys::window() {
            let pagehide = EventListener::new(&window, "pagehide", {
                let inner = Rc::downgrade(&inner);
                move |_| {
                    if let Some(inner) = inner.upgrade() {
                        inner.close();
                    }
                }
            });
            // Kept apart from `listeners`, which `close()` drops: this one may be the
            // caller. It holds the connection weakly, so it makes no cycle.
            *inner.page_listener.borrow_mut() = Some(pagehide);
        }
        // `put_nowait` is a bound function, as in rtcbot.js, so that
        // `keyboard.subscribe(conn.put_nowait)` works.
        let put_nowait = Closure::<dyn Fn(JsValue) -> Result<(), JsValue>>::new({
            let inner = Rc::clone(&inner);
            move |msg: JsValue| put(&inner, msg)
        })
        .into_js_value();
        Ok(Self { inner, put_nowait })
    }

    /// Sends a message on the `default` data channel: a string as it is, any other
    /// value as `JSON.stringify` text. Messages put before the channel opens are sent
    /// when it opens. A bound function: `kb.subscribe(conn.put_nowait)` works.
    #[wasm_bindgen(getter, unchecked_return_type = "(msg: unknown) => void")]
    pub fn put_nowait(&self) -> JsValue {
        self.put_nowait.clone()
    }

    /// Sets the callback that receives each incoming message: the raw text (or binary
    /// data) as rtcbot.js does; `JSON.parse` it for objects. Replaces any previous
    /// callback; before any, messages are logged to the console like rtcbot.js.
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(msg: any) => void")] callback: JsValue,
    ) -> Result<(), JsValue> {
        let callback = function("RTCConnection.subscribe", callback)?;
        *self.inner.on_message.borrow_mut() = Some(callback);
        Ok(())
    }

    /// Without a description: creates the offer (with the `default` data channel and,
    /// when subscribed, video/audio reception) and resolves to `{type: "offer", sdp}`
    /// once ICE gathering is complete. With a remote offer: answers it.
    #[wasm_bindgen(
        js_name = getLocalDescription,
        unchecked_return_type = "Promise<SessionDescription>"
    )]
    pub fn get_local_description(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionDescription | null | undefined")]
        description: JsValue,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(inner.local_description(description))
    }

    /// Applies the remote peer's description (the robot's answer to the offer).
    #[wasm_bindgen(js_name = setRemoteDescription, unchecked_return_type = "Promise<void>")]
    pub fn set_remote_description(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionDescription")] description: JsValue,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            if inner.closed.get() {
                return Err(err("setRemoteDescription: the connection is closed"));
            }
            inner.set_remote(&description).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// For new code: the whole handshake in one call. Makes the offer, `POST`s it as
    /// JSON to `url` (default `/connect`) and applies the answer; rejects with a
    /// readable reason (HTTP status and the robot's message) when that fails. When
    /// `url` is a relay room (`https://relay/ROOM`) and the connection was made
    /// without an `rtcConfiguration`, the offer uses the room's ICE servers (`GET
    /// ROOM/ice`: STUN, and TURN with credentials minted for this page).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | undefined")] url: JsValue,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let url = match url.as_string() {
                Some(url) => url,
                None if url.is_undefined() => "/connect".to_owned(),
                None => {
                    return Err(err(format!(
                        "RTCConnection.connect expects the signaling URL as a string, got {}",
                        describe(&url)
                    )))
                }
            };
            if inner.room_ice && !inner.offered.get() && session::may_be_room(&url) {
                if let Some(servers) = session::relay_ice_servers(&url, ROOM_ICE_MS).await {
                    inner
                        .pc
                        .set_configuration_with_configuration(&session::configuration_with(
                            &servers,
                        ))
                        .map_err(|e| {
                            err(format!(
                                "RTCConnection.connect: the room's ICE servers: {}",
                                js_error(&e)
                            ))
                        })?;
                }
            }
            let offer = Rc::clone(&inner)
                .local_description(JsValue::UNDEFINED)
                .await?;
            let body = js_sys::JSON::stringify(&offer).map_err(|e| err(js_error(&e)))?;
            let answer = post_json(&url, &String::from(body)).await?;
            inner.set_remote(&answer).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Closes the data channels and the peer connection. Later `put_nowait` calls throw.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> js_sys::Promise {
        self.inner.close();
        js_sys::Promise::resolve(&JsValue::UNDEFINED)
    }

    /// Video: `subscribe(cb)` gets the robot's `MediaStream` (call before
    /// `getLocalDescription`); `putSubscription(track)` sends a video track.
    #[wasm_bindgen(getter)]
    pub fn video(&self) -> StreamHandler {
        StreamHandler {
            inner: Rc::clone(&self.inner),
            kind: Kind::Video,
        }
    }

    /// Audio, like [`RtcConnection::video`].
    #[wasm_bindgen(getter)]
    pub fn audio(&self) -> StreamHandler {
        StreamHandler {
            inner: Rc::clone(&self.inner),
            kind: Kind::Audio,
        }
    }

    /// Renegotiations over the data channel completed so far (tracks put after
    /// connecting).
    #[wasm_bindgen(getter)]
    pub fn renegotiations(&self) -> u32 {
        self.inner.renegotiator.completed()
    }

    /// The underlying `RTCPeerConnection`, for anything this API does not cover.
    #[wasm_bindgen(getter, js_name = peerConnection)]
    pub fn peer_connection(&self) -> RtcPeerConnection {
        self.inner.pc.clone()
    }
}

fn put(inner: &Inner, msg: JsValue) -> Result<(), JsValue> {
    let text = match msg.as_string() {
        Some(text) => text,
        None => {
            let json = js_sys::JSON::stringify(&msg).map_err(|e| {
                err(format!(
                    "put_nowait: the message cannot be sent as JSON: {}",
                    js_error(&e)
                ))
            })?;
            JsValue::from(json).as_string().ok_or_else(|| {
                err(format!(
                    "put_nowait: {} cannot be sent as JSON; send a string or a \
                     JSON-serialisable value",
                    describe(&msg)
                ))
            })?
        }
    };
    inner.send_text(text)
}

/// `POST`s `body` as JSON through the session core; the parsed JSON reply, or a
/// readable error naming `url`.
async fn post_json(url: &str, body: &str) -> Result<JsValue, JsValue> {
    const WHAT: &str = "RTCConnection.connect";
    let text = session::post_offer(url, body, None, None)
        .await
        .map_err(|e| {
            err(match e {
                PostError::NoWindow => format!("{WHAT} needs a browser window"),
                PostError::Request(message) => format!("{WHAT}: bad URL {url:?}: {message}"),
                PostError::Unreachable(message) => {
                    format!("{WHAT}: cannot reach {url} ({message})")
                }
                PostError::BrokeOff(message) => format!("{WHAT}: the reply broke off ({message})"),
                // An empty body leaves nothing after the status (the status text stands
                // in for HTML pages only).
                PostError::Status(http) => {
                    let detail = if http.body.is_empty() {
                        ""
                    } else {
                        http.detail()
                    };
                    format!("{WHAT}: {url} answered HTTP {} {detail}", http.status)
                        .trim_end()
                        .to_owned()
                }
                PostError::TimedOut => format!("{WHAT}: {url} did not answer in time"),
            })
        })?;
    js_sys::JSON::parse(&text).map_err(|_| {
        let start: String = text.chars().take(60).collect();
        err(format!(
            "{WHAT}: {url} did not answer with JSON (got {start:?})"
        ))
    })
}

/// `conn.video` / `conn.audio` (rtcbot.js's `ConnectionStreamHandler`).
#[wasm_bindgen]
pub struct StreamHandler {
    inner: Rc<Inner>,
    kind: Kind,
}

#[wasm_bindgen]
impl StreamHandler {
    /// Asks to receive this kind of media and sets the callback that gets the remote
    /// `MediaStream` when it arrives (once per incoming track, as in rtcbot.js). Call
    /// it before `getLocalDescription()`. A callback set after the stream arrived is
    /// called with it at once.
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(stream: MediaStream) => void")] callback: JsValue,
    ) -> Result<(), JsValue> {
        let callback = function(&format!("{}.subscribe", self.kind.name()), callback)?;
        let media = self.inner.media(self.kind);
        media.offer_to_receive.set(true);
        *media.callback.borrow_mut() = Some(callback.clone());
        let incoming = media.incoming.borrow().clone();
        if let Some(stream) = incoming {
            call(Some(&callback), &stream.into());
        }
        Ok(())
    }

    /// Sends a local track (from `getUserMedia`) to the remote peer. Before connecting
    /// it goes into the offer; once connected, the connection renegotiates over the
    /// `default` data channel (the robot answers there). A second call replaces the
    /// track sent, without renegotiating.
    #[wasm_bindgen(js_name = putSubscription)]
    pub fn put_subscription(
        &self,
        #[wasm_bindgen(unchecked_param_type = "MediaStreamTrack")] track: JsValue,
    ) -> Result<(), JsValue> {
        let what = format!("{}.putSubscription", self.kind.name());
        let track: MediaStreamTrack = track.dyn_into().map_err(|v| {
            err(format!(
                "{what} expects a MediaStreamTrack, got {}",
                describe(&v)
            ))
        })?;
        if track.kind() != self.kind.name() {
            return Err(err(format!(
                "{what} expects a {} track, got a {} track",
                self.kind.name(),
                track.kind()
            )));
        }
        if self.inner.closed.get() {
            return Err(err(format!("{what}: the connection is closed")));
        }
        let media = self.inner.media(self.kind);
        let sender = media.sender.borrow().clone();
        match sender {
            Some(sender) => {
                let promise = sender.replace_track(Some(&track));
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = wasm_bindgen_futures::JsFuture::from(promise).await {
                        web_sys::console::error_2(
                            &"rtcbot: could not replace the track".into(),
                            &e,
                        );
                    }
                });
            }
            None => {
                let stream = MediaStream::new_with_tracks(&js_sys::Array::of1(&track))?;
                let sender = self.inner.pc.add_track_0(&track, &stream);
                *media.sender.borrow_mut() = Some(sender);
            }
        }
        *media.outgoing.borrow_mut() = Some(track);
        Ok(())
    }

    /// The remote stream once it arrived, else `undefined`.
    #[wasm_bindgen(getter, js_name = incomingStream)]
    pub fn incoming_stream(&self) -> Option<MediaStream> {
        self.inner.media(self.kind).incoming.borrow().clone()
    }

    /// The track given to `putSubscription`, else `undefined`.
    #[wasm_bindgen(getter, js_name = outgoingStream)]
    pub fn outgoing_stream(&self) -> Option<MediaStreamTrack> {
        self.inner.media(self.kind).outgoing.borrow().clone()
    }
}

/// Gives [`super::DriveSender`] the connection's sending side.
impl RtcConnection {
    pub(crate) fn inner(&self) -> Rc<Inner> {
        Rc::clone(&self.inner)
    }
}

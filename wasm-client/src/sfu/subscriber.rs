//! One subscription to the robot's feed in a Janus VideoRoom, in the browser.
//!
//! A [`Subscriber`] owns its Janus session (create, attach, `join` as a subscriber,
//! `start` with the answer, the long poll, `destroy`), all over `fetch` with the
//! messages of [`janus`](super::janus), and its own `RTCPeerConnection` (the page's
//! ICE configuration; Janus's offer answered receive-only, non-trickle: the answer
//! goes once gathering completed, as [`session`] does it). What arrives becomes one
//! `MediaStream` for the video and one for the sound. The long poll also keeps the
//! session alive (Janus ends a poll with a `keepalive` after 30 s; a session without
//! requests for 60 s is dropped). A hangup, the feed leaving, Janus going away, the
//! connection failing: everything that ends the subscription ends it once, as
//! [`SubscriberEvent::Ended`] with a reason, after which it is closed.
//! [`Subscriber::close`] ends it quietly (destroy, `pc.close()`).

use super::janus::{self, Reply};
use crate::connection::{video_stats, VideoStats};
use crate::json::Parsed;
use crate::session;
use crate::util::js_error;
use futures::future::{self, AbortHandle, Abortable, Either};
use gloo::events::EventListener;
use gloo::timers::callback::Interval;
use gloo::timers::future::TimeoutFuture;
use shared_protocol::SfuWatch;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    AbortController, MediaStream, RtcConfiguration, RtcPeerConnection, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

/// Longest wait for a request's reply (and for the event an `ack` promised).
const REQUEST_TIMEOUT_MS: u32 = 10_000;
/// Longest wait for one long poll (Janus answers one within 30 s).
const POLL_TIMEOUT_MS: u32 = 45_000;
/// Longest wait for ICE gathering before answering.
const GATHER_TIMEOUT_MS: u32 = 5000;
/// How long the connection may stay `disconnected`.
const DISCONNECTED_GRACE_MS: u32 = 3000;
/// `getStats` period (the first decoded frame is when the video plays).
const STATS_MS: u32 = 500;

/// What a subscription tells its owner.
#[derive(Debug, Clone)]
pub enum SubscriberEvent {
    /// The feed's video, as a stream of its own.
    Video(MediaStream),
    /// The feed's sound, as a stream of its own.
    Audio(MediaStream),
    /// The first video frame was decoded.
    Playing,
    /// Received-video figures, every half second while connected.
    Stats(VideoStats),
    /// The subscription ended (it is closed): why.
    Ended(String),
}

/// One subscription (see the module doc). Dropping it does not end it: call
/// [`Subscriber::close`].
pub struct Subscriber {
    inner: Rc<Inner>,
}

struct Inner {
    on_event: Box<dyn Fn(SubscriberEvent)>,
    /// Ended or closed: nothing more is said or done.
    done: Cell<bool>,
    session_url: RefCell<Option<String>>,
    pc: RefCell<Option<RtcPeerConnection>>,
    /// Aborts the requests in flight (the long poll among them).
    fetches: AbortController,
    task: RefCell<Option<AbortHandle>>,
    listeners: RefCell<Vec<EventListener>>,
    timer: RefCell<Option<Interval>>,
}

impl Subscriber {
    /// Subscribes to `watch`'s feed with the ICE `configuration`; `on_event` hears
    /// what happens until it ends or [`Subscriber::close`].
    pub fn start(
        watch: SfuWatch,
        configuration: RtcConfiguration,
        on_event: impl Fn(SubscriberEvent) + 'static,
    ) -> Result<Self, String> {
        let inner = Rc::new(Inner {
            on_event: Box::new(on_event),
            done: Cell::new(false),
            session_url: RefCell::new(None),
            pc: RefCell::new(None),
            fetches: AbortController::new().map_err(|e| js_error(&e))?,
            task: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            timer: RefCell::new(None),
        });
        let (handle, registration) = AbortHandle::new_pair();
        inner.task.replace(Some(handle));
        let task = Abortable::new(
            run(Rc::downgrade(&inner), watch, configuration),
            registration,
        );
        let weak = Rc::downgrade(&inner);
        spawn_local(async move {
            if let Ok(reason) = task.await {
                if let Some(inner) = weak.upgrade() {
                    inner.finish(Some(reason));
                }
            }
        });
        Ok(Self { inner })
    }

    /// Ends the subscription without an event: Janus's session is destroyed, the
    /// peer connection closed.
    pub fn close(&self) {
        self.inner.finish(None);
    }
}

impl Inner {
    fn emit(&self, event: SubscriberEvent) {
        if !self.done.get() {
            (self.on_event)(event);
        }
    }

    /// Ends it once: says why (unless closed), stops everything, destroys the session.
    fn finish(&self, reason: Option<String>) {
        if self.done.get() {
            return;
        }
        if let Some(reason) = reason {
            (self.on_event)(SubscriberEvent::Ended(reason));
        }
        self.done.set(true);
        if let Some(task) = self.task.borrow_mut().take() {
            task.abort();
        }
        self.fetches.abort();
        self.listeners.borrow_mut().clear();
        self.timer.borrow_mut().take();
        if let Some(pc) = self.pc.borrow_mut().take() {
            pc.close();
        }
        if let Some(url) = self.session_url.borrow_mut().take() {
            // Best effort, on a fetch of its own: Janus may be gone already.
            spawn_local(async move {
                let _ = fetch_json(&url, Some(&janus::destroy(&transaction())), None).await;
            });
        }
    }
}

/// A new transaction id.
fn transaction() -> String {
    let n = js_sys::Math::random() * 9_007_199_254_740_991.0;
    format!("{:x}", n as u64)
}

/// `POST`s `body` to `url` (or `GET`s it) and reads the JSON reply, giving up after
/// `timeout_ms` or when `signal` aborts. The body goes as `text/plain` (Janus reads
/// it whatever its type), so the request needs no CORS preflight.
async fn fetch_json(
    url: &str,
    body: Option<&str>,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<JsValue, String> {
    let window = web_sys::window().ok_or("no browser window")?;
    let init = web_sys::RequestInit::new();
    match body {
        Some(body) => {
            init.set_method("POST");
            init.set_body(&JsValue::from_str(body));
        }
        None => init.set_method("GET"),
    }
    init.set_signal(signal);
    let verb = if body.is_some() { "POST" } else { "GET" };
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("cannot reach the SFU ({verb} {url}: {})", js_error(&e)))?
        .unchecked_into();
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(|e| js_error(&e))?)
        .await
        .map_err(|e| format!("the SFU's reply broke off ({})", js_error(&e)))?
        .as_string()
        .unwrap_or_default();
    match JsValue::parse(&text) {
        Some(value) if value.is_object() => Ok(value),
        _ => Err(format!(
            "{verb} {url} answered HTTP {status}, not Janus's JSON: {}",
            text.chars().take(120).collect::<String>()
        )),
    }
}

/// [`fetch_json`] on the subscription's signal, within `timeout_ms`.
async fn call(
    inner: &Weak<Inner>,
    url: &str,
    body: Option<&str>,
    timeout_ms: u32,
) -> Result<JsValue, String> {
    let signal = inner.upgrade().ok_or("closed")?.fetches.signal();
    let fetch = fetch_json(url, body, Some(&signal));
    futures::pin_mut!(fetch);
    match future::select(fetch, TimeoutFuture::new(timeout_ms)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(format!("the SFU did not answer in time ({url})")),
    }
}

/// A request's synchronous reply, read.
async fn request(inner: &Weak<Inner>, url: &str, body: &str) -> Result<Reply<JsValue>, String> {
    let reply = call(inner, url, Some(body), REQUEST_TIMEOUT_MS).await?;
    janus::parse(&reply).map_err(|e| e.to_string())
}

/// The session's next event, from a long poll.
async fn next_event(inner: &Weak<Inner>, session_url: &str) -> Result<JsValue, String> {
    let event = call(
        inner,
        &format!("{session_url}?maxev=1"),
        None,
        POLL_TIMEOUT_MS,
    )
    .await?;
    // A core error on the poll: the session is gone.
    match janus::parse(&event) {
        Err(e) if e.session_gone() => Err(e.to_string()),
        _ => Ok(event),
    }
}

/// The whole subscription; returns why it ended.
async fn run(inner: Weak<Inner>, watch: SfuWatch, configuration: RtcConfiguration) -> String {
    match subscribe(&inner, &watch, configuration).await {
        Ok(never) => match never {},
        Err(reason) => reason,
    }
}

async fn subscribe(
    inner: &Weak<Inner>,
    watch: &SfuWatch,
    configuration: RtcConfiguration,
) -> Result<std::convert::Infallible, String> {
    let base = watch.url.trim_end_matches('/');
    let session = match request(inner, base, &janus::create(&transaction())).await? {
        Reply::Created(id) => id,
        _ => return Err("Janus answered create with no session".to_owned()),
    };
    let session_url = format!("{base}/{session}");
    inner
        .upgrade()
        .ok_or("closed")?
        .session_url
        .replace(Some(session_url.clone()));
    let handle = match request(inner, &session_url, &janus::attach(&transaction())).await? {
        Reply::Created(id) => id,
        _ => return Err("Janus answered attach with no handle".to_owned()),
    };
    let handle_url = format!("{session_url}/{handle}");

    // Join as a subscriber: Janus's offer comes as the event for this transaction.
    let joining = transaction();
    let body = janus::subscribe(&joining, watch.room, watch.feed, watch.pin.as_deref());
    let offered = match request(inner, &handle_url, &body).await? {
        Reply::Event { jsep, .. } => jsep,
        _ => None,
    };
    let waited = async {
        if let Some(offer) = offered {
            return Ok(offer);
        }
        loop {
            let event = next_event(inner, &session_url).await?;
            let ours = janus::transaction(&event).as_deref() == Some(joining.as_str());
            match janus::parse(&event) {
                Err(e) if ours => return Err(format!("the SFU refused the subscription: {e}")),
                Ok(Reply::Event { jsep, .. }) if ours => {
                    return jsep
                        .ok_or_else(|| "the SFU's subscription came without an offer".to_owned());
                }
                Ok(Reply::Hangup(why)) => return Err(format!("the SFU hung up ({why})")),
                _ => {}
            }
        }
    };
    futures::pin_mut!(waited);
    let (kind, sdp) = match future::select(waited, TimeoutFuture::new(REQUEST_TIMEOUT_MS)).await {
        Either::Left((offer, _)) => offer?,
        Either::Right(_) => return Err("the SFU sent no offer in time".to_owned()),
    };
    if kind != "offer" {
        return Err(format!("the SFU sent an {kind}, not an offer"));
    }

    // Answer it, receive only, once gathered.
    let pc = session::peer_connection(&configuration).map_err(|e| e.to_string())?;
    watch_peer(inner, &pc)?;
    let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
    init.set_sdp(&sdp);
    session::set_remote(&pc, &init)
        .await
        .map_err(|e| e.to_string())?;
    let answer = session::answer(&pc, GATHER_TIMEOUT_MS)
        .await
        .map_err(|e| e.to_string())?;
    let starting = transaction();
    let body = janus::start(&starting, watch.room, &answer.sdp());
    request(inner, &handle_url, &body).await?;

    // Then only the events: the start's answer, hangups, the feed leaving.
    loop {
        let event = next_event(inner, &session_url).await?;
        let ours = janus::transaction(&event).as_deref() == Some(starting.as_str());
        match janus::parse(&event) {
            Err(e) if ours => return Err(format!("the SFU refused the answer: {e}")),
            Err(_) => {}
            Ok(Reply::Hangup(why)) => return Err(format!("the SFU hung up ({why})")),
            Ok(Reply::Event {
                data: Some(data), ..
            }) if janus::feed_gone(&data, watch.feed) => {
                return Err("the robot left the SFU's room".to_owned());
            }
            Ok(Reply::Event { jsep: Some(_), .. }) => {
                return Err("the SFU renegotiated the stream".to_owned());
            }
            Ok(_) => {}
        }
    }
}

/// Keeps the peer connection in the subscription, with its listeners: tracks,
/// connection state, figures.
fn watch_peer(inner: &Weak<Inner>, pc: &RtcPeerConnection) -> Result<(), String> {
    let strong = inner.upgrade().ok_or("closed")?;
    strong.pc.replace(Some(pc.clone()));
    let mut listeners = strong.listeners.borrow_mut();
    listeners.push(EventListener::new(pc, "track", {
        let inner = inner.clone();
        move |event| {
            let (Some(inner), Some(event)) = (inner.upgrade(), event.dyn_ref::<RtcTrackEvent>())
            else {
                return;
            };
            let track = event.track();
            let Ok(stream) = MediaStream::new_with_tracks(&js_sys::Array::of1(&track)) else {
                return;
            };
            inner.emit(if track.kind() == "audio" {
                SubscriberEvent::Audio(stream)
            } else {
                SubscriberEvent::Video(stream)
            });
        }
    }));
    listeners.push(EventListener::new(pc, "connectionstatechange", {
        let inner = inner.clone();
        let pc = pc.clone();
        move |_| match pc.connection_state() {
            RtcPeerConnectionState::Failed => {
                if let Some(inner) = inner.upgrade() {
                    inner.finish(Some("the connection to the SFU failed".to_owned()));
                }
            }
            RtcPeerConnectionState::Disconnected => {
                let (inner, pc) = (inner.clone(), pc.clone());
                spawn_local(async move {
                    TimeoutFuture::new(DISCONNECTED_GRACE_MS).await;
                    if pc.connection_state() == RtcPeerConnectionState::Disconnected {
                        if let Some(inner) = inner.upgrade() {
                            inner.finish(Some("lost the connection to the SFU".to_owned()));
                        }
                    }
                });
            }
            _ => {}
        }
    }));
    drop(listeners);
    let prev = Rc::new(Cell::new(None));
    let playing = Rc::new(Cell::new(false));
    let timer = Interval::new(STATS_MS, {
        let inner = inner.clone();
        let pc = pc.clone();
        move || {
            let (inner, pc, prev, playing) = (
                inner.clone(),
                pc.clone(),
                Rc::clone(&prev),
                Rc::clone(&playing),
            );
            spawn_local(async move {
                let Some(stats) = video_stats(&pc, &prev).await else {
                    return;
                };
                let Some(inner) = inner.upgrade() else { return };
                if stats.frames_decoded > 0 && !playing.replace(true) {
                    inner.emit(SubscriberEvent::Playing);
                }
                inner.emit(SubscriberEvent::Stats(stats));
            });
        }
    });
    strong.timer.replace(Some(timer));
    Ok(())
}

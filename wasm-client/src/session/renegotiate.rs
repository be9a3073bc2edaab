//! The browser half of [`negotiation`](super::negotiation): renegotiating a live
//! session over its `default` data channel, as the polite peer.
//!
//! A [`Renegotiator`] listens to `negotiationneeded`, makes and sends offers as
//! `{"type":"negotiate",...}` messages, applies the robot's answers, answers the
//! robot's offers (rolling its own back on a collision) and gives up an offer the
//! robot refuses or leaves unanswered. Its owner tells it when the first offer is made
//! ([`Renegotiator::begin`]), when its answer is applied
//! ([`Renegotiator::established`]) and which channel to use
//! ([`Renegotiator::set_channel`]), and passes it every message from the robot
//! ([`Renegotiator::handle`]). Listeners hold it weakly: dropping it stops it.

use super::negotiation::{is_refusal, Negotiation, Next, Remote};
use super::{answer, offer, set_remote};
use crate::util::js_error;
use crate::wire::{self, RobotMessage};
use gloo::events::EventListener;
use gloo::timers::future::TimeoutFuture;
use shared_protocol::SdpType;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    RtcDataChannel, RtcDataChannelState, RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit,
    RtcSignalingState,
};

/// Longest wait for gathering on a renegotiation (the transport is the same one, so
/// normally nothing is gathered).
const GATHER_TIMEOUT_MS: u32 = 3000;
/// Longest wait for the robot's answer before the offer is rolled back.
const ANSWER_TIMEOUT_MS: u32 = 10_000;
/// Pause after a failed renegotiation before the change is offered again.
const RETRY_MS: u32 = 5000;

/// What a renegotiation came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Renegotiation {
    /// The robot's answer to our offer is applied; the count of those so far.
    Done(u32),
    /// The robot's offer is answered.
    Answered,
    /// An offer was given up (refused, not answered in time, or the browser failed).
    Failed(String),
}

/// What [`Renegotiator::handle`] made of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A renegotiation message, dealt with: nobody else needs it.
    Consumed,
    /// Not one (or an `error` that may also be a refusal): pass it on.
    PassOn,
}

struct State {
    pc: RtcPeerConnection,
    channel: RefCell<Option<RtcDataChannel>>,
    logic: RefCell<Negotiation>,
    on_event: Box<dyn Fn(Renegotiation)>,
    listeners: RefCell<Vec<EventListener>>,
}

/// Renegotiates one peer connection over its data channel (see the module doc).
pub struct Renegotiator {
    state: Rc<State>,
}

impl Renegotiator {
    /// Starts listening to `pc`'s `negotiationneeded`; `on_event` hears how each
    /// renegotiation ends.
    pub fn new(pc: &RtcPeerConnection, on_event: impl Fn(Renegotiation) + 'static) -> Self {
        let state = Rc::new(State {
            pc: pc.clone(),
            channel: RefCell::new(None),
            logic: RefCell::new(Negotiation::new()),
            on_event: Box::new(on_event),
            listeners: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&state);
        let needed = EventListener::new(pc, "negotiationneeded", move |_| {
            if let Some(state) = weak.upgrade() {
                let ready = state.ready();
                let next = state.logic.borrow_mut().needed(ready);
                state.act(next);
            }
        });
        state.listeners.borrow_mut().push(needed);
        Self { state }
    }

    /// The first offer is being made: changes from now on wait for the session.
    pub fn begin(&self) {
        self.state.logic.borrow_mut().begin();
    }

    /// The first offer's answer is applied: changes are renegotiated from now on.
    pub fn established(&self) {
        self.state.logic.borrow_mut().established();
        self.state.resume();
    }

    /// The channel renegotiation messages go on (the `default` one); a change that
    /// waited for it goes out when it opens.
    pub fn set_channel(&self, dc: &RtcDataChannel) {
        *self.state.channel.borrow_mut() = Some(dc.clone());
        let weak = Rc::downgrade(&self.state);
        let open = EventListener::new(dc, "open", move |_| {
            if let Some(state) = weak.upgrade() {
                state.resume();
            }
        });
        self.state.listeners.borrow_mut().push(open);
    }

    /// The page changed its media: a change held back by a failure goes out now.
    pub fn retry(&self) {
        let ready = self.state.ready();
        let next = self.state.logic.borrow_mut().retry(ready);
        self.state.act(next);
    }

    /// Renegotiations completed so far.
    pub fn completed(&self) -> u32 {
        self.state.logic.borrow().completed()
    }

    /// Deals with a message from the robot if it is about renegotiation.
    pub fn handle(&self, text: &str) -> Handled {
        // Cheap tests first: most messages are telemetry.
        let negotiate = text.contains("\"negotiate\"");
        if !negotiate && !text.contains("\"error\"") {
            return Handled::PassOn;
        }
        match RobotMessage::parse(text) {
            Ok(RobotMessage::Negotiate(description)) => {
                State::remote(&self.state, description.kind, description.sdp);
                Handled::Consumed
            }
            Ok(RobotMessage::Error(message)) => {
                if is_refusal(&message) {
                    let refused = self.state.logic.borrow_mut().refused();
                    if let Some(_attempt) = refused {
                        State::give_up(&self.state, format!("the robot refused: {message}"));
                    }
                }
                Handled::PassOn
            }
            Err(e) if negotiate => {
                let refused = self.state.logic.borrow_mut().refused();
                if refused.is_some() {
                    State::give_up(&self.state, e);
                }
                Handled::Consumed
            }
            _ => Handled::PassOn,
        }
    }
}

impl State {
    /// The channel is open and the signaling state stable.
    fn ready(&self) -> bool {
        let open = self
            .channel
            .borrow()
            .as_ref()
            .is_some_and(|dc| dc.ready_state() == RtcDataChannelState::Open);
        open && self.pc.signaling_state() == RtcSignalingState::Stable
    }

    fn resume(self: &Rc<Self>) {
        let ready = self.ready();
        let next = self.logic.borrow_mut().resume(ready);
        self.act(next);
    }

    fn act(self: &Rc<Self>, next: Next) {
        if let Next::Offer { attempt } = next {
            spawn_local(Self::make_offer(Rc::downgrade(self), attempt));
        }
    }

    fn send(&self, text: &str) -> Result<(), String> {
        match self.channel.borrow().as_ref() {
            Some(dc) if dc.ready_state() == RtcDataChannelState::Open => {
                dc.send_with_str(text).map_err(|e| js_error(&e))
            }
            _ => Err("the data channel is not open".to_owned()),
        }
    }

    async fn make_offer(weak: Weak<Self>, attempt: u32) {
        let Some(state) = weak.upgrade() else { return };
        let made = offer(&state.pc, None, GATHER_TIMEOUT_MS).await;
        let sent = match made {
            Ok(description) => {
                if !state.logic.borrow_mut().offer_ready(attempt) {
                    // A collision rolled it back meanwhile.
                    return;
                }
                state.send(&wire::negotiate(SdpType::Offer, &description.sdp()))
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = sent {
            if state.logic.borrow_mut().offer_failed(attempt) {
                Self::give_up(&state, format!("renegotiation failed: {why}"));
            }
            return;
        }
        drop(state);
        TimeoutFuture::new(ANSWER_TIMEOUT_MS).await;
        let Some(state) = weak.upgrade() else { return };
        if state.logic.borrow_mut().offer_failed(attempt) {
            Self::give_up(&state, "the robot did not answer the renegotiation".into());
        }
    }

    /// Rolls back the offer just given up and reports why.
    fn give_up(self: &Rc<Self>, why: String) {
        let state = Rc::clone(self);
        spawn_local(async move {
            if state.pc.signaling_state() == RtcSignalingState::HaveLocalOffer {
                let rollback = RtcSessionDescriptionInit::new(RtcSdpType::Rollback);
                let _ = JsFuture::from(state.pc.set_local_description(&rollback)).await;
            }
            (state.on_event)(Renegotiation::Failed(why));
            let weak = Rc::downgrade(&state);
            drop(state);
            TimeoutFuture::new(RETRY_MS).await;
            if let Some(state) = weak.upgrade() {
                let ready = state.ready();
                let next = state.logic.borrow_mut().retry(ready);
                state.act(next);
            }
        });
    }

    fn remote(self: &Rc<Self>, kind: SdpType, sdp: String) {
        let stable = self.pc.signaling_state() == RtcSignalingState::Stable;
        let decision = self.logic.borrow_mut().remote(kind, stable);
        let state = Rc::clone(self);
        spawn_local(async move {
            let result = match decision {
                Remote::Ignore => return,
                Remote::ApplyAnswer { attempt } => {
                    let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
                    init.set_sdp(&sdp);
                    match set_remote(&state.pc, &init).await {
                        Ok(()) => {
                            let done = state.logic.borrow_mut().answer_applied(attempt);
                            if done {
                                let count = state.logic.borrow().completed();
                                (state.on_event)(Renegotiation::Done(count));
                            }
                            Ok(())
                        }
                        Err(e) => {
                            if state.logic.borrow_mut().offer_failed(attempt) {
                                Self::give_up(&state, format!("renegotiation failed: {e}"));
                            }
                            return;
                        }
                    }
                }
                Remote::AcceptOffer { rollback } => state.accept(rollback, &sdp).await,
            };
            match result {
                Ok(()) => state.resume(),
                Err(why) => (state.on_event)(Renegotiation::Failed(why)),
            }
        });
    }

    /// Applies the robot's offer (after rolling ours back) and answers it.
    async fn accept(&self, rollback: bool, sdp: &str) -> Result<(), String> {
        if rollback && self.pc.signaling_state() == RtcSignalingState::HaveLocalOffer {
            let init = RtcSessionDescriptionInit::new(RtcSdpType::Rollback);
            JsFuture::from(self.pc.set_local_description(&init))
                .await
                .map_err(|e| format!("could not roll back: {}", js_error(&e)))?;
        }
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
        init.set_sdp(sdp);
        set_remote(&self.pc, &init)
            .await
            .map_err(|e| e.to_string())?;
        let description = answer(&self.pc, GATHER_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string())?;
        self.send(&wire::negotiate(SdpType::Answer, &description.sdp()))?;
        (self.on_event)(Renegotiation::Answered);
        Ok(())
    }
}

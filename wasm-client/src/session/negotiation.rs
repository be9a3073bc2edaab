//! The polite side of perfect negotiation, as pure decisions: when to make an offer,
//! what to do with a description the robot sends, when a renegotiation finished.
//!
//! The first offer goes by `POST /connect`; once that session is up (its answer
//! applied, the `default` data channel open), every change of media (a track added or
//! removed, a direction changed) is renegotiated over the data channel with
//! `{"type":"negotiate",...}` messages. The browser is the polite peer: on an offer
//! collision it rolls its own offer back and accepts the robot's. One offer is in
//! flight at a time; a change asked for meanwhile waits and goes out once the
//! connection is stable again.
//!
//! [`Negotiation`] holds only flags and counters; the browser half
//! ([`Renegotiator`](super::Renegotiator)) asks it what to do and does it.

use shared_protocol::SdpType;

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// No offer yet: whatever changes goes into the first offer.
    #[default]
    Before,
    /// The first offer is made, its answer not applied yet. The browser asks again
    /// for what the first offer missed once the answer brings it back to `stable`,
    /// so a request now is not kept (keeping it would renegotiate for nothing).
    Starting,
    /// The session is up: changes are renegotiated over the data channel.
    Established,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Make, set and send an offer; `attempt` identifies it in later calls.
    Offer {
        /// This offer's number.
        attempt: u32,
    },
    /// Nothing now.
    Wait,
}

/// What to do with a description the robot sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// The robot's offer: accept it (the polite peer always does) and answer;
    /// `rollback` first when it collided with an offer of ours.
    AcceptOffer {
        /// Roll the local offer back before applying the robot's.
        rollback: bool,
    },
    /// The answer to our offer `attempt`: apply it, then call
    /// [`Negotiation::answer_applied`].
    ApplyAnswer {
        /// The offer it answers.
        attempt: u32,
    },
    /// An answer to no offer of ours (a late one, after a rollback): drop it.
    Ignore,
}

/// The polite peer's negotiation state (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiation {
    phase: Phase,
    /// Between deciding to offer and sending the offer.
    making_offer: bool,
    /// The offer went out; its answer has not come.
    awaiting_answer: bool,
    /// A change waits for the current renegotiation to finish.
    pending: bool,
    /// Number of the latest offer decided on.
    attempt: u32,
    /// Renegotiations whose answer was applied.
    completed: u32,
    /// An offer failed: the browser's repeated requests wait for
    /// [`Negotiation::retry`] instead of looping on the same failure.
    held: bool,
}

impl Negotiation {
    /// A session before its first offer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first offer is being made (it carries every change made before).
    pub fn begin(&mut self) {
        if self.phase == Phase::Before {
            self.phase = Phase::Starting;
        }
    }

    /// The first offer's answer is applied; call [`Negotiation::resume`] once the
    /// data channel is open too.
    pub fn established(&mut self) {
        self.phase = Phase::Established;
    }

    /// Whether the session is up (the first answer applied).
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// An offer is being made or awaits its answer.
    pub fn busy(&self) -> bool {
        self.making_offer || self.awaiting_answer
    }

    /// A change is waiting to be offered.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Renegotiations completed (answers to our offers applied).
    pub fn completed(&self) -> u32 {
        self.completed
    }

    /// The browser fired `negotiationneeded`. `ready`: the data channel is open and
    /// the signaling state is `stable`.
    pub fn needed(&mut self, ready: bool) -> Next {
        match self.phase {
            // The first offer, still to be made, will carry the change; or the
            // browser asks again once the first answer is applied.
            Phase::Before | Phase::Starting => Next::Wait,
            Phase::Established => {
                self.pending = true;
                self.resume(ready)
            }
        }
    }

    /// Offers the waiting change if the session is up, `ready` (channel open,
    /// signaling `stable`) and nothing is in flight.
    pub fn resume(&mut self, ready: bool) -> Next {
        if self.phase != Phase::Established || !self.pending || self.busy() || self.held || !ready {
            return Next::Wait;
        }
        self.pending = false;
        self.making_offer = true;
        self.attempt = self.attempt.wrapping_add(1);
        Next::Offer {
            attempt: self.attempt,
        }
    }

    /// Offer `attempt` is set and gathered: true when it is still current and should
    /// be sent (false when a collision rolled it back meanwhile).
    pub fn offer_ready(&mut self, attempt: u32) -> bool {
        if attempt != self.attempt || !self.making_offer {
            return false;
        }
        self.making_offer = false;
        self.awaiting_answer = true;
        true
    }

    /// Making or sending offer `attempt` failed, it was refused, or its answer did not
    /// come in time: true when it was the current one, which the caller rolls back.
    /// The change is not retried (the next change carries it).
    pub fn offer_failed(&mut self, attempt: u32) -> bool {
        if attempt != self.attempt || !self.busy() {
            return false;
        }
        self.making_offer = false;
        self.awaiting_answer = false;
        self.held = true;
        true
    }

    /// After a failure, lets the waiting change go out again (after a pause, or when
    /// the page changes its media).
    pub fn retry(&mut self, ready: bool) -> Next {
        self.held = false;
        self.resume(ready)
    }

    /// The robot refused something while our offer was in flight: the number of that
    /// offer, now given up (roll it back), or `None` when none was in flight.
    pub fn refused(&mut self) -> Option<u32> {
        let attempt = self.attempt;
        self.offer_failed(attempt).then_some(attempt)
    }

    /// The robot sent a description; `stable`: the signaling state is `stable`.
    pub fn remote(&mut self, kind: SdpType, stable: bool) -> Remote {
        match kind {
            SdpType::Offer => {
                let collision = self.making_offer || !stable;
                if self.busy() {
                    // Ours gives way; its change goes out again after this one.
                    self.making_offer = false;
                    self.awaiting_answer = false;
                    self.pending = true;
                    self.attempt = self.attempt.wrapping_add(1);
                }
                Remote::AcceptOffer {
                    rollback: collision,
                }
            }
            SdpType::Answer if self.awaiting_answer => Remote::ApplyAnswer {
                attempt: self.attempt,
            },
            SdpType::Answer => Remote::Ignore,
        }
    }

    /// The answer to offer `attempt` is applied: true when that completed a
    /// renegotiation (then [`Negotiation::resume`] offers what waited).
    pub fn answer_applied(&mut self, attempt: u32) -> bool {
        if attempt != self.attempt || !self.awaiting_answer {
            return false;
        }
        self.awaiting_answer = false;
        self.completed += 1;
        true
    }
}

/// Whether the robot's `error` message refuses a renegotiation (rather than, say, a
/// drive state from a page that does not drive).
pub fn is_refusal(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["negotiat", "offer", "sdp", "description", "track", "media"]
        .iter()
        .any(|word| message.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Negotiation {
        let mut n = Negotiation::new();
        n.begin();
        n.established();
        n
    }

    #[test]
    fn changes_before_the_session_is_up_are_not_renegotiated_for_nothing() {
        let mut n = Negotiation::new();
        assert_eq!(n.needed(true), Next::Wait);
        assert!(!n.pending(), "the first offer carries it");
        n.begin();
        assert_eq!(n.needed(false), Next::Wait);
        assert!(!n.pending(), "the browser asks again once stable");
        n.established();
        assert_eq!(n.resume(true), Next::Wait, "nothing to offer");
        assert_eq!(n.needed(false), Next::Wait, "the channel is not open yet");
        assert!(n.pending());
        assert_eq!(n.resume(true), Next::Offer { attempt: 1 });
    }

    #[test]
    fn one_round_trip_counts_once() {
        let mut n = up();
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert!(n.busy());
        assert!(n.offer_ready(attempt));
        assert_eq!(
            n.remote(SdpType::Answer, false),
            Remote::ApplyAnswer { attempt }
        );
        assert!(n.answer_applied(attempt));
        assert!(!n.busy());
        assert_eq!(n.completed(), 1);
        assert!(!n.answer_applied(attempt), "counted once");
        assert_eq!(n.remote(SdpType::Answer, true), Remote::Ignore);
    }

    #[test]
    fn a_change_during_a_renegotiation_waits_and_goes_out_after() {
        let mut n = up();
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert_eq!(n.needed(true), Next::Wait, "one offer in flight");
        assert_eq!(n.needed(true), Next::Wait);
        assert!(n.offer_ready(attempt));
        assert!(n.answer_applied(attempt));
        assert_eq!(
            n.resume(true),
            Next::Offer { attempt: 2 },
            "both changes in one"
        );
        assert_eq!(n.resume(true), Next::Wait);
    }

    #[test]
    fn an_offer_from_the_robot_wins_a_collision() {
        let mut n = up();
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert_eq!(
            n.remote(SdpType::Offer, true),
            Remote::AcceptOffer { rollback: true },
            "making an offer: collision"
        );
        assert!(!n.offer_ready(attempt), "our rolled-back offer is not sent");
        assert!(n.pending(), "and goes out again later");
        assert_eq!(
            n.resume(true),
            Next::Offer {
                attempt: attempt + 2
            }
        );

        let mut n = up();
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert!(n.offer_ready(attempt));
        assert_eq!(
            n.remote(SdpType::Offer, false),
            Remote::AcceptOffer { rollback: true },
            "have-local-offer: collision"
        );
        assert_eq!(
            n.remote(SdpType::Answer, true),
            Remote::Ignore,
            "a late answer"
        );
        assert!(!n.answer_applied(attempt));
    }

    #[test]
    fn an_offer_without_collision_is_accepted_as_it_is() {
        let mut n = up();
        assert_eq!(
            n.remote(SdpType::Offer, true),
            Remote::AcceptOffer { rollback: false }
        );
        assert!(!n.pending());
    }

    #[test]
    fn a_refused_offer_is_given_up() {
        let mut n = up();
        assert_eq!(n.refused(), None, "nothing in flight");
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert!(n.offer_ready(attempt));
        assert_eq!(n.refused(), Some(attempt));
        assert!(!n.busy());
        assert!(!n.offer_failed(attempt), "once");
        assert_eq!(n.completed(), 0);
        assert_eq!(n.needed(true), Next::Wait, "no loop on the same failure");
        assert_eq!(
            n.retry(true),
            Next::Offer {
                attempt: attempt + 1
            }
        );
    }

    #[test]
    fn a_stale_failure_does_not_touch_the_current_offer() {
        let mut n = up();
        let Next::Offer { attempt } = n.needed(true) else {
            panic!("should offer");
        };
        assert!(!n.offer_failed(attempt + 7));
        assert!(n.busy());
    }

    #[test]
    fn refusals_are_told_from_other_errors() {
        assert!(is_refusal("renegotiation refused: too many tracks"));
        assert!(is_refusal("bad SDP in the offer"));
        assert!(!is_refusal("you are not the driver"));
        assert!(!is_refusal(""));
    }
}

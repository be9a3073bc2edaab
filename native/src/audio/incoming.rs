//! Sound from the browsers: decoded blocks to the robot's program and to its speaker.
//!
//! Each peer's microphone track is decoded by its own task (Opus, [`super::codec`])
//! and handed here block by block ([`Incoming::heard`]). Every block goes to the
//! program's subscribers ([`Incoming::subscribe`], RTCBot's
//! `conn.audio.subscribe()`), each with its own queue of [`SUBSCRIBER_BLOCKS`]; one
//! that falls behind loses the oldest. The speaker plays the driver's sound alone, or
//! everyone's mixed ([`PlayFrom`]), on a thread of its own behind a bounded queue
//! ([`PLAY_QUEUE`] blocks): a speaker that cannot keep up drops blocks (counted), it
//! never holds a peer back. The [`Mixer`] is pure.

use super::config::PlayFrom;
use super::sink::AudioSink;
use crate::control::PeerId;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Blocks each program subscriber may fall behind by (1.28 s).
pub const SUBSCRIBER_BLOCKS: usize = 64;
/// Blocks waiting for the speaker at most (400 ms).
pub const PLAY_QUEUE: usize = 20;

/// One decoded block of a peer's sound.
#[derive(Debug, Clone)]
pub struct HeardAudio {
    /// Whose.
    pub peer: PeerId,
    /// 48 kHz mono samples (20 ms from a browser).
    pub samples: Arc<[i16]>,
    /// When its packet arrived.
    pub received: Instant,
}

/// Counters of incoming sound since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncomingCounters {
    /// Opus packets received from peers.
    pub received_packets: u64,
    /// Blocks decoded from them.
    pub decoded_blocks: u64,
    /// Packets that did not decode (skipped).
    pub decode_errors: u64,
    /// Blocks the speaker played.
    pub played_blocks: u64,
    /// Blocks the speaker dropped: its queue was full, or it failed.
    pub dropped_blocks: u64,
}

#[derive(Default)]
struct Counters {
    received_packets: AtomicU64,
    decoded_blocks: AtomicU64,
    decode_errors: AtomicU64,
    played_blocks: AtomicU64,
    dropped_blocks: AtomicU64,
}

struct Inner {
    heard: broadcast::Sender<Arc<HeardAudio>>,
    play: Option<mpsc::SyncSender<(PeerId, Arc<[i16]>)>>,
    play_from: PlayFrom,
    speaker: Option<String>,
    counters: Arc<Counters>,
}

/// Where peers' decoded sound goes; cheap to clone.
#[derive(Clone)]
pub struct Incoming {
    inner: Arc<Inner>,
}

impl Incoming {
    /// Plays into `sink` (none: subscribers only), from whom `play_from` says.
    pub fn start(sink: Option<Box<dyn AudioSink>>, play_from: PlayFrom) -> Self {
        let counters = Arc::new(Counters::default());
        let speaker = sink.as_ref().map(|s| s.name());
        let play = sink.map(|sink| {
            let (tx, rx) = mpsc::sync_channel(PLAY_QUEUE);
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("speaker".into())
                .spawn(move || play(sink, rx, &counters))
                .expect("spawning the speaker thread");
            tx
        });
        Self {
            inner: Arc::new(Inner {
                heard: broadcast::channel(SUBSCRIBER_BLOCKS).0,
                play,
                play_from,
                speaker,
                counters,
            }),
        }
    }

    /// Every peer's decoded sound from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HeardAudio>> {
        self.inner.heard.subscribe()
    }

    /// The speaker's name, when there is one.
    pub fn speaker(&self) -> Option<&str> {
        self.inner.speaker.as_deref()
    }

    /// A peer's packet arrived (counted before decoding).
    pub fn packet_received(&self) {
        self.inner
            .counters
            .received_packets
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A peer's packet did not decode.
    pub fn decode_failed(&self) {
        self.inner
            .counters
            .decode_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A decoded block of `peer`'s sound; `driving` says whether it drives now.
    pub fn heard(&self, peer: PeerId, driving: bool, samples: &[i16]) {
        let c = &self.inner.counters;
        c.decoded_blocks.fetch_add(1, Ordering::Relaxed);
        let samples: Arc<[i16]> = samples.into();
        let _ = self.inner.heard.send(Arc::new(HeardAudio {
            peer,
            samples: samples.clone(),
            received: Instant::now(),
        }));
        let plays = driving || self.inner.play_from == PlayFrom::Everyone;
        if let (true, Some(play)) = (plays, &self.inner.play) {
            if play.try_send((peer, samples)).is_err() {
                c.dropped_blocks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> IncomingCounters {
        let c = &self.inner.counters;
        IncomingCounters {
            received_packets: c.received_packets.load(Ordering::Relaxed),
            decoded_blocks: c.decoded_blocks.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            played_blocks: c.played_blocks.load(Ordering::Relaxed),
            dropped_blocks: c.dropped_blocks.load(Ordering::Relaxed),
        }
    }
}

/// The speaker thread: mixes and plays until every sender is gone.
fn play(
    mut sink: Box<dyn AudioSink>,
    blocks: mpsc::Receiver<(PeerId, Arc<[i16]>)>,
    counters: &Counters,
) {
    let mut mixer = Mixer::default();
    let mut failed = false;
    while let Ok((peer, samples)) = blocks.recv() {
        mixer.push(peer, samples, Instant::now());
        while let Some(mixed) = mixer.pop(Instant::now()) {
            match sink.write(&mixed) {
                Ok(()) => {
                    counters.played_blocks.fetch_add(1, Ordering::Relaxed);
                    failed = false;
                }
                Err(err) => {
                    counters.dropped_blocks.fetch_add(1, Ordering::Relaxed);
                    // Said once per run of failures, not 50 times a second.
                    if !failed {
                        tracing::warn!("speaker {}: {err}", sink.name());
                    }
                    failed = true;
                }
            }
        }
    }
}

/// A talker's queued blocks and when its last one came.
type Talker = (VecDeque<Arc<[i16]>>, Instant);

/// A peer counts as talking while its last block is this recent.
const TALKING: Duration = Duration::from_millis(200);
/// Blocks a talker may get ahead of the others before the mixer stops waiting.
const AHEAD: usize = 3;

/// Mixes peers' blocks: one block out when every talking peer has one queued (or one
/// of them is [`AHEAD`] blocks ahead: another is late), the heads summed with
/// saturation. One talker passes straight through. Pure.
#[derive(Debug, Default)]
pub struct Mixer {
    /// Each talker's queued blocks and when its last one came.
    queues: BTreeMap<PeerId, Talker>,
}

impl Mixer {
    /// Queues `peer`'s block that arrived at `now`.
    pub fn push(&mut self, peer: PeerId, samples: Arc<[i16]>, now: Instant) {
        let (queue, last) = self
            .queues
            .entry(peer)
            .or_insert_with(|| (VecDeque::new(), now));
        queue.push_back(samples);
        // Never more than a few behind: old sound is dropped, not played late.
        while queue.len() > 2 * AHEAD {
            queue.pop_front();
        }
        *last = now;
    }

    /// The next mixed block, when one is due.
    pub fn pop(&mut self, now: Instant) -> Option<Vec<i16>> {
        self.queues
            .retain(|_, (queue, last)| !queue.is_empty() || now.duration_since(*last) < TALKING);
        let all_ready = self.queues.values().all(|(q, _)| !q.is_empty());
        let one_ahead = self.queues.values().any(|(q, _)| q.len() >= AHEAD);
        if self.queues.is_empty() || !(all_ready || one_ahead) {
            return None;
        }
        let mut mixed: Vec<i32> = Vec::new();
        for (queue, _) in self.queues.values_mut() {
            let Some(head) = queue.pop_front() else {
                continue;
            };
            if mixed.len() < head.len() {
                mixed.resize(head.len(), 0);
            }
            for (m, &s) in mixed.iter_mut().zip(head.iter()) {
                *m += i32::from(s);
            }
        }
        Some(
            mixed
                .into_iter()
                .map(|m| m.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(v: i16) -> Arc<[i16]> {
        vec![v; 4].into()
    }

    #[test]
    fn one_talker_passes_through_and_two_are_mixed() {
        let now = Instant::now();
        let mut mixer = Mixer::default();
        mixer.push(1, block(100), now);
        assert_eq!(mixer.pop(now), Some(vec![100; 4]));
        assert_eq!(mixer.pop(now), None);
        // A second talker: wait for both, then sum (with saturation).
        mixer.push(1, block(30_000), now);
        mixer.push(2, block(-5), now);
        assert_eq!(mixer.pop(now), Some(vec![29_995; 4]));
        mixer.push(1, block(30_000), now);
        mixer.push(2, block(30_000), now);
        assert_eq!(mixer.pop(now), Some(vec![i16::MAX; 4]));
    }

    #[test]
    fn a_late_talker_is_not_waited_for_long() {
        let now = Instant::now();
        let mut mixer = Mixer::default();
        mixer.push(1, block(1), now);
        mixer.push(2, block(2), now);
        assert!(mixer.pop(now).is_some());
        // Peer 2 goes quiet: peer 1 is played once it is AHEAD blocks ahead.
        for _ in 0..AHEAD - 1 {
            mixer.push(1, block(1), now);
            assert_eq!(mixer.pop(now), None);
        }
        mixer.push(1, block(1), now);
        assert_eq!(mixer.pop(now), Some(vec![1; 4]));
        // And once peer 2 has been quiet for TALKING, peer 1 alone passes through.
        let later = now + TALKING;
        mixer.push(1, block(7), later);
        while mixer.pop(later).is_some() {}
        mixer.push(1, block(8), later);
        assert_eq!(mixer.pop(later), Some(vec![8; 4]));
    }

    #[test]
    fn only_the_driver_plays_by_default_and_subscribers_hear_everyone() {
        let dir = std::env::temp_dir().join(format!("rtcbot-incoming-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("heard.wav");
        let sink = super::super::sink::WavSink::create(&path).unwrap();
        let incoming = Incoming::start(Some(Box::new(sink)), PlayFrom::Driver);
        let mut heard = incoming.subscribe();
        incoming.heard(1, true, &[5; 960]);
        incoming.heard(2, false, &[6; 960]);
        assert_eq!(heard.try_recv().unwrap().peer, 1);
        assert_eq!(heard.try_recv().unwrap().peer, 2);
        assert_eq!(incoming.counters().decoded_blocks, 2);
        assert!(incoming.speaker().unwrap().ends_with("heard.wav"));
    }
}

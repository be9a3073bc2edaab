//! RTP packets → H.264 access units, each handed out the moment its last packet
//! (the one with the marker bit) is in, with every packet before it back to the
//! previous unit's end. webrtc-rs's `SampleBuilder` holds a unit until the next unit's
//! first packet arrives, a whole frame interval (33 ms at 30 fps) later.
//!
//! Packets may come out of order (NACK retransmissions): a unit waits for its missing
//! packets until the stream is [`GIVE_UP_TICKS`] past it, then is given up (counted)
//! and the next unit starts after it.

use bytes::{Bytes, BytesMut};
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The least time between two keyframe requests of one [`KeyframeWatch`].
pub(crate) const KEYFRAME_ASK_INTERVAL: Duration = Duration::from_millis(500);

/// How far (90 kHz ticks) the newest packet may be past an incomplete unit before it
/// is given up: 150 ms, time for a retransmission on most links.
pub(crate) const GIVE_UP_TICKS: u32 = 13_500;
/// Packets held at most (a lost marker must not make the map grow).
const MAX_PACKETS: usize = 1024;

struct Held {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
}

/// The assembler (see the module docs).
#[derive(Default)]
pub(crate) struct Assembler {
    packets: BTreeMap<u64, Held>,
    /// The highest extended sequence number seen.
    highest: Option<u64>,
    /// The extended sequence number of the last packet of the last unit handed out
    /// or given up; `None` before the first marker.
    done: Option<u64>,
    /// Units given up (packets lost) or that did not depacketize.
    pub(crate) lost: u64,
}

impl Assembler {
    /// The 64-bit sequence number of `seq`, the one nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1 << 32) | u64::from(seq),
            Some(h) => h.wrapping_add_signed(i64::from(seq.wrapping_sub(h as u16) as i16)),
        }
    }

    /// Adds one packet; the units it completes, in order.
    pub(crate) fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) -> Vec<Bytes> {
        let e = self.extend(seq);
        if self.done.is_some_and(|d| e <= d) {
            return Vec::new(); // late or repeated: its unit is gone
        }
        if self.highest.is_none() && H264Packet::default().is_partition_head(&payload) {
            // The first packet starts a NAL unit: take it as the start of a unit (as
            // the robot's first packet to a new viewer is, its keyframe's).
            self.done = Some(e - 1);
        }
        self.highest = Some(self.highest.map_or(e, |h| h.max(e)));
        if self.done.is_none() && marker {
            // Joined inside a unit: start after its end.
            self.done = Some(e);
            self.packets.clear();
            return Vec::new();
        }
        self.packets.insert(
            e,
            Held {
                timestamp,
                marker,
                payload,
            },
        );
        let mut units = Vec::new();
        while let Some(unit) = self.next_unit(timestamp) {
            if let Some(unit) = unit {
                units.push(unit);
            }
        }
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
        }
        units
    }

    /// The next complete unit (`Some(Some)`), one given up or broken (`Some(None)`),
    /// or `None` when the next is still incomplete.
    fn next_unit(&mut self, newest: u32) -> Option<Option<Bytes>> {
        let done = self.done?;
        let (&first, head) = self.packets.first_key_value()?;
        let head_ts = head.timestamp;
        // Consecutive packets from the previous end up to a marker: a whole unit.
        let mut end = None;
        for (k, (&key, held)) in self.packets.iter().enumerate() {
            if key != done + 1 + k as u64 {
                break;
            }
            if held.marker {
                end = Some(key);
                break;
            }
        }
        let Some(end) = end else {
            // Incomplete: wait, unless the stream moved on well past it.
            if newest.wrapping_sub(head_ts) as i32 <= GIVE_UP_TICKS as i32 {
                return None;
            }
            // Skip to the first packet of a later unit.
            let next = self
                .packets
                .iter()
                .find(|(_, p)| p.timestamp != head_ts)
                .map(|(k, _)| *k);
            self.lost += 1;
            match next {
                Some(k) => {
                    self.done = Some(k - 1);
                    self.packets.retain(|key, _| *key >= k);
                }
                None => {
                    self.done = self.highest;
                    self.packets.clear();
                }
            }
            return Some(None);
        };
        let mut depacketizer = H264Packet::default();
        let mut unit = BytesMut::new();
        let mut broken = false;
        for (_, held) in self.packets.range(first..=end) {
            // rtc-rtp indexes some malformed payloads out of bounds: a panic is a
            // broken unit too.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                depacketizer.depacketize(&held.payload)
            }));
            match result {
                Ok(Ok(bytes)) => unit.extend_from_slice(&bytes),
                _ => broken = true,
            }
        }
        self.packets.retain(|key, _| *key > end);
        self.done = Some(end);
        if broken || unit.is_empty() {
            self.lost += 1;
            return Some(None);
        }
        Some(Some(unit.freeze()))
    }
}

/// When the client asks the robot for a keyframe (an RTCP PLI), as a browser does:
/// while no keyframe arrived since the stream started or since a unit was lost (its
/// pictures would not decode), at most every [`KEYFRAME_ASK_INTERVAL`].
#[derive(Debug, Default)]
pub(crate) struct KeyframeWatch {
    have_keyframe: bool,
    lost_seen: u64,
    last_ask: Option<Instant>,
}

impl KeyframeWatch {
    /// Notes a unit handed out at `now` (with the assembler's `lost` count then);
    /// true when a keyframe should be asked for now.
    pub(crate) fn on_unit(&mut self, unit: &[u8], lost: u64, now: Instant) -> bool {
        if lost > self.lost_seen {
            self.lost_seen = lost;
            self.have_keyframe = false;
        }
        if crate::video::h264::is_keyframe(unit) {
            self.have_keyframe = true;
            return false;
        }
        let due = self
            .last_ask
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_ASK_INTERVAL);
        if self.have_keyframe || !due {
            return false;
        }
        self.last_ask = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single-NAL packet holding NAL type `t` with one byte `b`.
    fn nal(t: u8, b: u8) -> Bytes {
        Bytes::from(vec![t, b, b])
    }

    /// Annex B of NAL units.
    fn annexb(nals: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        Bytes::from(out)
    }

    #[test]
    fn a_unit_comes_out_with_its_marker_packet() {
        let mut a = Assembler::default();
        // Joined inside a unit (a fragment's tail): the unit ending at seq 9 is not whole.
        assert!(a
            .push(8, 0, false, Bytes::from_static(&[0x7c, 0x05, 1]))
            .is_empty());
        assert!(a.push(9, 0, true, nal(0x41, 0)).is_empty());
        assert!(a.push(10, 3000, false, nal(0x67, 1)).is_empty());
        assert!(a.push(11, 3000, false, nal(0x68, 2)).is_empty());
        let units = a.push(12, 3000, true, nal(0x65, 3));
        assert_eq!(
            units,
            vec![annexb(&[&[0x67, 1, 1], &[0x68, 2, 2], &[0x65, 3, 3]])]
        );
        // A first packet that starts a NAL unit starts a unit; sequence numbers wrap.
        let mut a = Assembler::default();
        assert_eq!(a.push(65534, 0, true, nal(0x41, 0)).len(), 1);
        assert!(a.push(65535, 90, false, nal(0x41, 1)).is_empty());
        assert_eq!(a.push(0, 90, true, nal(0x41, 2)).len(), 1);
        assert_eq!(a.lost, 0);
    }

    #[test]
    fn reordered_packets_wait_and_lost_ones_are_given_up() {
        let mut a = Assembler::default();
        assert_eq!(a.push(1, 0, true, nal(0x41, 0)).len(), 1);
        // Seq 3 before 2: the unit waits for 2.
        assert!(a.push(3, 3000, true, nal(0x41, 2)).is_empty());
        let units = a.push(2, 3000, false, nal(0x41, 1));
        assert_eq!(units, vec![annexb(&[&[0x41, 1, 1], &[0x41, 2, 2]])]);
        // A repeat of 2 (a late retransmission) changes nothing.
        assert!(a.push(2, 3000, false, nal(0x41, 1)).is_empty());
        // Seq 4 lost: unit 6000 waits until the stream is 150 ms past it.
        assert!(a.push(5, 6000, true, nal(0x41, 5)).is_empty());
        assert!(a.push(6, 9000, true, nal(0x41, 6)).is_empty());
        let later = a.push(7, 6000 + GIVE_UP_TICKS + 1, true, nal(0x41, 7));
        assert_eq!(
            later,
            vec![annexb(&[&[0x41, 6, 6]]), annexb(&[&[0x41, 7, 7]])]
        );
        assert_eq!(a.lost, 1);
    }

    #[test]
    fn keyframes_are_asked_for_until_one_comes_and_after_a_loss() {
        let idr = annexb(&[&[0x65, 1, 1]]);
        let p = annexb(&[&[0x41, 1, 1]]);
        let t0 = Instant::now();
        let mut w = KeyframeWatch::default();
        // Joined after the keyframe: ask, then not again within the interval.
        assert!(w.on_unit(&p, 0, t0));
        assert!(!w.on_unit(&p, 0, t0 + Duration::from_millis(100)));
        assert!(w.on_unit(&p, 0, t0 + KEYFRAME_ASK_INTERVAL));
        let t1 = t0 + KEYFRAME_ASK_INTERVAL * 2;
        assert!(!w.on_unit(&idr, 0, t1));
        assert!(!w.on_unit(&p, 0, t1 + KEYFRAME_ASK_INTERVAL));
        // A unit lost: ask again.
        assert!(w.on_unit(&p, 1, t1 + KEYFRAME_ASK_INTERVAL));
        // A stream that starts with its keyframe never asks.
        let mut w = KeyframeWatch::default();
        assert!(!w.on_unit(&idr, 0, t0) && !w.on_unit(&p, 0, t0));
    }

    #[test]
    fn garbage_payloads_are_counted_not_handed_out() {
        let mut a = Assembler::default();
        a.push(1, 0, true, nal(0x41, 0));
        // STAP-A with a length past its end.
        assert!(a
            .push(2, 90, true, Bytes::from_static(&[24, 0, 9, 1]))
            .is_empty());
        assert_eq!(a.lost, 1);
        assert_eq!(a.push(3, 180, true, nal(0x41, 1)).len(), 1);
    }
}

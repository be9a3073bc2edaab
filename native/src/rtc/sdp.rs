//! What an offer asks for, read from its SDP: pure, no I/O.
//!
//! For each audio and video section: whether the offerer wants to receive (the robot
//! then adds its track) and whether it sends (the robot then decodes what comes). A
//! section's direction is `a=sendrecv` (the default), `sendonly`, `recvonly` or
//! `inactive`; a section with port 0 is stopped and asks for nothing.

/// What an offer's media sections ask for, from the offerer's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaWants {
    /// It wants the robot's video.
    pub receive_video: bool,
    /// It wants the robot's audio.
    pub receive_audio: bool,
    /// It sends video (a camera).
    pub send_video: bool,
    /// It sends audio (a microphone).
    pub send_audio: bool,
}

impl MediaWants {
    /// Reads `sdp`.
    pub fn of(sdp: &str) -> Self {
        Self::from_sections(&sections(sdp))
    }

    /// What `sections` ask for.
    pub fn from_sections(sections: &[Section]) -> Self {
        let mut wants = Self::default();
        for section in sections.iter().filter(|s| s.live) {
            let (send, receive) = match section.direction {
                Direction::SendOnly => (true, false),
                Direction::RecvOnly => (false, true),
                Direction::Inactive => (false, false),
                Direction::SendRecv => (true, true),
            };
            if section.video {
                wants.receive_video |= receive;
                wants.send_video |= send;
            } else {
                wants.receive_audio |= receive;
                wants.send_audio |= send;
            }
        }
        wants
    }
}

/// A media section's direction, from the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives.
    SendRecv,
    /// Sends only.
    SendOnly,
    /// Receives only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Self> {
        Some(match attr {
            "sendrecv" => Self::SendRecv,
            "sendonly" => Self::SendOnly,
            "recvonly" => Self::RecvOnly,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }

    /// The answerer's direction for an offered one (RFC 3264 §6.1): it receives what
    /// the offerer sends, and sends only where the offerer receives and it has a
    /// track (`we_send`).
    pub fn answer(self, we_send: bool) -> Self {
        match (self, we_send) {
            (Self::SendRecv, true) => Self::SendRecv,
            (Self::SendRecv | Self::SendOnly, _) => Self::RecvOnly,
            (Self::RecvOnly, true) => Self::SendOnly,
            (Self::RecvOnly | Self::Inactive, _) => Self::Inactive,
        }
    }
}

/// One audio or video section of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Video (else audio).
    pub video: bool,
    /// Its `a=mid`, when it has one.
    pub mid: Option<String>,
    /// Its direction (`sendrecv` when it names none).
    pub direction: Direction,
    /// Its port is not 0 (a section with port 0 is stopped and asks for nothing).
    pub live: bool,
}

/// The audio and video sections of `sdp`, in order (data channels and other media
/// left out).
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    // Whether the section being read is audio or video (its attributes count).
    let mut in_media = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split_whitespace();
            let kind = fields.next().unwrap_or("");
            in_media = matches!(kind, "audio" | "video");
            if in_media {
                out.push(Section {
                    video: kind == "video",
                    mid: None,
                    direction: Direction::SendRecv,
                    live: fields.next() != Some("0"),
                });
            }
        } else if let (true, Some(attr), Some(current)) =
            (in_media, line.strip_prefix("a="), out.last_mut())
        {
            if let Some(mid) = attr.strip_prefix("mid:") {
                current.mid = Some(mid.to_owned());
            } else if let Some(direction) = Direction::parse(attr) {
                current.direction = direction;
            }
        }
    }
    out
}

/// Each live audio or video section's `a=mid` and direction, in order (a section
/// with port 0 or without a mid is left out).
pub fn directions(sections: &[Section]) -> Vec<(&str, Direction)> {
    sections
        .iter()
        .filter(|s| s.live)
        .filter_map(|s| Some((s.mid.as_deref()?, s.direction)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_read_per_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=sendrecv\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert_eq!(
            MediaWants::of(sdp),
            MediaWants {
                receive_video: true,
                receive_audio: true,
                send_video: true,
                send_audio: false,
            }
        );
        // No direction attribute: sendrecv.
        let sdp = "v=0\nm=audio 9 RTP/AVP 111\n";
        assert!(MediaWants::of(sdp).send_audio && MediaWants::of(sdp).receive_audio);
        // Stopped or inactive sections ask for nothing; data only asks for nothing.
        let sdp = "v=0\nm=audio 0 RTP/AVP 111\nm=video 9 RTP/AVP 102\na=inactive\n";
        assert_eq!(MediaWants::of(sdp), MediaWants::default());
        assert_eq!(
            MediaWants::of("v=0\nm=application 9 x\n"),
            MediaWants::default()
        );
        assert_eq!(MediaWants::of(""), MediaWants::default());
        // A microphone alone.
        let sdp = "v=0\nm=audio 9 RTP/AVP 111\na=sendonly\n";
        let wants = MediaWants::of(sdp);
        assert!(wants.send_audio && !wants.receive_audio);
    }

    #[test]
    fn answers_mirror_offers() {
        use Direction::*;
        let cases = [
            (SendRecv, true, SendRecv),
            (SendRecv, false, RecvOnly),
            (SendOnly, true, RecvOnly),
            (SendOnly, false, RecvOnly),
            (RecvOnly, true, SendOnly),
            (RecvOnly, false, Inactive),
            (Inactive, true, Inactive),
            (Inactive, false, Inactive),
        ];
        for (offer, we_send, answer) in cases {
            assert_eq!(offer.answer(we_send), answer, "{offer:?} {we_send}");
        }
    }

    #[test]
    fn the_sections_are_named_by_mid() {
        let sdp = "v=0\r\nm=audio 9 RTP 111\r\na=mid:0\r\na=sendrecv\r\n\
                   m=video 9 RTP 102\r\na=mid:1\r\na=recvonly\r\n\
                   m=video 9 RTP 102\r\na=sendonly\r\na=mid:v2\r\n\
                   m=audio 0 RTP 111\r\na=mid:3\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";
        let all = sections(sdp);
        let got = directions(&all);
        let want = [
            ("0", Direction::SendRecv),
            ("1", Direction::RecvOnly),
            ("v2", Direction::SendOnly),
        ];
        assert_eq!(got.len(), want.len());
        for ((mid, dir), (want_mid, want_dir)) in got.iter().zip(want) {
            assert_eq!((*mid, *dir), (want_mid, want_dir));
        }
        assert!(directions(&sections("")).is_empty());
    }
}

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
        let mut wants = Self::default();
        let mut section: Option<(bool, bool)> = None; // (is video, stopped)
        let mut direction = "sendrecv";
        let finish = |section: Option<(bool, bool)>, direction: &str, wants: &mut Self| {
            let Some((video, stopped)) = section else {
                return;
            };
            if stopped {
                return;
            }
            let (send, receive) = match direction {
                "sendonly" => (true, false),
                "recvonly" => (false, true),
                "inactive" => (false, false),
                _ => (true, true),
            };
            if video {
                wants.receive_video |= receive;
                wants.send_video |= send;
            } else {
                wants.receive_audio |= receive;
                wants.send_audio |= send;
            }
        };
        for line in sdp.lines() {
            let line = line.trim_end();
            if let Some(media) = line.strip_prefix("m=") {
                finish(section, direction, &mut wants);
                direction = "sendrecv";
                let mut fields = media.split_whitespace();
                let kind = fields.next().unwrap_or("");
                let stopped = fields.next() == Some("0");
                section = match kind {
                    "video" => Some((true, stopped)),
                    "audio" => Some((false, stopped)),
                    _ => None,
                };
            } else if let Some(attr) = line.strip_prefix("a=") {
                if matches!(attr, "sendrecv" | "sendonly" | "recvonly" | "inactive") {
                    direction = attr;
                }
            }
        }
        finish(section, direction, &mut wants);
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

/// Each live audio or video section's `a=mid` and direction, in order (a section
/// with port 0 or without a mid is left out).
pub fn directions(sdp: &str) -> Vec<(String, Direction)> {
    let mut out = Vec::new();
    let mut section: Option<(bool, Option<String>, Direction)> = None; // (media, mid, dir)
    let mut finish = |section: Option<(bool, Option<String>, Direction)>| {
        if let Some((true, Some(mid), direction)) = section {
            out.push((mid, direction));
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            finish(section.take());
            let mut fields = media.split_whitespace();
            let kind = fields.next().unwrap_or("");
            let live = fields.next() != Some("0");
            section = Some((
                live && matches!(kind, "audio" | "video"),
                None,
                Direction::SendRecv,
            ));
        } else if let (Some(attr), Some(current)) = (line.strip_prefix("a="), section.as_mut()) {
            if let Some(mid) = attr.strip_prefix("mid:") {
                current.1 = Some(mid.to_owned());
            } else if let Some(direction) = Direction::parse(attr) {
                current.2 = direction;
            }
        }
    }
    finish(section);
    out
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
        let got = directions(sdp);
        let want = [
            ("0", Direction::SendRecv),
            ("1", Direction::RecvOnly),
            ("v2", Direction::SendOnly),
        ];
        assert_eq!(got.len(), want.len());
        for ((mid, dir), (want_mid, want_dir)) in got.iter().zip(want) {
            assert_eq!((mid.as_str(), *dir), (want_mid, want_dir));
        }
        assert!(directions("").is_empty());
    }
}

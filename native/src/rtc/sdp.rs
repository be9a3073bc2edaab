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
}

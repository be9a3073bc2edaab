//! A WHEP client: watch any WHEP endpoint (the robot's `POST /whep`, a media server's)
//! from Rust, as a standard player does.
//!
//! [`WhepClient::connect`] makes a receive-only offer (video, and audio when asked; no
//! data channel), waits for ICE gathering, `POST`s it as `application/sdp`, applies the
//! `201 Created` answer and keeps the session's `Location`; [`WhepClient::delete`]
//! ends the session with `DELETE` on it and closes the connection. Frames arrive as
//! the robot's own client gets them ([`ReceivedFrame`]).

use super::client::{http_client, receive_video, ClientError, ClientOptions, ReceivedFrame};
use super::connection::{build_connection, wait_gathered, Events, Side};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

/// Video frames buffered for the reader; a slow reader loses the newest.
const FRAME_QUEUE: usize = 256;

/// A WHEP session: a receive-only connection and the resource that ends it.
pub struct WhepClient {
    pc: Arc<dyn PeerConnection>,
    http: reqwest::Client,
    session: reqwest::Url,
    token: Option<String>,
    video: Option<mpsc::Receiver<ReceivedFrame>>,
}

impl WhepClient {
    /// Opens a session at the WHEP endpoint `url` (the robot's `…/whep`): video, and
    /// audio with [`ClientOptions::audio`]; `options.token` goes as `Authorization:
    /// Bearer`. Returns once the answer is applied (the connection then comes up).
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let endpoint = reqwest::Url::parse(url)
            .map_err(|e| ClientError::Signaling(format!("the WHEP URL {url:?}: {e}")))?;
        let http = http_client(&options)?;
        let (video_tx, video) = mpsc::channel(FRAME_QUEUE);
        // Audio is read (so its RTCP flows) but not handed out.
        let (handler, (mut gathered_rx, _)) = Events::new(move |track| {
            let video_tx = video_tx.clone();
            tokio::spawn(async move {
                let video = (track.kind().await == RtpCodecKind::Video).then_some(video_tx);
                receive_video(track, video).await;
            });
        });
        let pc = build_connection(
            Side::Offerer,
            &options.ice_servers,
            &options.ice_udp,
            options.ice_tick,
            None,
            handler,
        )
        .await?;
        let mut client = Self {
            pc,
            http,
            session: endpoint.clone(),
            token: options.token.clone(),
            video: options.video.then_some(video),
        };
        match client.offer(&endpoint, &options, &mut gathered_rx).await {
            Ok(session) => {
                client.session = session;
                Ok(client)
            }
            Err(err) => {
                client.close().await;
                Err(err)
            }
        }
    }

    /// Offers, posts and applies the answer; returns the session's URL.
    async fn offer(
        &self,
        endpoint: &reqwest::Url,
        options: &ClientOptions,
        gathered: &mut watch::Receiver<bool>,
    ) -> Result<reqwest::Url, ClientError> {
        let kinds = [
            (RtpCodecKind::Video, options.video),
            (RtpCodecKind::Audio, options.audio),
        ];
        for (kind, _) in kinds.into_iter().filter(|(_, wanted)| *wanted) {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            self.pc.add_transceiver_from_kind(kind, Some(init)).await?;
        }
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        wait_gathered(gathered).await;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or(ClientError::NotReady(
                "no local description after the offer",
            ))?;
        let request = self
            .authorized(self.http.post(endpoint.clone()))
            .header("content-type", "application/sdp")
            .body(local.sdp);
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Signaling(format!("POST {endpoint}: {e}")))?;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| ClientError::Signaling(e.to_string()))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(ClientError::Signaling(format!("{status}: {body}")));
        }
        let location = location.ok_or_else(|| {
            ClientError::Signaling("the WHEP answer came without a Location".into())
        })?;
        let session = endpoint
            .join(&location)
            .map_err(|e| ClientError::Signaling(format!("the WHEP Location {location:?}: {e}")))?;
        let answer = RTCSessionDescription::answer(body)
            .map_err(|e| ClientError::Signaling(format!("the WHEP answer: {e}")))?;
        self.pc.set_remote_description(answer).await?;
        Ok(session)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The session's resource (the answer's `Location`, made absolute).
    pub fn session_url(&self) -> &str {
        self.session.as_str()
    }

    /// Takes the stream of received video frames (once; with [`ClientOptions::video`]).
    pub fn take_video(&mut self) -> Option<mpsc::Receiver<ReceivedFrame>> {
        self.video.take()
    }

    /// Ends the session: `DELETE` on its resource, then closes the connection (closed
    /// whatever the server said). Fails when the server did not answer 2xx.
    pub async fn delete(&self) -> Result<(), ClientError> {
        let response = self
            .authorized(self.http.delete(self.session.clone()))
            .send()
            .await;
        self.close().await;
        let response = response
            .map_err(|e| ClientError::Signaling(format!("DELETE {}: {e}", self.session)))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Signaling(format!("{status}: {body}")));
        }
        Ok(())
    }

    /// Closes the connection without telling the server (it notices the connection
    /// end by itself).
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

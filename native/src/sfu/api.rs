//! Janus's HTTP API, on the wire: a session, its handles, requests and the long poll
//! that brings the session's events (the messages themselves are [`super::janus`]'s).

use super::janus::{self, JanusError, Reply};
use serde_json::Value;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long Janus may take to answer a request, or to send the event that answers it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus ends a long poll with a `keepalive` event after 30 s; this is longer.
const POLL_TIMEOUT: Duration = Duration::from_secs(45);

/// Why talking to Janus failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuError {
    /// No HTTP answer: Janus is down, or not at that address.
    Unreachable(String),
    /// Janus answered with an error.
    Janus(JanusError),
    /// Janus answered something the robot cannot read, or not in time.
    Protocol(String),
    /// The robot's side of the WebRTC connection failed.
    WebRtc(String),
    /// Another publisher took the robot's id in the room, or holds it after the robot
    /// was pushed out: two robots configured with one `publisher_id`.
    Displaced {
        /// The room.
        room: u64,
        /// The id both claim.
        id: u64,
    },
}

impl fmt::Display for SfuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "Janus is unreachable: {why}"),
            Self::Janus(err) => err.fmt(f),
            Self::Protocol(why) => write!(f, "Janus: {why}"),
            Self::WebRtc(why) => write!(f, "the connection to Janus: {why}"),
            Self::Displaced { room, id } => write!(
                f,
                "another publisher took publisher id {id} in room {room}: two robots with \
                 the same [sfu] publisher_id? This one waits for the id to be free and \
                 does not push the other out"
            ),
        }
    }
}

impl std::error::Error for SfuError {}

impl From<JanusError> for SfuError {
    fn from(err: JanusError) -> Self {
        Self::Janus(err)
    }
}

impl From<webrtc::error::Error> for SfuError {
    fn from(err: webrtc::error::Error) -> Self {
        Self::WebRtc(err.to_string())
    }
}

/// The SDP of `reply` to `request`, which must be a plugin event carrying a JSEP of
/// type `kind` (`offer` or `answer`).
pub fn expect_sdp(reply: Reply, kind: &str, request: &str) -> Result<String, SfuError> {
    let Reply::Event {
        jsep: Some((sent, sdp)),
        ..
    } = reply
    else {
        return Err(SfuError::Protocol(format!(
            "Janus answered {request} without an SDP: {reply:?}"
        )));
    };
    if sent != kind {
        return Err(SfuError::Protocol(format!(
            "Janus answered {request} with an {sent}, not an {kind}"
        )));
    }
    Ok(sdp)
}

/// An HTTP client for Janus.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client without TLS settings builds")
}

fn new_transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// POSTs `body` to `url` and reads the JSON reply.
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, SfuError> {
    let response = http
        .post(url)
        .timeout(REQUEST_TIMEOUT)
        .json(body)
        .send()
        .await
        .map_err(|e| SfuError::Unreachable(format!("POST {url}: {}", crate::error_chain(&e))))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| SfuError::Unreachable(format!("POST {url}: {e}")))?;
    serde_json::from_str(&text).map_err(|_| {
        SfuError::Protocol(format!(
            "POST {url} answered {status} with something other than Janus's JSON: {text:.200}"
        ))
    })
}

/// A Janus session: requests, and its events from a long poll of its own.
pub struct Session {
    http: reqwest::Client,
    url: String,
    events: mpsc::Receiver<Result<Value, SfuError>>,
    poll: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.poll.abort();
    }
}

impl Session {
    /// Creates a session on the Janus whose API is at `base` (`…/janus`).
    pub async fn create(http: reqwest::Client, base: &str) -> Result<Self, SfuError> {
        let reply = post(&http, base, &janus::create(&new_transaction())).await?;
        let Reply::Created(id) = janus::parse(&reply)? else {
            return Err(SfuError::Protocol(format!("create answered {reply}")));
        };
        let url = format!("{base}/{id}");
        let (tx, events) = mpsc::channel(64);
        let poll = tokio::spawn(long_poll(http.clone(), url.clone(), tx));
        Ok(Self {
            http,
            url,
            events,
            poll,
        })
    }

    /// Attaches a handle to the VideoRoom plugin.
    pub async fn attach(&self) -> Result<u64, SfuError> {
        let reply = post(&self.http, &self.url, &janus::attach(&new_transaction())).await?;
        match janus::parse(&reply)? {
            Reply::Created(id) => Ok(id),
            _ => Err(SfuError::Protocol(format!("attach answered {reply}"))),
        }
    }

    /// Tells Janus the session is alive.
    pub async fn keepalive(&self) -> Result<(), SfuError> {
        let reply = post(&self.http, &self.url, &janus::keepalive(&new_transaction())).await?;
        janus::parse(&reply)?;
        Ok(())
    }

    /// Ends the session (best effort: Janus may be gone already).
    pub async fn destroy(&self) {
        let _ = post(&self.http, &self.url, &janus::destroy(&new_transaction())).await;
    }

    /// Sends a plugin message on `handle` (`make` builds it with its transaction) and
    /// returns its answer: the synchronous one, or the event an `ack` promised.
    pub async fn request(
        &mut self,
        handle: u64,
        make: impl FnOnce(&str) -> Value,
    ) -> Result<Reply, SfuError> {
        let transaction = new_transaction();
        let url = format!("{}/{handle}", self.url);
        let reply = post(&self.http, &url, &make(&transaction)).await?;
        match janus::parse(&reply)? {
            Reply::Ack => {}
            answer => return Ok(answer),
        }
        let wait = async {
            loop {
                let event = self.next_event().await?;
                if janus::transaction(&event) == Some(transaction.as_str()) {
                    return Ok(janus::parse(&event)?);
                }
                if let Ok(Reply::Hangup(why)) = janus::parse(&event) {
                    return Err(SfuError::Protocol(format!("hung up while asked: {why}")));
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, wait)
            .await
            .map_err(|_| SfuError::Protocol(format!("no answer in {REQUEST_TIMEOUT:?}")))?
    }

    /// The session's next event; an error once the long poll fails.
    pub async fn next_event(&mut self) -> Result<Value, SfuError> {
        match self.events.recv().await {
            Some(event) => event,
            None => Err(SfuError::Protocol("the event poll ended".into())),
        }
    }
}

/// Long-polls the session's events into `events` until a poll fails (that error is
/// the last thing sent) or the receiver is gone.
async fn long_poll(
    http: reqwest::Client,
    url: String,
    events: mpsc::Sender<Result<Value, SfuError>>,
) {
    let poll_url = format!("{url}?maxev=1");
    loop {
        let got = async {
            let response = http
                .get(&poll_url)
                .timeout(POLL_TIMEOUT)
                .send()
                .await
                .map_err(|e| {
                    SfuError::Unreachable(format!("GET {url}: {}", crate::error_chain(&e)))
                })?;
            response
                .json::<Value>()
                .await
                .map_err(|e| SfuError::Unreachable(format!("GET {url}: {e}")))
        }
        .await;
        let failed = got.is_err();
        // A core error (the session is gone) ends the poll too.
        let gone =
            matches!(&got, Ok(event) if janus::parse(event).is_err_and(|e| e.session_gone()));
        let got = match got {
            Ok(event) if gone => Err(SfuError::Janus(
                janus::parse(&event).expect_err("checked above"),
            )),
            other => other,
        };
        if events.send(got).await.is_err() || failed || gone {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdp_of_the_wrong_kind_or_none_is_refused_with_why() {
        let event = |jsep: Option<(&str, &str)>| Reply::Event {
            data: Value::Null,
            jsep: jsep.map(|(k, s)| (k.to_owned(), s.to_owned())),
        };
        let sdp = expect_sdp(event(Some(("offer", "v=0"))), "offer", "the subscription");
        assert_eq!(sdp, Ok("v=0".to_owned()));
        let err = expect_sdp(event(Some(("answer", "v=0"))), "offer", "the subscription");
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("with an answer, not an offer"),
            "wrong kind"
        );
        let err = expect_sdp(event(None), "answer", "the publication").unwrap_err();
        assert!(
            err.to_string().contains("the publication without an SDP"),
            "{err}"
        );
        assert!(expect_sdp(Reply::Ack, "answer", "the publication").is_err());
    }
}

//! What the relay's tests share: relays on free ports, stand-in robots (tokio-tungstenite,
//! answering as RTCBot's tutorial robot does), and browsers' POSTs.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use rtcbot_relay::RelayConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A relay on a free port.
pub async fn relay(config: RelayConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(rtcbot_relay::run(listener, config, std::future::pending()));
    addr
}

pub async fn robot(addr: SocketAddr, path: &str) -> Result<Socket, String> {
    tokio_tungstenite::connect_async(format!("ws://{addr}/{path}"))
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

/// Answers `n` offers the way RTCBot's tutorial robot does: the next frame is the
/// answer.
pub async fn answer(socket: &mut Socket, n: usize) {
    for _ in 0..n {
        let offer = loop {
            match socket
                .next()
                .await
                .expect("the relay keeps the socket")
                .unwrap()
            {
                Message::Text(text) => break text,
                _ => continue,
            }
        };
        socket
            .send(Message::Text(answer_to(&offer).into()))
            .await
            .unwrap();
    }
}

/// The stand-in robot's answer to `offer`.
fn answer_to(offer: &str) -> String {
    let offer: serde_json::Value = serde_json::from_str(offer).unwrap_or_default();
    serde_json::json!({"type": "answer", "sdp": format!("answer to {}", offer["sdp"])}).to_string()
}

/// Answers every offer until the relay closes the socket (then the task ends).
pub fn answer_all(mut socket: Socket) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(offer) = message {
                let answer = Message::Text(answer_to(&offer).into());
                if socket.send(answer).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// Whether the relay closes `socket` (a close frame, or the stream ending) within 5 s.
pub async fn closed_within_5_s(socket: &mut Socket) -> Result<bool, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                return true;
            }
        }
        true
    })
    .await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    post_from([127, 0, 0, 1], addr, path, body).await
}

/// `post` from the loopback address `from` (127.0.0.2 is another client).
pub async fn post_from(
    from: [u8; 4],
    addr: SocketAddr,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap()
        .post(format!("http://{addr}/{path}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub const OFFER: &str = r#"{"type":"offer","sdp":"v=0 test"}"#;

/// `GET http://addr/path` as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let response = reqwest::get(format!("http://{addr}/{path}")).await.unwrap();
    response.json().await.unwrap()
}

/// `GET http://addr/path` as text.
pub async fn get_text(addr: SocketAddr, path: &str) -> String {
    let response = reqwest::get(format!("http://{addr}/{path}")).await.unwrap();
    response.text().await.unwrap()
}

//! The DTLS handshake under which every robot connection runs (webrtc-rs's sans-IO
//! `rtc-dtls`, patched in `native/vendor/rtc-dtls`) recovers when one flight is lost
//! whole, as it is on a lossy 4G link now and then. Two endpoints exchange datagrams in
//! memory on a virtual clock, so the loss is exactly the one chosen and the test is
//! deterministic: before the patch, a lost flight 4 or flight 5 left the handshake
//! stuck until the other side gave up after eight retransmissions.

use bytes::BytesMut;
use rtc::dtls::config::ConfigBuilder;
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::shared::TransportProtocol;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENT: &str = "127.0.0.1:5000";
const SERVER: &str = "127.0.0.1:5001";

fn addr(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// A client and a server endpoint with their own self-signed certificates; the
/// client has started its handshake.
fn pair(now: Instant) -> (Endpoint, Endpoint) {
    let provider = rtc::crypto::default_provider().expect("a built-in crypto provider");
    let config = |is_client: bool| {
        let certificate =
            Certificate::generate_self_signed(vec!["localhost".to_owned()], provider.crypto())
                .expect("a self-signed certificate");
        Arc::new(
            ConfigBuilder::default()
                .with_crypto_provider(provider.clone())
                .with_certificates(vec![certificate])
                .with_insecure_skip_verify(true)
                .with_server_name("localhost".to_owned())
                .build(is_client, None)
                .expect("a DTLS config"),
        )
    };
    let mut client = Endpoint::new(addr(CLIENT), TransportProtocol::UDP, None);
    let server = Endpoint::new(addr(SERVER), TransportProtocol::UDP, Some(config(false)));
    client
        .connect(now, addr(SERVER), config(true), None)
        .expect("the client starts its handshake");
    (client, server)
}

/// The one-way delay of the virtual link.
const DELAY: Duration = Duration::from_millis(20);

/// A datagram on its way.
struct InFlight {
    at: Duration,
    from_client: bool,
    data: BytesMut,
}

/// The handshake message type of a datagram's first record, when it is a plaintext
/// handshake record (content type 22, epoch 0).
fn handshake_type(datagram: &[u8]) -> Option<u8> {
    (datagram.len() > 13 && datagram[0] == 22 && datagram[3..5] == [0, 0]).then(|| datagram[13])
}

/// Runs the handshake on a virtual clock over a link of [`DELAY`] each way for up to
/// `limit`, losing each datagram for which `lose(from_client, datagram, sent_at)` says
/// so. Returns the virtual time it took both sides to complete.
fn handshake(
    lose: impl Fn(bool, &[u8], Duration) -> bool,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let (mut client, mut server) = pair(start);
    let (mut client_done, mut server_done) = (false, false);
    let mut link: Vec<InFlight> = Vec::new();
    let mut log = Vec::new();
    let mut t = Duration::ZERO;
    while t <= limit {
        // What each side has to send now goes on the link (or is lost).
        for from_client in [true, false] {
            let from = if from_client {
                &mut client
            } else {
                &mut server
            };
            while let Some(datagram) = from.poll_transmit() {
                let lost = lose(from_client, &datagram.message, t);
                log.push(format!(
                    "{:>5} ms {} {} bytes, handshake type {:?}{}",
                    t.as_millis(),
                    if from_client { "client" } else { "server" },
                    datagram.message.len(),
                    handshake_type(&datagram.message),
                    if lost { ": LOST" } else { "" }
                ));
                if !lost {
                    link.push(InFlight {
                        at: t + DELAY,
                        from_client,
                        data: BytesMut::from(&datagram.message[..]),
                    });
                }
            }
        }
        if client_done && server_done {
            return Ok(t);
        }
        // The next thing to happen: a datagram arriving, or a side's timer.
        let timers = [
            client.poll_timeout(&addr(SERVER)),
            server.poll_timeout(&addr(CLIENT)),
        ];
        let next = link
            .iter()
            .map(|d| d.at)
            .chain(timers.into_iter().flatten().map(|i| i - start))
            .min();
        let Some(next) = next else {
            return Err(format!(
                "the handshake is stuck: nothing on the link and no side has a timer \
                 (client done {client_done}, server done {server_done}); {log:#?}"
            ));
        };
        t = t.max(next);
        let now = start + t;
        let (arriving, rest): (Vec<_>, Vec<_>) = link.into_iter().partition(|d| d.at <= t);
        link = rest;
        for datagram in arriving {
            let (to, peer, done) = if datagram.from_client {
                (&mut server, CLIENT, &mut server_done)
            } else {
                (&mut client, SERVER, &mut client_done)
            };
            let events = to
                .read(now, addr(peer), None, datagram.data)
                .map_err(|e| format!("read: {e}; {log:#?}"))?;
            if events
                .iter()
                .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
            {
                *done = true;
            }
        }
        client
            .handle_timeout(addr(SERVER), now)
            .map_err(|e| format!("client timeout: {e}; {log:#?}"))?;
        server
            .handle_timeout(addr(CLIENT), now)
            .map_err(|e| format!("server timeout: {e}; {log:#?}"))?;
    }
    Err(format!(
        "no handshake within {limit:?} of virtual time (client done {client_done}, server \
         done {server_done}); {log:#?}"
    ))
}

/// Long enough for a few 1 s retransmissions; far less than the eight of giving up.
const LIMIT: Duration = Duration::from_secs(4);

/// The first handshake (a round trip of 40 ms each flight): before any timer.
const FIRST_TRY: Duration = Duration::from_millis(500);

#[test]
fn a_handshake_with_no_loss_completes_in_three_round_trips() {
    let took = handshake(|_, _, _| false, LIMIT).unwrap();
    assert!(took < FIRST_TRY, "took {took:?} of virtual time");
}

/// Flight 4 (ServerHello to ServerHelloDone) lost whole the first time: the client
/// resends flight 3, and the server must still resend flight 4.
#[test]
fn a_flight_4_lost_whole_is_sent_again() {
    let took = handshake(
        |from_client, datagram, t| {
            !from_client && t < FIRST_TRY && handshake_type(datagram) != Some(3)
        },
        LIMIT,
    )
    .unwrap();
    assert!(took >= Duration::from_secs(1), "a retransmission: {took:?}");
}

/// Flight 5 (the client's certificate to its Finished) lost whole the first time: the
/// server resends flight 4, and the client must still resend flight 5.
#[test]
fn a_flight_5_lost_whole_is_sent_again() {
    let took = handshake(
        |from_client, datagram, t| {
            from_client && t < FIRST_TRY && handshake_type(datagram) != Some(1)
        },
        LIMIT,
    )
    .unwrap();
    assert!(took >= Duration::from_secs(1), "a retransmission: {took:?}");
}

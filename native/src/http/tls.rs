//! HTTPS: the certificate (given in config, or generated once and kept in the state
//! folder), and a listener that serves TLS and plain HTTP on the same port, the
//! plain requests answered with a redirect to `https://` (a phone that typed the
//! address without `https` still lands on the page).
//!
//! The listener tells the two apart by the connection's first byte (a TLS record
//! starts with 22, a handshake; HTTP with a method's letter). Handshakes run in tasks
//! of their own with a time limit, at most [`MAX_HANDSHAKES`] at once, so a client
//! that connects and sends nothing holds up nobody.
//!
//! rustls with the `ring` provider (already the WebRTC stack's); `rcgen` makes the
//! certificate, `x509-parser` reads its public key for the SPKI pin Chromium's
//! `--ignore-certificate-errors-spki-list` takes.

use crate::auth::store::{ensure_dir, write_private, StoreError};
pub use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Handshakes and plain-HTTP redirects in progress at once; more connections wait
/// to be accepted.
pub const MAX_HANDSHAKES: usize = 64;
/// The longest a client may take to send its first byte and finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why HTTPS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The state folder or a file in it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PEM file is missing or unusable.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Making the certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not make a TLS server: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate served, and what a user checks it by.
#[derive(Clone)]
pub struct TlsIdentity {
    /// rustls's server side (HTTP/1.1 by ALPN).
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, `AB:CD:...`, as browsers show it.
    pub fingerprint: String,
    /// SHA-256 of its public key (SPKI), base64: what
    /// `--ignore-certificate-errors-spki-list` pins.
    pub spki_sha256: String,
    /// The certificate file.
    pub cert_path: PathBuf,
    /// It was generated just now.
    pub generated: bool,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

/// The generated certificate's files in the state folder.
pub const GENERATED_CERT: &str = "tls/cert.pem";
/// Its key.
pub const GENERATED_KEY: &str = "tls/key.pem";

/// The identity `config` names, or the one kept in `state_dir` (generated on the
/// first call, for `localhost`, this machine's name and `addresses`).
pub fn identity(
    config: &TlsConfig,
    state_dir: &Path,
    addresses: &[IpAddr],
) -> Result<TlsIdentity, TlsError> {
    let (cert_path, key_path, generated) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let cert = state_dir.join(GENERATED_CERT);
            let key = state_dir.join(GENERATED_KEY);
            let generated = !cert.exists();
            if generated {
                generate(&cert, &key, addresses)?;
            }
            (cert, key, generated)
        }
    };
    let pem = |what, path: &Path, reason: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| pem("certificate", &cert_path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem("certificate", &cert_path, e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| pem("certificate", &cert_path, "no CERTIFICATE block".into()))?
        .clone();
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| pem("private key", &key_path, e.to_string()))?;
    let spki = spki_of(&leaf).map_err(|reason| pem("certificate", &cert_path, reason))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    // HTTP/1.1 only: what axum serves here (its `http2` feature is off); offering h2
    // would have browsers speak it to a server that does not.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        server: Arc::new(server),
        fingerprint: fingerprint(&leaf),
        spki_sha256: spki_sha256(&spki),
        cert_path,
        generated,
    })
}

fn generate(cert: &Path, key: &Path, addresses: &[IpAddr]) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
            names.push(format!("{host}.local"));
        }
    }
    names.extend(addresses.iter().map(IpAddr::to_string));
    names.push("127.0.0.1".into());
    names.dedup();
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    if let Some(dir) = cert.parent() {
        ensure_dir(dir)?;
    }
    write_private(key, made.signing_key.serialize_pem().as_bytes())?;
    write_private(cert, made.cert.pem().as_bytes())?;
    Ok(())
}

/// The certificate's DER SubjectPublicKeyInfo.
fn spki_of(cert: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| e.to_string())?;
    Ok(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

/// `AB:CD:...` of the certificate's SHA-256.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    sha256(cert.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// base64 of the SPKI's SHA-256.
pub fn spki_sha256(spki: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(sha256(spki).as_ref())
}

/// A listener serving TLS on `listener`'s port, and redirecting plain HTTP to it;
/// hand it to `axum::serve` (as [`crate::http::serve_app_tls`] does).
pub struct TlsListener {
    local: SocketAddr,
    accepted: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    /// Starts accepting on `listener`.
    pub fn new(listener: TcpListener, server: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(MAX_HANDSHAKES);
        let task = tokio::spawn(accept_loop(listener, server, tx));
        Ok(Self {
            local,
            accepted,
            task,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (it does not, short of a panic): nothing more
            // will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

type Accepted = mpsc::Sender<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>;

async fn accept_loop(listener: TcpListener, server: Arc<rustls::ServerConfig>, tx: Accepted) {
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait, as axum does.
                tracing::warn!("accepting a connection failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let local = listener.local_addr().ok();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, first_byte(&stream)).await {
                Ok(Ok(22)) => {}
                Ok(Ok(_)) => {
                    // Holding its slot: plain connections are bounded with the rest.
                    redirect(stream, local).await;
                    return;
                }
                _ => return,
            }
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

async fn first_byte(stream: &TcpStream) -> std::io::Result<u8> {
    let mut byte = [0u8; 1];
    if stream.peek(&mut byte).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(byte[0])
}

/// Answers one plain-HTTP connection's requests with redirects to `https://` (same
/// host and port, same path): 307, which browsers do not cache for good, so turning
/// TLS off later leaves no browser stuck.
async fn redirect(stream: TcpStream, local: Option<SocketAddr>) {
    use hyper::body::Incoming;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let target = https_target(
            request
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok()),
            request.uri().path_and_query().map_or("/", |p| p.as_str()),
            local,
        );
        async move {
            let response = hyper::Response::builder()
                .status(hyper::StatusCode::TEMPORARY_REDIRECT)
                .header(hyper::header::LOCATION, target)
                .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"this robot serves HTTPS: follow the Location header\n",
                )))
                .expect("a redirect from valid parts");
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    // A redirect needs one request: the connection gets the handshake's time.
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection).await;
}

/// Where a plain request for `path` to `host` goes: `https://host/path`; without a
/// usable Host header, the listener's own address.
pub fn https_target(host: Option<&str>, path: &str, local: Option<SocketAddr>) -> String {
    let host = host
        .filter(|h| !h.is_empty() && h.parse::<axum::http::uri::Authority>().is_ok())
        .map(str::to_owned)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("https://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_host_port_and_path() {
        assert_eq!(
            https_target(Some("192.168.1.5:8080"), "/?token=abc", None),
            "https://192.168.1.5:8080/?token=abc"
        );
        let local = Some("10.0.0.1:8443".parse().unwrap());
        assert_eq!(https_target(None, "/x", local), "https://10.0.0.1:8443/x");
        assert_eq!(
            https_target(Some("bad host\r\n"), "/", local),
            "https://10.0.0.1:8443/"
        );
    }

    #[test]
    fn cert_and_key_come_together() {
        let only_cert = TlsConfig {
            enabled: true,
            cert: Some("c.pem".into()),
            key: None,
        };
        assert_eq!(only_cert.validate().unwrap_err().0, "tls.key");
        TlsConfig::default().validate().unwrap();
    }

    #[test]
    fn the_generated_certificate_is_kept_and_named_by_its_fingerprints() {
        let dir = std::env::temp_dir().join(format!("rtcbot-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = TlsConfig {
            enabled: true,
            ..TlsConfig::default()
        };
        let first = identity(&config, &dir, &["192.168.1.5".parse().unwrap()]).unwrap();
        assert!(first.generated);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        assert_eq!(first.spki_sha256.len(), 44);
        let again = identity(&config, &dir, &[]).unwrap();
        assert!(!again.generated);
        assert_eq!(again.fingerprint, first.fingerprint);
        assert_eq!(again.spki_sha256, first.spki_sha256);
        // The same files given as config make the same identity.
        let given = TlsConfig {
            enabled: true,
            cert: Some(dir.join(GENERATED_CERT)),
            key: Some(dir.join(GENERATED_KEY)),
        };
        assert_eq!(
            identity(&given, &dir, &[]).unwrap().fingerprint,
            first.fingerprint
        );
        let missing = TlsConfig {
            cert: Some(dir.join("nope.pem")),
            key: Some(dir.join("nope.key")),
            ..given
        };
        let err = identity(&missing, &dir, &[]).unwrap_err().to_string();
        assert!(err.contains("cannot read certificate from"), "{err}");
    }
}

//! For tests and benchmarks of relays sharing rooms: a throwaway `redis-server`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the server may take to be ready (and what tests wait for events).
pub const WAIT: Duration = Duration::from_secs(10);

/// A `redis-server` of its own (Debian's `redis-server`), saving nothing, in a
/// temporary folder; dropping it kills it.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisServer {
    /// On `port` (0: a free one), ready to take connections when this returns; an
    /// error says why not (no `redis-server`: `apt-get install redis-server`).
    pub fn start(port: u16) -> std::io::Result<Self> {
        let port = match port {
            0 => std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
            port => port,
        };
        let dir =
            std::env::temp_dir().join(format!("rtcbot-relay-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("starting redis-server (apt-get install redis-server): {e}"),
                )
            })?;
        let stdout = child.stdout.take().map(BufReader::new);
        let mut server = Self { port, dir, child };
        // Its log says when it takes connections; the rest of the log is drained.
        let (ready, is_ready) = std::sync::mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                for line in stdout.lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Ready to accept connections") {
                        let _ = ready.send(());
                    }
                }
            });
        }
        if is_ready.recv_timeout(WAIT).is_err() {
            let exited = server.child.try_wait().ok().flatten();
            return Err(std::io::Error::other(format!(
                "redis-server on port {port} was not ready within {WAIT:?} ({})",
                exited.map_or("still running".into(), |s| format!("it exited: {s}"))
            )));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

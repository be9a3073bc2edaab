//! A real pseudo-terminal pair from `socat`, standing in for an Arduino on a USB
//! serial port: the robot opens one end by its stable `link=` path, the test plays the
//! Arduino on the other end.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long socat may take to create its ptys.
const START: Duration = Duration::from_secs(10);

/// A unique scratch folder for one test's pty links.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcbot-pty-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// One running socat with two linked ptys.
pub struct PtyPair {
    child: Child,
    /// The end the robot opens (`serial.path`).
    pub robot: PathBuf,
    /// The end the test-Arduino opens.
    pub arduino: PathBuf,
}

impl PtyPair {
    /// Starts socat with links `robot` and `arduino` in `dir`, and waits until it is
    /// transferring data (it says so on stderr).
    pub fn start(dir: &Path) -> Self {
        let robot = dir.join("robot");
        let arduino = dir.join("arduino");
        let mut child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", robot.display()))
            .arg(format!("pty,raw,echo=0,link={}", arduino.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("socat is installed (apt install socat)");
        let stderr = child.stderr.take().expect("socat stderr");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("starting data transfer loop") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(START)
            .unwrap_or_else(|_| panic!("socat did not start its ptys within {START:?}"));
        Self {
            child,
            robot,
            arduino,
        }
    }

    /// "Unplugs" the Arduino: stops socat with SIGTERM (it removes its links) and
    /// waits for it to exit.
    pub fn unplug(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Opens the Arduino end.
    pub fn arduino(&self) -> Arduino {
        Arduino::open(&self.arduino)
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.unplug();
        }
    }
}

/// The test's side of the serial line: what an Arduino sketch would read and write.
pub struct Arduino {
    writer: std::fs::File,
    bytes: mpsc::UnboundedReceiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl Arduino {
    fn open(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let mut reader = file.try_clone().expect("cloning the pty");
        let (tx, bytes) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            // Ends when the pty closes (socat stopped).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            writer: file,
            bytes,
            buf: Vec::new(),
        }
    }

    /// Sends bytes to the robot.
    pub fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("writing to the robot");
        self.writer.flush().expect("flushing to the robot");
    }

    /// Waits for exactly `n` bytes from the robot (no timeout: wrap it in `within`).
    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let more = self.bytes.recv().await.expect("the pty closed");
            self.buf.extend_from_slice(&more);
        }
        self.buf.drain(..n).collect()
    }

    /// Drops everything received so far.
    pub fn clear(&mut self) {
        while self.bytes.try_recv().is_ok() {}
        self.buf.clear();
    }
}

//! Shared by the Raspberry Pi build's checks (pi_qemu.rs, pi_deb.rs): a robot binary
//! run as a child process until it says where it listens, and a throwaway folder.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The flags of a robot for these checks: loopback, the test pattern, no sound, plain
/// HTTP, quiet, its address printed first.
pub const ROBOT_FLAGS: [&str; 11] = [
    "--listen",
    "127.0.0.1:0",
    "--ice-udp",
    "127.0.0.1:0",
    "--camera",
    "test-pattern",
    "--audio",
    "none",
    "--no-tls",
    "--quiet",
    "--print-addr",
];

/// A running robot process, killed on drop, and the `http://` URL it listens on.
pub struct RunningRobot {
    pub child: Child,
    pub url: String,
}

impl Drop for RunningRobot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningRobot {
    /// Spawns `cmd` (a robot with `--print-addr`, its stdout piped here) and waits up
    /// to `wait` for its `listening on <addr>` line; a robot that exits first fails
    /// the test with its exit status.
    pub fn start(mut cmd: Command, wait: Duration) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("{cmd:?}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = match rx.recv_timeout(wait) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the robot printed no address within {wait:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the robot exited before listening: {:?}", child.wait())
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not an address line: {line:?}"));
        Self {
            url: format!("http://{addr}"),
            child,
        }
    }
}

/// A throwaway folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rtcbot-pi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp folder");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Network namespaces with a veth interface, for what needs a non-loopback address
//! (Janus gathers no loopback candidates) without touching the host's network.
//!
//! [`rerun_command`] runs this program again inside a new network namespace
//! (`unshare --net`) whose loopback is up and which may have a veth pair, one end with
//! an address (this kernel has no `dummy`); the re-run knows it is inside by an
//! environment variable ([`inside`]). It needs root, util-linux's `unshare` and
//! iproute2's `ip`.

use std::path::Path;
use std::process::Command;

/// A veth pair: `name` gets `address` (CIDR, e.g. `10.88.0.1/24`), `peer` is only up.
#[derive(Debug, Clone, Copy)]
pub struct Veth<'a> {
    /// The end with the address.
    pub name: &'a str,
    /// The other end.
    pub peer: &'a str,
    /// `name`'s address with its prefix length.
    pub address: &'a str,
}

/// Whether this process is the re-run marked `marker` = `value`.
pub fn inside(marker: &str, value: &str) -> bool {
    std::env::var(marker).is_ok_and(|v| v == value)
}

/// The shell commands that bring up loopback and `veth`.
pub fn setup_script(veth: &Veth) -> String {
    format!(
        "ip link set lo up; ip link add {name} type veth peer name {peer}; \
         ip addr add {address} dev {name}; ip link set {peer} up; ip link set {name} up",
        name = veth.name,
        peer = veth.peer,
        address = veth.address,
    )
}

/// `program` (add its arguments) inside a new network namespace with loopback up and
/// `veth` if given, with `marker` = `value` in its environment so it knows
/// ([`inside`]).
pub fn rerun_command(program: &Path, veth: Option<&Veth>, marker: &str, value: &str) -> Command {
    let setup = veth.map_or_else(|| "ip link set lo up".to_owned(), setup_script);
    let script = format!("set -e; {setup}; exec \"$0\" \"$@\"");
    let mut command = Command::new("unshare");
    command
        .args(["--net", "--", "sh", "-c", &script])
        .arg(program)
        .env(marker, value);
    command
}

/// Runs `command`, a test binary's re-run of one of its tests inside a namespace
/// (see [`rerun_command`]), and echoes its output: its lines prefixed `inner:`, its
/// "test result" line renamed so that the runner's summary counts the test once, from
/// the outer run. Panics, saying the run `needs` what it names, when the run failed.
pub fn run_inner_test(command: &mut Command, needs: &str) {
    let run = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    for line in String::from_utf8_lossy(&run.stdout).lines() {
        println!("  inner: {}", line.replace("test result:", "inner result:"));
    }
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        run.status.success(),
        "the run in its own network namespace failed ({}); it needs {needs}: see its \
         output above",
        run.status
    );
}

/// Bytes sent on `interface` as counted in the network namespace of process `pid`
/// (`/proc/<pid>/net/dev`): every frame out of it, Ethernet, IP and UDP/TCP headers
/// included.
pub fn tx_bytes(pid: u32, interface: &str) -> Option<u64> {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    dev.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != interface {
            return None;
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        counters.split_whitespace().nth(8)?.parse().ok()
    })
}

//! The robot process's own resources, for `/health` and the soak test: resident
//! memory, threads and open file descriptors (from `/proc/self`, Linux) and live
//! tokio tasks. A figure that cannot be read here is `None`.

use serde::Serialize;

/// One reading of the process's resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcessStats {
    /// Resident memory, KiB (`VmRSS`).
    pub rss_kib: Option<u64>,
    /// Threads of the process.
    pub threads: Option<u64>,
    /// Open file descriptors (sockets included).
    pub fds: Option<u64>,
    /// Tasks alive on the current tokio runtime (none outside one).
    pub tasks: Option<u64>,
}

impl ProcessStats {
    /// Reads the figures now.
    pub fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let field = |name: &str| status.as_deref().and_then(|s| status_field(s, name));
        Self {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            tasks: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().num_alive_tasks() as u64),
        }
    }
}

/// The number after `name` in `/proc/self/status` text (`VmRSS:   1234 kB`).
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_of_proc_status() {
        let status = "Name:\trtcbot-robot\nVmRSS:\t   20480 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(20480));
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "VmSwap:"), None);
        assert_eq!(status_field("VmRSS:\tlots kB\n", "VmRSS:"), None);
    }

    #[tokio::test]
    async fn reads_this_process() {
        let now = ProcessStats::now();
        if cfg!(target_os = "linux") {
            assert!(now.rss_kib.unwrap() > 0);
            assert!(now.threads.unwrap() >= 1);
            assert!(now.fds.unwrap() >= 3, "stdin, stdout, stderr at least");
        }
        assert!(now.tasks.is_some(), "inside a runtime");
    }
}

//! A Janus of our own, for the SFU tests, the browser test's `rtcbot-janus` and the
//! `rtcbot-sfu-bench` benchmark: Debian's `janus` (1.1.2) started on a generated
//! config, the VideoRoom plugin over the plain HTTP transport only, one room.
//!
//! [`JanusServer::configure`] writes `janus.jcfg`, `janus.transport.http.jcfg` and
//! `janus.plugin.videoroom.jcfg` into a folder (every other plugin, transport and
//! logger Debian ships is disabled, event handlers too); [`JanusServer::start`] starts `janus`
//! on them, its output going to `janus.log` in the same folder, and returns once
//! `GET /janus/info` answers, or fails with the log's tail if Janus exits or never
//! answers. Janus is killed on drop.
//!
//! Janus gathers no loopback candidates: [`JanusOptions::interface`] names the one
//! interface it gathers on (`nat.ice_enforce_list`), e.g. a veth of a network
//! namespace of its own ([`crate::namespace`]).
//!
//! The HTTP transport answers cross-origin requests: with no `allow_origin` set Janus
//! adds `Access-Control-Allow-Origin: *` to every reply and answers `OPTIONS`
//! preflights with the methods and headers asked for, so a page on another origin can
//! call the API ([`JanusOptions::allow_origin`] narrows it to one origin).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// Where and how a [`JanusServer`] runs.
#[derive(Debug, Clone)]
pub struct JanusOptions {
    /// The folder for the config files and `janus.log` (created if missing).
    pub dir: PathBuf,
    /// The address the HTTP API listens on.
    pub http_ip: String,
    /// The HTTP API's port.
    pub port: u16,
    /// The VideoRoom room the config creates.
    pub room: u64,
    /// The room's secret, if any.
    pub secret: Option<String>,
    /// The only interface Janus gathers ICE candidates on (`ice_enforce_list`).
    pub interface: String,
    /// Janus's RTP/ICE UDP ports, first and last.
    pub rtp_ports: (u16, u16),
    /// Publishers the room takes at once.
    pub publishers: u32,
    /// The one origin the API answers cross-origin requests from (`cors.allow_origin`);
    /// `None`: any (`Access-Control-Allow-Origin: *`).
    pub allow_origin: Option<String>,
    /// How long [`JanusServer::start`] waits for the API to answer.
    pub ready_timeout: Duration,
}

impl JanusOptions {
    /// Janus in `dir`, gathering on `interface`: the API on 127.0.0.1:18088, room
    /// 1234 without a secret, RTP ports 20000-20200, three publishers.
    pub fn new(dir: impl Into<PathBuf>, interface: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            http_ip: "127.0.0.1".into(),
            port: 18088,
            room: 1234,
            secret: None,
            interface: interface.into(),
            rtp_ports: (20000, 20200),
            publishers: 3,
            allow_origin: None,
            ready_timeout: Duration::from_secs(20),
        }
    }
}

/// A Janus process of our own (none until [`JanusServer::start`]); killed on drop.
pub struct JanusServer {
    options: JanusOptions,
    child: Option<Child>,
}

/// The folder of Debian's Janus plugins, transports and the rest.
fn janus_lib() -> anyhow::Result<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/janus",
        "/usr/lib/aarch64-linux-gnu/janus",
        "/usr/lib/janus",
    ]
    .into_iter()
    .find(|p| Path::new(p).join("plugins/libjanus_videoroom.so").exists())
    .context("no Janus VideoRoom plugin: install Debian's `janus` (apt-get install -y janus)")
}

/// The `.so` files of a folder (none if it is missing).
fn libraries(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so"))
        .collect()
}

impl JanusServer {
    /// Writes the config files into `options.dir`; Janus is not started yet.
    pub fn configure(options: JanusOptions) -> anyhow::Result<Self> {
        let dir = &options.dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lib = janus_lib()?;
        let disabled = |folder: &str, keep: &str| {
            libraries(&format!("{lib}/{folder}"))
                .into_iter()
                .filter(|n| n != keep)
                .collect::<Vec<_>>()
                .join(",")
        };
        let (first, last) = options.rtp_ports;
        let janus = format!(
            "general: {{\n configs_folder = \"{dir}\"\n plugins_folder = \"{lib}/plugins\"\n \
             transports_folder = \"{lib}/transports\"\n events_folder = \"{lib}/events\"\n \
             loggers_folder = \"{lib}/loggers\"\n debug_level = 4\n session_timeout = 60\n}}\n\
             media: {{\n rtp_port_range = \"{first}-{last}\"\n}}\n\
             nat: {{\n ice_enforce_list = \"{interface}\"\n}}\n\
             plugins: {{\n disable = \"{plugins}\"\n}}\n\
             transports: {{\n disable = \"{transports}\"\n}}\n\
             events: {{\n broadcast = false\n}}\n\
             loggers: {{\n disable = \"{loggers}\"\n}}\n",
            dir = dir.display(),
            interface = options.interface,
            plugins = disabled("plugins", "libjanus_videoroom.so"),
            transports = disabled("transports", "libjanus_http.so"),
            loggers = disabled("loggers", ""),
        );
        let cors = match &options.allow_origin {
            Some(origin) => format!("cors: {{\n allow_origin = \"{origin}\"\n}}\n"),
            None => String::new(),
        };
        let http = format!(
            "general: {{\n json = \"compact\"\n base_path = \"/janus\"\n http = true\n \
             port = {port}\n ip = \"{ip}\"\n https = false\n}}\n\
             admin: {{\n admin_http = false\n}}\n{cors}",
            port = options.port,
            ip = options.http_ip,
        );
        let secret = match &options.secret {
            Some(secret) => format!(" secret = \"{secret}\"\n"),
            None => String::new(),
        };
        let videoroom = format!(
            "room-{room}: {{\n description = \"rtcbot\"\n{secret} \
             publishers = {publishers}\n videocodec = \"h264\"\n h264_profile = \"42e01f\"\n \
             audiocodec = \"opus\"\n bitrate = 2000000\n fir_freq = 2\n}}\n",
            room = options.room,
            publishers = options.publishers,
        );
        for (name, text) in [
            ("janus.jcfg", janus),
            ("janus.transport.http.jcfg", http),
            ("janus.plugin.videoroom.jcfg", videoroom),
        ] {
            std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        Ok(Self {
            options,
            child: None,
        })
    }

    /// Starts Janus (again, after [`JanusServer::kill`]) and returns once its API
    /// answers `GET /info`; fails with the log's tail if Janus exits first or does not
    /// answer within [`JanusOptions::ready_timeout`].
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.kill();
        let dir = &self.options.dir;
        let log = std::fs::File::create(dir.join("janus.log")).context("creating janus.log")?;
        let child = Command::new("janus")
            .arg("-F")
            .arg(dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            // A plain log, for the log's tail in errors.
            .arg("--disable-colors")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start janus: install Debian's `janus` (apt-get install -y janus)")?;
        self.child = Some(child);
        let http = reqwest::Client::new();
        let info = format!("{}/info", self.api());
        let ready = tokio::time::timeout(self.options.ready_timeout, async {
            loop {
                if let Some(child) = self.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("janus exited ({status})"));
                    }
                }
                if let Ok(r) = http.get(&info).send().await {
                    if r.status().is_success() {
                        return Ok(());
                    }
                }
                // Polling a process we do not control: it has no readiness signal.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let why = match ready {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(why)) => why,
            Err(_) => format!(
                "Janus's API ({info}) did not answer in {:?}",
                self.options.ready_timeout
            ),
        };
        self.kill();
        bail!("{why}; the end of janus.log:\n{}", self.log_tail(40))
    }

    /// The HTTP API's URL, e.g. `http://127.0.0.1:18088/janus`.
    pub fn api(&self) -> String {
        format!(
            "http://{}:{}/janus",
            self.options.http_ip, self.options.port
        )
    }

    /// The options it was configured with.
    pub fn options(&self) -> &JanusOptions {
        &self.options
    }

    /// Janus's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of `janus.log`.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.options.dir.join("janus.log")).unwrap_or_default();
        let all: Vec<_> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether Janus has exited since it was started (or was never started).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Kills Janus (if it runs) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JanusServer {
    fn drop(&mut self) {
        self.kill();
    }
}

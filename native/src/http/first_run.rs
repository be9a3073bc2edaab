//! The block the robot prints when it starts: where to open it (every LAN address,
//! with the token inside the URL), a QR code of the first one for a phone, what it
//! streams, and how to stop it.
//!
//! [`FirstRun::render`] is pure (the tests read its lines); [`lan_addresses`] asks the
//! system which addresses the listener is reachable on.

use std::net::{IpAddr, SocketAddr};

/// What the block says.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstRun {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The port served.
    pub port: u16,
    /// Addresses other machines reach the robot on (LAN first), without loopback.
    pub addresses: Vec<IpAddr>,
    /// Whether `localhost` reaches it too.
    pub local: bool,
    /// The token to put in the URLs (the driver's), if auth is on.
    pub token: Option<String>,
    /// One line each: camera, encoder, audio, auth, TLS...
    pub facts: Vec<(&'static str, String)>,
}

impl FirstRun {
    /// The URL for `host`, with the token.
    pub fn url(&self, host: &str) -> String {
        let token = match &self.token {
            Some(t) => format!("?token={t}"),
            None => String::new(),
        };
        format!("{}://{host}:{}/{token}", self.scheme, self.port)
    }

    /// Every URL to print: the LAN ones, then localhost.
    pub fn urls(&self) -> Vec<String> {
        let mut urls: Vec<_> = self
            .addresses
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => self.url(&v4.to_string()),
                IpAddr::V6(v6) => self.url(&format!("[{v6}]")),
            })
            .collect();
        if self.local {
            urls.push(self.url("localhost"));
        }
        urls
    }

    /// The block; `qr` adds a QR code of the first LAN URL, `color` draws it black on
    /// white with ANSI colours (for a terminal of any theme).
    pub fn render(&self, qr: bool, color: bool) -> String {
        let mut out = String::from("\nrtcbot-robot is running.\n\n");
        let urls = self.urls();
        let lan = urls.len() - usize::from(self.local);
        if lan > 0 {
            out.push_str("  Open on a phone or laptop on this network:\n");
            for url in &urls[..lan] {
                out.push_str(&format!("    {url}\n"));
            }
        } else {
            out.push_str("  No network address reaches this robot from another machine.\n");
        }
        if self.local {
            out.push_str(&format!("  On this machine: {}\n", urls[lan]));
        }
        if qr && lan > 0 {
            if let Some(code) = qr_code(&urls[0], color) {
                out.push('\n');
                out.push_str(&code);
            }
        }
        out.push('\n');
        let width = self.facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.facts {
            out.push_str(&format!("  {key:<width$}  {value}\n"));
        }
        out.push_str(&format!("  {:<width$}  Ctrl-C\n\n", "Stop"));
        out
    }
}

/// `text` as a QR code in half-height block characters, two modules a character
/// row, with the quiet zone scanners need.
pub fn qr_code(text: &str, color: bool) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let art = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    let mut out = String::new();
    for line in art.lines() {
        if color {
            out.push_str(&format!("    \x1b[30;47m{line}\x1b[0m\n"));
        } else {
            out.push_str(&format!("    {line}\n"));
        }
    }
    Some(out)
}

/// The addresses a listener on `listen` is reachable on from other machines: every
/// up, non-loopback, non-link-local interface address when it listens on all of them
/// (IPv4 first), else its own address. Returns them with whether `localhost` reaches
/// it too.
pub fn lan_addresses(listen: SocketAddr) -> (Vec<IpAddr>, bool) {
    let ip = listen.ip();
    if !ip.is_unspecified() {
        return if ip.is_loopback() {
            (Vec::new(), true)
        } else {
            (vec![ip], false)
        };
    }
    let mut found: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| usable(*ip, listen.is_ipv6()))
        .collect();
    found.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    found.dedup();
    (found, true)
}

/// Whether another machine could reach `ip` (IPv6 ones only when listening on `[::]`).
fn usable(ip: IpAddr, v6_listener: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => v6_listener && !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> FirstRun {
        FirstRun {
            scheme: "https",
            port: 8080,
            addresses: vec!["192.168.1.5".parse().unwrap(), "fd00::5".parse().unwrap()],
            local: true,
            token: Some("abcdefghijklmnopqrstuvwxyz012345".into()),
            facts: vec![
                ("Camera", "test pattern 640x480@30".into()),
                ("TLS", "on".into()),
            ],
        }
    }

    #[test]
    fn every_address_gets_a_url_with_the_token() {
        let b = block();
        assert_eq!(
            b.urls(),
            [
                "https://192.168.1.5:8080/?token=abcdefghijklmnopqrstuvwxyz012345",
                "https://[fd00::5]:8080/?token=abcdefghijklmnopqrstuvwxyz012345",
                "https://localhost:8080/?token=abcdefghijklmnopqrstuvwxyz012345",
            ]
        );
        let open = FirstRun { token: None, ..b };
        assert_eq!(open.url("localhost"), "https://localhost:8080/");
    }

    #[test]
    fn the_block_lists_urls_a_qr_code_and_facts() {
        let text = block().render(true, false);
        assert!(text.contains(
            "  Open on a phone or laptop on this network:\n    https://192.168.1.5:8080/?token="
        ));
        assert!(text.contains("  On this machine: https://localhost:8080/"));
        assert!(text.contains("  Camera  test pattern 640x480@30\n"));
        assert!(text.contains("  Stop    Ctrl-C\n"));
        assert!(
            text.contains('▀') || text.contains('▄'),
            "a QR code: {text}"
        );
        let coloured = block().render(true, true);
        assert!(coloured.contains("\x1b[30;47m"));
        let plain = block().render(false, false);
        assert!(!plain.contains('▀'));
        let nowhere = FirstRun {
            addresses: vec![],
            local: true,
            ..block()
        };
        let text = nowhere.render(true, false);
        assert!(text.contains("No network address reaches"), "{text}");
        assert!(!text.contains('▀'), "no QR code of localhost: {text}");
    }

    #[test]
    fn a_qr_code_holds_a_long_url() {
        let code = qr_code(&block().urls()[0], false).unwrap();
        // Version 4 or so: a few dozen rows of two modules each.
        let rows = code.lines().count();
        assert!((10..=40).contains(&rows), "{rows} rows");
    }

    #[test]
    fn addresses_of_a_specific_listener_are_its_own() {
        let (ips, local) = lan_addresses("127.0.0.1:8080".parse().unwrap());
        assert!(ips.is_empty() && local);
        let (ips, local) = lan_addresses("10.1.2.3:8080".parse().unwrap());
        assert_eq!(
            (ips, local),
            (vec!["10.1.2.3".parse::<IpAddr>().unwrap()], false)
        );
        let (ips, local) = lan_addresses("0.0.0.0:8080".parse().unwrap());
        assert!(local);
        assert!(
            ips.iter().all(|ip| !ip.is_loopback() && ip.is_ipv4()),
            "{ips:?}"
        );
        assert!(!usable("169.254.1.1".parse().unwrap(), false));
        assert!(!usable("fe80::1".parse().unwrap(), true));
        assert!(usable("fd00::1".parse().unwrap(), true));
    }
}

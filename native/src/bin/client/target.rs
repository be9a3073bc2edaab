//! Which robot: the URL a user types (the robot's page, its `/connect`, or a relay
//! room) → where the offer goes and what to connect with.

use anyhow::{bail, Context};
use rtcbot::ClientOptions;
use std::path::PathBuf;

/// Where to POST the offer for what the user typed: a robot's address
/// (`http://robot:8080`, `…/?token=…`: its `/connect`), its `/connect` itself, or a
/// relay room (`https://relay.example/room`: the room). The query (`?token=`) stays.
pub fn connect_url(typed: &str) -> anyhow::Result<String> {
    let with_scheme = if typed.contains("://") {
        typed.to_owned()
    } else {
        format!("http://{typed}")
    };
    let mut url =
        reqwest::Url::parse(&with_scheme).with_context(|| format!("the URL {typed:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("the URL {typed:?} is not http:// or https://");
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("the URL {typed:?} has no host");
    }
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    if path.is_empty() {
        url.set_path("/connect");
    } else {
        // `/connect` as typed, or a relay room (its offers go to the room itself).
        url.set_path(&path);
    }
    Ok(url.into())
}

/// What every subcommand takes besides the URL.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The robot's token (its driver token to drive); a `?token=` in the URL works too.
    #[arg(long, env = "RTCBOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The robot's certificate (its `tls/cert.pem`) to trust an `https://` robot with a
    /// self-signed one.
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// Local UDP addresses for ICE (repeatable).
    #[arg(long = "ice-udp", value_name = "ADDR", default_values = ["0.0.0.0:0", "127.0.0.1:0"])]
    pub ice_udp: Vec<String>,
}

impl Connection {
    /// The client's options, asking for video (and no audio).
    pub fn options(&self, video: bool) -> anyhow::Result<ClientOptions> {
        let robot_certificate = match &self.cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        Ok(ClientOptions {
            video,
            ice_udp: self.ice_udp.clone(),
            token: self.token.clone(),
            robot_certificate,
            ..ClientOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_robot_address_goes_to_its_connect() {
        let url = |s| connect_url(s).unwrap();
        assert_eq!(url("http://robot:8080"), "http://robot:8080/connect");
        assert_eq!(url("http://robot:8080/"), "http://robot:8080/connect");
        assert_eq!(url("robot.local:8080"), "http://robot.local:8080/connect");
        assert_eq!(
            url("https://10.0.0.2:8080/?token=abc#x"),
            "https://10.0.0.2:8080/connect?token=abc"
        );
        assert_eq!(url("http://r:1/connect"), "http://r:1/connect");
    }

    #[test]
    fn a_relay_room_is_posted_to_as_it_is() {
        assert_eq!(
            connect_url("https://relay.example/kitchen-bot/?token=t").unwrap(),
            "https://relay.example/kitchen-bot?token=t"
        );
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        let err = |s| connect_url(s).unwrap_err().to_string();
        assert!(
            err("ftp://robot").contains("not http"),
            "{}",
            err("ftp://robot")
        );
        assert!(err("http://").contains("URL"));
        assert!(err("http://[::1").contains("URL"));
    }
}

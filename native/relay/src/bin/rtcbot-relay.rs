//! `rtcbot-relay`: the relay binary, a thin shell over the `rtcbot_relay` library.
//!
//! `rtcbot-relay [--listen 0.0.0.0:8080] [--config relay.toml] [--room-key ROOM=KEY]...
//! [--redis redis://HOST:PORT]`

use anyhow::Context;
use clap::Parser;
use rtcbot_relay::RelayConfig;
use std::path::PathBuf;

/// A signaling relay with rooms (rtcbot.dev's protocol): robots connect to
/// ws://HOST:PORT/ROOM, browsers POST their offers to http://HOST:PORT/ROOM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A TOML file of settings (see the README); the flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to listen.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// A room only the robot with this key may take, as ROOM=KEY (repeatable).
    #[arg(long = "room-key", value_name = "ROOM=KEY")]
    room_keys: Vec<String>,
    /// Seconds an offer waits for the robot's answer.
    #[arg(long)]
    offer_timeout_s: Option<f64>,
    /// The built browser app (e.g. www/dist), served at /ROOM/ to connect through
    /// the room.
    #[arg(long)]
    www: Option<PathBuf>,
    /// A STUN URL handed to pages (repeatable).
    #[arg(long = "stun-url", value_name = "URL")]
    stun_urls: Vec<String>,
    /// A TURN URL handed to pages with short-lived credentials (repeatable; the
    /// secret they are minted with, coturn's static-auth-secret, goes in the config
    /// file's `turn_secret`, not on a command line that `ps` shows).
    #[arg(long = "turn-url", value_name = "URL")]
    turn_urls: Vec<String>,
    /// Redis shared with other relays (redis://HOST:PORT), so that a robot on any of
    /// them is reached through each (a password goes in the config file's
    /// `redis_url`).
    #[arg(long = "redis", value_name = "URL")]
    redis: Option<String>,
}

fn config(args: Args) -> anyhow::Result<RelayConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => RelayConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.stun_urls.extend(args.stun_urls);
    config.turn_urls.extend(args.turn_urls);
    if let Some(www) = args.www {
        config.www = Some(www);
    }
    if let Some(url) = args.redis {
        config.redis_url = Some(url);
    }
    if let Some(timeout) = args.offer_timeout_s {
        config.offer_timeout_s = timeout;
    }
    for pair in &args.room_keys {
        let (room, key) = pair
            .split_once('=')
            .with_context(|| format!("--room-key {pair:?}: expected ROOM=KEY"))?;
        config.room_keys.insert(room.to_owned(), key.to_owned());
    }
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let config = config(Args::parse())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("rtcbot-relay on http://{addr}: robots connect to ws://{addr}/ROOM");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    rtcbot_relay::run(listener, config, shutdown).await?;
    Ok(())
}

//! `rtcbot-robot`: serve the robot's page and WebRTC peers.
//!
//! A thin shell over the `rtcbot` library: read the configuration, start the robot,
//! serve HTTP until Ctrl-C or SIGTERM, then close every peer and stop the motors.

use anyhow::Context;
use clap::Parser;
use rtcbot::config::{Config, RobotArgs, RobotCommand};
use rtcbot::{server, Robot};
use tracing_subscriber::EnvFilter;

/// Our logs at info; the WebRTC stack's routine warnings (unknown DTLS extensions
/// from browsers, ICE checks before candidates arrive) only when they are errors.
const DEFAULT_LOG: &str = "info,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=warn";

/// Runs the robot; a bad flag, config file or start-up failure is printed as one
/// clear line (with its causes) and exits with status 2.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rtcbot-robot: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    let args = RobotArgs::parse();
    if let Some(RobotCommand::Cameras) = args.command {
        print!(
            "{}",
            rtcbot::v4l_camera::describe_cameras(&rtcbot::v4l_camera::list_cameras())
        );
        print!("{}", rtcbot::m2m::describe_encoder());
        return Ok(());
    }
    let config = Config::from_args(&args)?;
    let robot = Robot::start(config.clone()).context("starting the robot")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if args.print_addr {
        println!("listening on {addr}");
    }
    tracing::info!(
        "robot ready: open http://{}:{}/ ({} {}x{}@{})",
        if addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        },
        addr.port(),
        robot.stream().source_name(),
        robot.stream().size().0,
        robot.stream().size().1,
        config.video.fps
    );
    tokio::spawn(log_drive(robot.clone()));
    axum::serve(listener, server::app(robot.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    robot.shutdown().await;
    Ok(())
}

/// Logs every new drive state, as a stand-in for motors.
async fn log_drive(robot: Robot) {
    let mut drive = robot.controls().drive();
    while drive.changed().await.is_ok() {
        let state = *drive.borrow_and_update();
        tracing::info!(
            forward = state.forward,
            turn = state.turn,
            seq = state.seq,
            "drive"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

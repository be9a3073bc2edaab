//! WebGear_RTC's custom routes and middleware, on the robot: a `/battery` route of
//! our own and a middleware that adds a header to every response, merged into the
//! robot's router (which keeps `/connect`, `/health` and the page).
//!
//! ```sh
//! cargo run -p rtcbot-native --example custom_route
//! curl -i http://localhost:8080/battery
//! ```

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use rtcbot::{Config, Robot};
use serde_json::{json, Value};

/// Our own route, with the robot as its state.
async fn battery(State(robot): State<Robot>) -> Json<Value> {
    Json(json!({"volts": 7.4, "peers": robot.peer_count()}))
}

/// Middleware: every response says which robot answered.
async fn robot_name(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "x-robot",
        "rtcbot-rs example".parse().expect("header value"),
    );
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or("0.0.0.0:8080".into());
    let robot = Robot::start(Config::default())?;
    let ours = Router::new()
        .route("/battery", get(battery))
        .with_state(robot.clone());
    let app = rtcbot::router(robot.clone())
        .merge(ours)
        .layer(middleware::from_fn(robot_name));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    rtcbot::serve_app(listener, app, robot, rtcbot::shutdown_signal()).await?;
    Ok(())
}

//! Browser client for rtcbot-rs (built out in the browser-app issue).

//! Who may connect, and what each may do.
//!
//! - [`role`]: the three roles, `viewer` (watch), `driver` (watch and drive) and
//!   `admin` (a driver that may also change live settings);
//! - [`tokens`]: the configured tokens (`[auth]`, `--auth-token ROLE:TOKEN`), looked
//!   up in constant time, and where a request carries one (`Authorization: Bearer`,
//!   or `?token=`);
//! - [`store`]: the driver token the robot binary generates on first start and keeps
//!   in its state folder, so the default robot is never open;
//! - [`limit`]: `/connect` calls per client address, so a token cannot be guessed by
//!   trying (429 past the quota).
//!
//! The library's [`Config`](crate::Config) leaves auth off (your program, your policy);
//! the `rtcbot-robot` binary turns it on unless told `--no-auth`.

pub mod limit;
pub mod role;
pub mod store;
pub mod tokens;

pub use limit::ConnectLimiter;
pub use role::Role;
pub use tokens::{AuthConfig, Tokens};

//! What a peer may do, from the token it connected with.

use serde::{Deserialize, Serialize};

/// A peer's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches the video and reads telemetry; its drive states are refused.
    Viewer,
    /// A viewer that may also drive (one driver at a time, as ever).
    Driver,
    /// A driver that may also change the robot's live settings.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Driver, Role::Admin];

    /// Whether its drive states are taken.
    pub fn may_drive(self) -> bool {
        self >= Role::Driver
    }

    /// Whether it may change live settings.
    pub fn may_configure(self) -> bool {
        self == Role::Admin
    }

    /// The name in config, flags and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Driver => "driver",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: must be viewer, driver or admin"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        assert!(!Role::Viewer.may_drive());
        assert!(Role::Driver.may_drive() && !Role::Driver.may_configure());
        assert!(Role::Admin.may_drive() && Role::Admin.may_configure());
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("pilot"
            .parse::<Role>()
            .unwrap_err()
            .contains("viewer, driver or admin"));
    }
}

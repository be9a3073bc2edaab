//! The robot's state folder and the driver token generated on first start.
//!
//! The folder (`state_dir` in config, `--state-dir`) keeps what the robot makes once
//! and must keep across restarts, so a phone that scanned the QR code once, or
//! trusted the certificate once, keeps working: `driver-token` here, the TLS
//! certificate in `tls/`. Files are readable by the robot's user only.

use super::tokens::check_token;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The generated driver token's file in the state folder.
pub const TOKEN_FILE: &str = "driver-token";

/// The state folder could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was tried.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A kept file holds something unusable.
    #[error("{path} holds no usable token ({reason}); delete it to generate a new one")]
    BadToken {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Where the robot keeps its state when config does not say: `$RTCBOT_STATE_DIR`,
/// else `$XDG_STATE_HOME/rtcbot`, else `~/.local/state/rtcbot`, else `.rtcbot` in
/// the working folder.
pub fn default_state_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("RTCBOT_STATE_DIR") {
        return dir.into();
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("rtcbot");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".local/state/rtcbot");
    }
    PathBuf::from(".rtcbot")
}

/// Makes `dir` (and its parents) if missing, private to this user.
pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        action: "create the state folder",
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Writes `contents` to a new file readable by this user only; fails if it exists.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// A new random token: 24 bytes from the OS-seeded CSPRNG, base64url (32 characters).
pub fn generate_token() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The driver token kept in `dir`, generated (and written) on the first call.
/// Returns it and whether it is new.
pub fn driver_token(dir: &Path) -> Result<(String, bool), StoreError> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            check_token(&token).map_err(|reason| StoreError::BadToken {
                path: path.clone(),
                reason,
            })?;
            Ok((token, false))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            ensure_dir(dir)?;
            let token = generate_token();
            write_private(&path, format!("{token}\n").as_bytes())?;
            Ok((token, true))
        }
        Err(source) => Err(StoreError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rtcbot-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_token_is_made_once_and_kept() {
        let dir = scratch("kept").join("nested");
        let (token, new) = driver_token(&dir).unwrap();
        assert!(new);
        check_token(&token).unwrap();
        assert_eq!(token.len(), 32);
        assert_eq!(driver_token(&dir).unwrap(), (token.clone(), false));
        assert_ne!(generate_token(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_token_file_is_named() {
        let dir = scratch("damaged");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(TOKEN_FILE), "short\n").unwrap();
        let err = driver_token(&dir).unwrap_err().to_string();
        assert!(err.contains("driver-token holds no usable token"), "{err}");
        assert!(err.contains("delete it"), "{err}");
    }
}

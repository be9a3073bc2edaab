//! The tokens that let a peer in, and where a request carries one.
//!
//! Tokens are kept as SHA-256 digests and a presented token is compared with every
//! one of them in constant time (`subtle`), so neither the time an answer takes nor
//! an early exit tells a guesser how close it came.

use super::Role;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The shortest token accepted in config (a generated one has 32 characters).
pub const MIN_TOKEN_CHARS: usize = 16;
/// The longest.
pub const MAX_TOKEN_CHARS: usize = 256;

/// `[auth]`: tokens by role and the `/connect` quota per client address.
///
/// ```toml
/// [auth]
/// driver = ["a-long-random-driver-token"]
/// viewer = ["a-long-random-viewer-token"]
/// admin = []
/// connect_burst = 20        # /connect calls one address may make at once...
/// connect_per_minute = 60   # ... and then per minute (past that: 429)
/// ```
///
/// The binary reads a missing `[auth]`, or one without tokens, as "generate a driver
/// token and keep it" (see [`store`](super::store)); `enabled = false` (or
/// `--no-auth`) lets anyone in, as admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether `/connect` needs a token.
    pub enabled: bool,
    /// Tokens that watch.
    pub viewer: Vec<String>,
    /// Tokens that watch and drive.
    pub driver: Vec<String>,
    /// Tokens that drive and change live settings.
    pub admin: Vec<String>,
    /// `/connect` calls a client address may make in a burst.
    pub connect_burst: u32,
    /// `/connect` calls a client address may make per minute after its burst.
    pub connect_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            viewer: Vec::new(),
            driver: Vec::new(),
            admin: Vec::new(),
            connect_burst: 20,
            connect_per_minute: 60,
        }
    }
}

impl AuthConfig {
    /// Auth on, with `token` for `role`.
    pub fn with_token(mut self, role: Role, token: impl Into<String>) -> Self {
        self.tokens_mut(role).push(token.into());
        self
    }

    /// The token list of `role`.
    pub fn tokens_mut(&mut self, role: Role) -> &mut Vec<String> {
        match role {
            Role::Viewer => &mut self.viewer,
            Role::Driver => &mut self.driver,
            Role::Admin => &mut self.admin,
        }
    }

    /// Every `(role, token)`.
    pub fn entries(&self) -> impl Iterator<Item = (Role, &str)> {
        fn of(role: Role, list: &[String]) -> impl Iterator<Item = (Role, &str)> {
            list.iter().map(move |t| (role, t.as_str()))
        }
        of(Role::Viewer, &self.viewer)
            .chain(of(Role::Driver, &self.driver))
            .chain(of(Role::Admin, &self.admin))
    }

    /// Whether any token is configured.
    pub fn has_tokens(&self) -> bool {
        self.entries().next().is_some()
    }

    /// Checks each token and the quota; `(key, reason)` names what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let mut seen = std::collections::HashSet::new();
        for (role, token) in self.entries() {
            check_token(token).map_err(|why| (field(role), why))?;
            if !seen.insert(token) {
                return Err((field(role), "the same token is listed twice".into()));
            }
        }
        if !(1..=1000).contains(&self.connect_burst) {
            return Err((
                "auth.connect_burst",
                format!("{} must be in 1..=1000", self.connect_burst),
            ));
        }
        if !(1..=60_000).contains(&self.connect_per_minute) {
            return Err((
                "auth.connect_per_minute",
                format!("{} must be in 1..=60000", self.connect_per_minute),
            ));
        }
        Ok(())
    }
}

fn field(role: Role) -> &'static str {
    match role {
        Role::Viewer => "auth.viewer",
        Role::Driver => "auth.driver",
        Role::Admin => "auth.admin",
    }
}

/// Whether `token` may be used: long enough to resist guessing, and made of the
/// characters a URL carries as they are (`A-Z a-z 0-9 - . _ ~`), since it goes in the
/// page's address and the QR code.
pub fn check_token(token: &str) -> Result<(), String> {
    let len = token.chars().count();
    if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&len) {
        return Err(format!(
            "a token needs {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters, this one has {len}"
        ));
    }
    if let Some(c) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(format!(
            "a token may hold only A-Z, a-z, 0-9 and - . _ ~ (found {c:?})"
        ));
    }
    Ok(())
}

/// Parses `--auth-token ROLE:TOKEN`.
pub fn parse_flag(flag: &str) -> Result<(Role, String), String> {
    let (role, token) = flag.split_once(':').ok_or_else(|| {
        format!(
            "{flag:?} is not ROLE:TOKEN (e.g. driver:{})",
            "x".repeat(16)
        )
    })?;
    let role = role.parse()?;
    check_token(token)?;
    Ok((role, token.to_owned()))
}

/// The configured tokens, ready to check what a request presents.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Tokens {
    /// The tokens of `config`.
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            digests: config
                .entries()
                .map(|(role, token)| (digest(token), role))
                .collect(),
        }
    }

    /// The role `presented` grants, if it is one of the tokens. Every token is
    /// compared, in constant time, whichever matches.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let wanted = digest(presented);
        let mut found = None;
        for (digest, role) in &self.digests {
            if bool::from(digest.ct_eq(&wanted)) {
                found = Some(*role);
            }
        }
        found
    }
}

/// The token a request presents: `Authorization: Bearer <token>` (`authorization`
/// is the header's value, if any), else `token=` in the URL's query. An
/// `Authorization` header of another scheme presents none.
pub fn presented<'a>(authorization: Option<&'a str>, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(value) = authorization {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRIVER: &str = "driver-token-0123456789";
    const VIEWER: &str = "viewer-token-0123456789";

    #[test]
    fn a_token_grants_its_role_and_nothing_else_does() {
        let config = AuthConfig::default()
            .with_token(Role::Driver, DRIVER)
            .with_token(Role::Viewer, VIEWER);
        config.validate().unwrap();
        let tokens = Tokens::new(&config);
        assert_eq!(tokens.role_of(DRIVER), Some(Role::Driver));
        assert_eq!(tokens.role_of(VIEWER), Some(Role::Viewer));
        assert_eq!(tokens.role_of("driver-token-012345678"), None);
        assert_eq!(tokens.role_of(""), None);
        assert_eq!(Tokens::default().role_of(DRIVER), None);
        assert_eq!(format!("{tokens:?}"), "Tokens(2 configured)");
    }

    #[test]
    fn bad_tokens_and_quotas_are_named() {
        let cases = [
            (
                AuthConfig::default().with_token(Role::Driver, "short"),
                "auth.driver",
                "16 to 256",
            ),
            (
                AuthConfig::default().with_token(Role::Viewer, "has space in it 0123"),
                "auth.viewer",
                "found ' '",
            ),
            (
                AuthConfig::default()
                    .with_token(Role::Viewer, DRIVER)
                    .with_token(Role::Admin, DRIVER),
                "auth.admin",
                "twice",
            ),
            (
                AuthConfig {
                    connect_burst: 0,
                    ..AuthConfig::default()
                },
                "auth.connect_burst",
                "1..=1000",
            ),
        ];
        for (config, key, why) in cases {
            let (k, reason) = config.validate().unwrap_err();
            assert_eq!(k, key);
            assert!(reason.contains(why), "{reason}");
        }
    }

    #[test]
    fn flags_parse() {
        assert_eq!(
            parse_flag(&format!("viewer:{VIEWER}")),
            Ok((Role::Viewer, VIEWER.to_owned()))
        );
        assert!(parse_flag(VIEWER).unwrap_err().contains("ROLE:TOKEN"));
        assert!(parse_flag(&format!("pilot:{VIEWER}"))
            .unwrap_err()
            .contains("unknown role"));
        assert!(parse_flag("driver:abc").unwrap_err().contains("16 to 256"));
    }

    #[test]
    fn a_request_presents_a_bearer_token_or_a_query_token() {
        assert_eq!(presented(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(
            presented(Some("bearer  abc "), Some("token=x")),
            Some("abc")
        );
        assert_eq!(presented(Some("Basic abc"), Some("token=x")), None);
        assert_eq!(presented(Some("Bearer "), None), None);
        assert_eq!(presented(None, Some("a=1&token=xyz&b=2")), Some("xyz"));
        assert_eq!(presented(None, Some("token=")), None);
        assert_eq!(presented(None, Some("tokens=abc")), None);
        assert_eq!(presented(None, None), None);
    }
}

//! The browser app built into the binary: `www/dist` as it was when the robot was
//! compiled (native/build.rs embeds it when it is there), so a robot copied alone to
//! a Pi, or installed from its `.deb`, serves its page with nothing beside it.
//!
//! Which page the robot serves at `/` and under it:
//! - `www` set (`--www DIR` or `www` in the config file, anything but the default
//!   `www/dist`): that folder, as always, even when it has no `index.html`;
//! - `www` left at its default: `www/dist` in the working directory when it has an
//!   `index.html` (a fresh `scripts/build-web.sh` there wins over an older embedded
//!   copy), else the embedded page, else a page saying how to build it.

use crate::config::Config;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/embedded_www.rs"));

/// The default `www` ([`Config::www`]'s default): relative to the working directory.
pub const DEFAULT_WWW: &str = "www/dist";

/// Where the robot's page comes from ([`source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WwwSource {
    /// A folder on disk.
    Folder(PathBuf),
    /// The page built into the binary.
    Embedded,
    /// None: the default folder is missing and nothing was embedded.
    Missing(PathBuf),
}

/// One file of the embedded page.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// Its path under `www/dist`, with `/` separators (`index.html`).
    pub path: &'static str,
    /// Its content.
    pub bytes: &'static [u8],
    etag: &'static str,
}

/// The embedded page's files, sorted by path; empty when nothing was embedded.
pub fn files() -> impl Iterator<Item = EmbeddedFile> {
    FILES
        .iter()
        .map(|&(path, etag, bytes)| EmbeddedFile { path, bytes, etag })
}

/// The embedded file at `path` (under `www/dist`, no leading `/`).
pub fn file(path: &str) -> Option<EmbeddedFile> {
    FILES
        .binary_search_by(|(name, _, _)| (*name).cmp(path))
        .ok()
        .map(|i| {
            let (path, etag, bytes) = FILES[i];
            EmbeddedFile { path, bytes, etag }
        })
}

/// Whether this binary has a page built in.
pub fn is_embedded() -> bool {
    !FILES.is_empty()
}

/// Where the page comes from for `config`, now (the folder is looked at on each call:
/// a page built while the robot runs is served at once).
pub fn source(config: &Config) -> WwwSource {
    if config.www != Path::new(DEFAULT_WWW) || config.www.join("index.html").is_file() {
        WwwSource::Folder(config.www.clone())
    } else if is_embedded() {
        WwwSource::Embedded
    } else {
        WwwSource::Missing(config.www.clone())
    }
}

/// The embedded file for a request's `path` (`/` and folders are their
/// `index.html`): `None` when the page does not come from the embedded copy.
/// GET and HEAD only (405 otherwise); an `If-None-Match` with the file's ETag gets
/// 304; a path with no file gets 404.
pub(super) fn serve(
    config: &Config,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
) -> Option<Response> {
    if source(config) != WwwSource::Embedded {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        return Some(
            (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
            )
                .into_response(),
        );
    }
    let mut name = path.trim_start_matches('/').to_owned();
    if name.is_empty() || name.ends_with('/') {
        name.push_str("index.html");
    }
    let Some(file) = file(&name) else {
        return Some(StatusCode::NOT_FOUND.into_response());
    };
    let etag = HeaderValue::from_static(file.etag);
    // Trunk's file names carry a hash of their content, not index.html: revalidate
    // every time (a 304 costs a round trip, never a stale page after an upgrade).
    let cache = HeaderValue::from_static("no-cache");
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == file.etag || tag.trim() == "*");
    if not_modified {
        return Some(
            (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
            )
                .into_response(),
        );
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(file.bytes)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file.path)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.bytes.len()));
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, cache);
    Some(response)
}

/// The router's fallback: the embedded page when that is the [`source`], else the
/// `www` folder as it is on disk.
pub(super) async fn fallback(
    State(robot): State<crate::robot::Robot>,
    request: Request,
) -> Response {
    let config = robot.config();
    if let Some(response) = serve(
        config,
        request.method(),
        request.headers(),
        request.uri().path(),
    ) {
        return response;
    }
    match tower_http::services::ServeDir::new(&config.www)
        .try_call(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(err) => {
            tracing::error!(error = %err, www = %config.www.display(), "cannot serve a file of the page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The `Content-Type` of a file of the page, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_www_is_the_configs_default() {
        assert_eq!(Config::default().www, Path::new(DEFAULT_WWW));
    }

    #[test]
    fn a_www_that_is_set_is_served_even_without_an_index() {
        let config = Config {
            www: PathBuf::from("/nonexistent-www"),
            ..Config::default()
        };
        assert_eq!(source(&config), WwwSource::Folder(config.www.clone()));
        assert!(serve(&config, &Method::GET, &HeaderMap::new(), "/").is_none());
    }

    #[test]
    fn files_are_sorted_and_found_by_path() {
        let names: Vec<_> = files().map(|f| f.path).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for name in names {
            assert_eq!(file(name).map(|f| f.path), Some(name));
        }
        assert!(file("no/such/file").is_none());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app-1f2e_bg.wasm"), "application/wasm");
        assert_eq!(
            content_type("app-1f2e.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}

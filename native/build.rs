//! Embeds the built browser app (`www/dist`, made by scripts/build-web.sh) into the
//! library, so the robot serves its page with nothing beside it (src/http/embedded.rs).
//!
//! When `www/dist/index.html` is missing (a fresh clone), nothing is embedded and the
//! build goes on: the robot then serves a page saying how to build the app.
//! `RTCBOT_EMBED_WWW=DIR` embeds another folder; `RTCBOT_EMBED_WWW=` (empty) none.
//!
//! Writes `$OUT_DIR/embedded_www.rs`: a sorted list of (path, ETag, bytes) with the
//! bytes through `include_bytes!`, so the files are read by rustc itself.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-env-changed=RTCBOT_EMBED_WWW");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = match std::env::var_os("RTCBOT_EMBED_WWW") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => Some(manifest.join("..").join("www").join("dist")),
    };
    let mut files = Vec::new();
    if let Some(dist) = &dist {
        // Cargo scans a watched folder for any change in it. A missing path would
        // make it rerun on every build, so a missing dist is watched through its
        // parent (www/, which the repository always has), where it will appear.
        if dist.is_dir() {
            println!("cargo::rerun-if-changed={}", dist.display());
        } else if let Some(parent) = dist.parent().filter(|p| p.is_dir()) {
            println!("cargo::rerun-if-changed={}", parent.display());
        }
        if dist.join("index.html").is_file() {
            collect(dist, dist, &mut files);
        }
    }
    files.sort();

    let mut code = String::from(
        "/// The embedded files: (path under www/dist with `/` separators, ETag, bytes).\n\
         static FILES: &[(&str, &str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        let bytes = std::fs::read(path).expect("reading a file of www/dist");
        let etag = format!("\"{:016x}\"", fnv1a(&bytes));
        let path = path.to_str().expect("checked in collect");
        writeln!(code, "    ({name:?}, {etag:?}, include_bytes!({path:?})),").unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("embedded_www.rs"), code).expect("writing embedded_www.rs");
}

/// Every file under `dir` (hidden ones left out) as (path relative to `root` with `/`, absolute path);
/// names that are not UTF-8 are left out with a warning.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).expect("reading www/dist");
    for entry in entries {
        let path = entry.expect("reading www/dist").path();
        // Hidden entries are no part of the page (trunk's `.stage` while it builds).
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
            continue;
        }
        let absolute = std::fs::canonicalize(&path).expect("resolving a file of www/dist");
        let relative = path.strip_prefix(root).expect("under www/dist");
        let name = relative
            .iter()
            .map(|part| part.to_str())
            .collect::<Option<Vec<_>>>();
        match (name, absolute.to_str()) {
            (Some(parts), Some(_)) => files.push((parts.join("/"), absolute)),
            _ => println!(
                "cargo::warning=not embedding {} (not UTF-8)",
                path.display()
            ),
        }
    }
}

/// FNV-1a, 64 bits: the ETag of a file (it changes when the file does).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

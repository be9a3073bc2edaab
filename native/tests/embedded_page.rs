//! The browser app built into the robot binary (native/build.rs, `http::embedded`):
//! the real `rtcbot-robot` started in an empty folder (no `www/` beside it, no
//! `--www`) serves the app's `index.html`, its JavaScript and its wasm over HTTP;
//! `--www DIR` and a `www/dist` in the working folder still win over it.
//!
//! With nothing embedded (www/dist was not built before `cargo build`) the robot
//! must say how to build the page; under `CI=true` that is a failure, since CI builds
//! the page first (scripts/test.sh).

use rtcbot::http::embedded;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A throwaway folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rtcbot-embedded-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp folder");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `rtcbot-robot` (plain HTTP, no auth) and its base URL.
struct Robot {
    child: Child,
    url: String,
}

impl Drop for Robot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Robot {
    /// The binary started with `cwd` as its working folder, state in `state`, and
    /// `args`; ready once it printed the address it listens on.
    fn start(cwd: &Path, state: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtcbot-robot"))
            .current_dir(cwd)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ice-udp",
                "127.0.0.1:0",
                "--camera",
                "test-pattern",
                "--audio",
                "none",
                "--no-auth",
                "--no-tls",
                "--quiet",
                "--print-addr",
            ])
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("ROBOT_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running rtcbot-robot");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("rtcbot-robot printed no address within {WAIT:?}"));
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not an address line: {line:?}"));
        Self {
            url: format!("http://{addr}"),
            child,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .timeout(WAIT)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }
}

/// The paths (from `/`) of the quoted `./name` or `/name` links in `html` that end in
/// `suffix` (Trunk's index imports its script and wasm as `./rtcbot-wasm-<hash>.js`).
fn links(html: &str, suffix: &str) -> Vec<String> {
    let mut links: Vec<String> = html
        .split(['"', '\''])
        .filter(|part| part.ends_with(suffix) && !part.contains(char::is_whitespace))
        .filter_map(|part| part.strip_prefix('.').or(Some(part)))
        .filter(|part| part.starts_with('/'))
        .map(str::to_owned)
        .collect();
    links.sort();
    links.dedup();
    links
}

#[tokio::test]
async fn a_robot_in_an_empty_folder_serves_the_embedded_app() {
    let cwd = TempDir::new("cwd");
    let state = TempDir::new("state");
    let robot = Robot::start(&cwd.0, &state.0, &[]);
    let response = robot.get("/").await;
    assert_eq!(response.status(), 200);
    let index = response.text().await.expect("the body of /");

    if !embedded::is_embedded() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nothing was embedded in rtcbot-robot: www/dist must be built \
             (bash scripts/build-web.sh) before `cargo build`"
        );
        assert!(
            index.contains("scripts/build-web.sh") && index.contains("none built into this binary"),
            "without an embedded page / should say how to build it: {index}"
        );
        return;
    }

    let embedded_index = embedded::file("index.html").expect("index.html embedded");
    assert_eq!(
        index.as_bytes(),
        embedded_index.bytes,
        "/ is the embedded index.html"
    );
    let scripts = links(&index, ".js");
    let wasms = links(&index, ".wasm");
    assert!(!scripts.is_empty(), "index.html links no .js: {index}");
    assert!(!wasms.is_empty(), "index.html links no .wasm: {index}");
    for path in &scripts {
        let response = robot.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("text/javascript"), "{path}: {kind}");
        let body = response.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            embedded::file(&path[1..]).unwrap().bytes,
            "{path}"
        );
    }
    for path in &wasms {
        let response = robot.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/wasm",
            "{path}"
        );
        let body = response.bytes().await.unwrap();
        assert!(body.starts_with(b"\0asm"), "{path} is not wasm");
        assert_eq!(
            &body[..],
            embedded::file(&path[1..]).unwrap().bytes,
            "{path}"
        );
    }

    // Revalidation: the ETag gets a 304 with no body; an unknown file a 404.
    let wasm = &wasms[0];
    let etag = robot.get(wasm).await.headers()["etag"].clone();
    let revalidated = reqwest::Client::new()
        .get(format!("{}{wasm}", robot.url))
        .header("if-none-match", etag)
        .timeout(WAIT)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert!(revalidated.bytes().await.unwrap().is_empty());
    assert_eq!(robot.get("/no-such-file.js").await.status(), 404);
    // Signaling is still the robot's, not a file.
    assert_eq!(robot.get("/health").await.status(), 200);
}

#[tokio::test]
async fn www_and_a_www_dist_in_the_working_folder_win_over_the_embedded_app() {
    let cwd = TempDir::new("override-cwd");
    let state = TempDir::new("override-state");
    let www = TempDir::new("override-www");
    std::fs::write(www.0.join("index.html"), "<p>the --www page</p>").unwrap();
    std::fs::write(www.0.join("extra.txt"), "from --www").unwrap();

    let robot = Robot::start(&cwd.0, &state.0, &["--www", www.0.to_str().unwrap()]);
    assert_eq!(
        robot.get("/").await.text().await.unwrap(),
        "<p>the --www page</p>"
    );
    assert_eq!(
        robot.get("/extra.txt").await.text().await.unwrap(),
        "from --www"
    );
    drop(robot);

    // The default www, www/dist, freshly built in the working folder.
    std::fs::create_dir_all(cwd.0.join("www/dist")).unwrap();
    std::fs::write(cwd.0.join("www/dist/index.html"), "<p>www/dist here</p>").unwrap();
    let robot = Robot::start(&cwd.0, &state.0, &[]);
    assert_eq!(
        robot.get("/").await.text().await.unwrap(),
        "<p>www/dist here</p>"
    );
    drop(robot);

    // An explicit --www without an index says how to build the page, whatever is
    // embedded.
    let empty = TempDir::new("override-empty");
    let robot = Robot::start(&cwd.0, &state.0, &["--www", empty.0.to_str().unwrap()]);
    let page = robot.get("/").await.text().await.unwrap();
    assert!(page.contains("scripts/build-web.sh"), "{page}");
}

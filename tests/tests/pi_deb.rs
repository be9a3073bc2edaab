//! The amd64 Debian package (scripts/build-pi.sh --amd64) installed with `dpkg -i`
//! into a throwaway Debian root (a copy of a debootstrap minbase root that
//! scripts/check-pi.sh makes once): its files are where the systemd unit expects
//! them, the unit passes `systemd-analyze verify`, its maintainer scripts make the
//! `rtcbot` user in the video and dialout groups and enable the service, the
//! installed binary serves the page built into it as that user, with the packaged
//! config, and a purge takes the user and the config away again.
//!
//! Ignored in the workspace's test run: scripts/check-pi.sh runs it with `--ignored`
//! (as root, for chroot), where a missing package or root is a failure.
//! `RTCBOT_DEB` names the package, `RTCBOT_DEB_CHROOT` the base root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod pi_support;

use pi_support::{RunningRobot, ROBOT_FLAGS};

const WAIT: Duration = Duration::from_secs(30);

fn target_pi() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pi")
}

/// The newest amd64 `.deb` in target/pi/debian, or `RTCBOT_DEB`.
fn package() -> PathBuf {
    if let Some(deb) = std::env::var_os("RTCBOT_DEB") {
        return PathBuf::from(deb);
    }
    let dir = target_pi().join("debian");
    let mut debs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| {
            panic!(
                "{}: {err}: run bash scripts/build-pi.sh --amd64",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_amd64.deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!(
            "no amd64 .deb in {}: run bash scripts/build-pi.sh --amd64",
            dir.display()
        )
    })
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|err| panic!("{cmd:?}: {err}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A copy of the base root, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Self {
        let base = std::env::var_os("RTCBOT_DEB_CHROOT")
            .map_or_else(|| target_pi().join("chroot-base"), PathBuf::from);
        assert!(
            base.join("usr/bin/dpkg").is_file(),
            "no Debian root at {}: scripts/check-pi.sh makes it with debootstrap",
            base.display()
        );
        let root = target_pi().join(format!("chroot-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        run(Command::new("cp").arg("-a").arg(&base).arg(&root));
        Self(root)
    }

    fn path(&self, inside: &str) -> PathBuf {
        self.0.join(inside.trim_start_matches('/'))
    }

    /// `chroot` into the root, as root or as `user`.
    fn chroot_as(&self, user: Option<&str>) -> Command {
        let mut cmd = Command::new("chroot");
        if let Some(user) = user {
            cmd.arg(format!("--userspec={user}:{user}"));
        }
        cmd.arg(&self.0)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    fn chroot(&self) -> Command {
        self.chroot_as(None)
    }

    fn read(&self, inside: &str) -> String {
        std::fs::read_to_string(self.path(inside))
            .unwrap_or_else(|err| panic!("{inside} in the root: {err}"))
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The members of `group` in an /etc/group text.
fn members<'a>(group_file: &'a str, group: &str) -> Vec<&'a str> {
    group_file
        .lines()
        .find(|l| l.split(':').next() == Some(group))
        .and_then(|l| l.rsplit(':').next())
        .map(|m| m.split(',').filter(|m| !m.is_empty()).collect())
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the amd64 .deb, root and a debootstrap root: scripts/check-pi.sh"]
async fn the_deb_installs_its_service_and_serves_the_embedded_page() {
    let deb = package();
    let size = std::fs::metadata(&deb).unwrap().len();
    println!("figure: {} {size} bytes", deb.display());
    let fields = run(Command::new("dpkg-deb").arg("-f").arg(&deb).args([
        "Package",
        "Architecture",
        "Depends",
    ]));
    let fields = String::from_utf8_lossy(&fields.stdout).into_owned();
    assert!(fields.contains("Package: rtcbot-robot"), "{fields}");
    assert!(fields.contains("Architecture: amd64"), "{fields}");
    for dep in ["libopus0", "libasound2", "adduser"] {
        assert!(fields.contains(dep), "Depends lacks {dep}: {fields}");
    }

    let root = Root::new();
    std::fs::copy(&deb, root.path("/tmp/rtcbot-robot.deb")).unwrap();
    run(root.chroot().args(["dpkg", "-i", "/tmp/rtcbot-robot.deb"]));

    // The files where the unit expects them.
    let unit_path = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|dir| format!("{dir}/rtcbot-robot.service"))
        .find(|p| root.path(p).is_file())
        .expect("rtcbot-robot.service installed");
    let unit = root.read(&unit_path);
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in the unit");
    let mut words = exec.split_whitespace();
    let program = words.next().unwrap();
    assert_eq!(program, "/usr/bin/rtcbot-robot");
    let meta = std::fs::metadata(root.path(program)).expect("the binary installed");
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
        "{program} is not executable"
    );
    let config = words
        .skip_while(|w| *w != "--config")
        .nth(1)
        .expect("--config in ExecStart");
    assert!(
        root.path(config).is_file(),
        "{config} (ExecStart's --config) missing"
    );
    assert!(unit.contains("User=rtcbot"), "{unit}");
    assert!(unit.contains("Restart=on-failure"), "{unit}");
    let conffiles =
        run(root
            .chroot()
            .args(["dpkg-query", "-W", "-f=${Conffiles}", "rtcbot-robot"]));
    assert!(
        String::from_utf8_lossy(&conffiles.stdout).contains(config),
        "{config} is not a conffile"
    );

    // The unit, checked by systemd against this root.
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.0.display()))
        .arg(&unit_path)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("running systemd-analyze");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("rtcbot-robot.service"),
        "systemd-analyze verify: {}\n{complaints}",
        verify.status
    );

    // The maintainer scripts: the user, its groups, the service enabled at boot.
    let passwd = root.read("/etc/passwd");
    assert!(
        passwd.lines().any(|l| l.starts_with("rtcbot:")),
        "no rtcbot user: {passwd}"
    );
    let groups = root.read("/etc/group");
    for group in ["video", "dialout"] {
        assert!(
            members(&groups, group).contains(&"rtcbot"),
            "rtcbot is not in {group}: {groups}"
        );
    }
    assert!(
        root.path("/etc/systemd/system/multi-user.target.wants/rtcbot-robot.service")
            .symlink_metadata()
            .is_ok(),
        "the service is not enabled"
    );

    // The installed binary as the service runs it (its user, its config, its state
    // folder, which systemd's StateDirectory= makes), on a free port and plain HTTP.
    run(root.chroot().args([
        "install",
        "-d",
        "-o",
        "rtcbot",
        "-g",
        "rtcbot",
        "-m",
        "0700",
        "/var/lib/rtcbot",
    ]));
    let mut cmd = root.chroot_as(Some("rtcbot"));
    cmd.args(exec.split_whitespace())
        .args(ROBOT_FLAGS)
        .env("RUST_LOG", "error");
    let robot = RunningRobot::start(cmd, WAIT);
    let index = reqwest::get(format!("{}/", robot.url)).await.unwrap();
    assert_eq!(index.status(), 200);
    let index = index.text().await.unwrap();
    assert!(index.contains("_bg.wasm"), "not the embedded app: {index}");
    // Its token was generated and kept in the state folder, as the rtcbot user.
    let state = root.path("/var/lib/rtcbot");
    assert!(
        std::fs::read_dir(&state).unwrap().next().is_some(),
        "nothing kept in {}",
        state.display()
    );
    drop(robot);

    // A purge takes the config, the state and the user away.
    run(root.chroot().args(["dpkg", "--purge", "rtcbot-robot"]));
    assert!(!root.path(program).exists(), "{program} left after purge");
    assert!(!root.path(config).exists(), "{config} left after purge");
    assert!(
        !Path::new(&root.path("/var/lib/rtcbot")).exists(),
        "state left after purge"
    );
    assert!(
        !root
            .read("/etc/passwd")
            .lines()
            .any(|l| l.starts_with("rtcbot:")),
        "the rtcbot user is left after purge"
    );
}

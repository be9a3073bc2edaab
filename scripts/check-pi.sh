#!/usr/bin/env bash
# Checks the Raspberry Pi build and the Debian packages on this x86_64 machine
# (not part of scripts/test.sh: the cross build and the fat-LTO builds take too long
# for CI; see README "Hardware: a Raspberry Pi"):
#   - builds them when missing (scripts/build-pi.sh --amd64: the aarch64 binary, the
#     arm64 and amd64 .debs; --rebuild always),
#   - tests/tests/pi_qemu.rs: the aarch64 binary under qemu-aarch64 (Debian's
#     qemu-user): at most 15 MB, --version, a robot on port 0 serving its embedded
#     page and streaming the test pattern to a native client that decodes it,
#   - tests/tests/pi_deb.rs: the amd64 .deb installed with dpkg -i into a throwaway
#     Debian root (debootstrap minbase, made once in target/pi/chroot-base), the
#     unit through systemd-analyze verify, the service's user, the installed binary
#     serving the embedded page, a purge,
# and prints the figures (sizes, start time and RSS under qemu). Needs root (apt,
# chroot). Any missing piece is a failure, never a skip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REBUILD=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "check-pi.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
log() { echo "check-pi: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "check-pi.sh: needs root (chroot, debootstrap)" >&2; exit 1; }

# qemu-aarch64 runs the binary with the arm64 multiarch libraries (one glibc build).
bash scripts/setup.sh qemu-user debootstrap systemd dpkg-dev libc6:arm64 libstdc++6:arm64 \
  libopus0:arm64 libasound2:arm64
OUT="$ROOT/target/pi"
if [ "$REBUILD" = 1 ] || [ ! -f "$OUT/aarch64/rtcbot-robot" ] \
  || ! compgen -G "$OUT/debian/rtcbot-robot_*_amd64.deb" >/dev/null \
  || ! compgen -G "$OUT/debian/rtcbot-robot_*_arm64.deb" >/dev/null; then
  start=$SECONDS
  CARGO_TARGET_DIR="$OUT" bash scripts/build-pi.sh --amd64
  log "build-pi.sh --amd64 took $((SECONDS - start)) s"
fi

# The throwaway root's base: Debian minbase with what the package depends on, and
# systemd for its units (systemd-analyze verify --root checks against them).
base="$OUT/chroot-base"
if [ ! -x "$base/usr/bin/dpkg" ]; then
  log "debootstrap --variant=minbase bookworm $base"
  rm -rf "$base"
  debootstrap --variant=minbase --include=adduser,init-system-helpers,systemd,libopus0,libasound2 \
    bookworm "$base" http://deb.debian.org/debian >/dev/null
fi

export RTCBOT_PI_BIN="$OUT/aarch64/rtcbot-robot"
export RTCBOT_DEB_CHROOT="$base"
set +e
cargo test --locked -p rtcbot-tests --test pi_qemu --test pi_deb -- --ignored --nocapture \
  --test-threads=1 2>&1 | tee "$OUT/check-pi.log"
status=${PIPESTATUS[0]}
set -e

# The figures.
for f in "$OUT"/aarch64/rtcbot-robot "$OUT"/x86_64/rtcbot-robot "$OUT"/debian/*.deb; do
  [ -f "$f" ] && printf '%10d bytes  %s\n' "$(stat -c %s "$f")" "${f#"$ROOT"/}"
done
grep -o 'figure:.*' "$OUT/check-pi.log" || true
exit "$status"

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
#   --armv7       also the 32-bit build (build-pi.sh --armv7): the same pi_qemu
#                 checks for target/pi/armv7/rtcbot-robot under qemu-arm with the
#                 armhf sysroot build-pi.sh unpacked, and the armhf .deb's Depends
#                 (the armhf libraries by their Debian names, nothing "-cross")
#   --only-armv7  the armv7 checks alone (builds with build-pi.sh --armv7
#                 --no-aarch64 when missing; no aarch64, no amd64 .deb, no chroot)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REBUILD=0
ARMV7=0
MAIN=1
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    --armv7) ARMV7=1 ;;
    --only-armv7) ARMV7=1 MAIN=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "check-pi.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
log() { echo "check-pi: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "check-pi.sh: needs root (chroot, debootstrap)" >&2; exit 1; }

# qemu-aarch64 runs the binary with the arm64 multiarch libraries (one glibc build);
# qemu-arm the armv7 one with target/pi/sysroot-armhf (nothing armhf installed).
OUT="$ROOT/target/pi"
if [ "$MAIN" = 1 ]; then
  # The arm64 runtime libraries need dpkg's arm64 architecture (build-pi.sh adds it
  # too, but runs later; on a fresh machine it is not there yet).
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  bash scripts/setup.sh qemu-user debootstrap systemd dpkg-dev libc6:arm64 libstdc++6:arm64 \
    libopus0:arm64 libasound2:arm64
else
  bash scripts/setup.sh qemu-user dpkg-dev
fi
build_args=()
missing() { # any of the files (globs) absent?
  local f
  for f in "$@"; do compgen -G "$f" >/dev/null || return 0; done
  return 1
}
if [ "$MAIN" = 1 ] && { [ "$REBUILD" = 1 ] || missing "$OUT/aarch64/rtcbot-robot" \
  "$OUT/debian/rtcbot-robot_*_amd64.deb" "$OUT/debian/rtcbot-robot_*_arm64.deb"; }; then
  build_args+=(--amd64)
fi
if [ "$ARMV7" = 1 ] && { [ "$REBUILD" = 1 ] || missing "$OUT/armv7/rtcbot-robot" \
  "$OUT/sysroot-armhf/.packages" "$OUT/debian/rtcbot-robot_*_armhf.deb"; }; then
  build_args+=(--armv7)
  [ "${#build_args[@]}" = 1 ] && build_args+=(--no-aarch64)
fi
if ((${#build_args[@]})); then
  start=$SECONDS
  CARGO_TARGET_DIR="$OUT" bash scripts/build-pi.sh "${build_args[@]}"
  log "build-pi.sh ${build_args[*]} took $((SECONDS - start)) s"
fi

tests=()
filters=()
if [ "$MAIN" = 1 ]; then
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
  tests+=(--test pi_qemu --test pi_deb)
  [ "$ARMV7" = 1 ] || filters+=(--skip armv7)
else
  tests+=(--test pi_qemu)
  filters+=(armv7)
fi
export RTCBOT_PI_ARMV7_BIN="$OUT/armv7/rtcbot-robot"
export RTCBOT_PI_ARMV7_SYSROOT="$OUT/sysroot-armhf"

set +e
cargo test --locked -p rtcbot-tests "${tests[@]}" -- --ignored --nocapture --test-threads=1 \
  "${filters[@]}" 2>&1 | tee "$OUT/check-pi.log"
status=${PIPESTATUS[0]}
if [ "$ARMV7" = 1 ]; then
  # The armhf package depends on the armhf libraries by their Debian names (found
  # through build-pi.sh's dpkg-shlibdeps -S), not on the cross toolchain's packages.
  deb=$(compgen -G "$OUT/debian/rtcbot-robot_*_armhf.deb" | head -1)
  depends=$(dpkg-deb -f "$deb" Depends)
  echo "figure: armhf .deb Depends: $depends" | tee -a "$OUT/check-pi.log"
  names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/[ (].*//')
  for want in libc6 libopus0 libasound2 libstdc++6; do
    grep -qxF "$want" <<<"$names" \
      || { log "FAIL: the armhf .deb does not depend on $want"; status=1; }
  done
  if grep -Eq -- '-cross|:armhf' <<<"$depends"; then
    log "FAIL: the armhf .deb depends on a cross or :armhf package"
    status=1
  fi
fi
set -e

# The figures.
for f in "$OUT"/aarch64/rtcbot-robot "$OUT"/armv7/rtcbot-robot "$OUT"/x86_64/rtcbot-robot \
  "$OUT"/debian/*.deb; do
  [ -f "$f" ] && printf '%10d bytes  %s\n' "$(stat -c %s "$f")" "${f#"$ROOT"/}"
done
grep -o 'figure:.*' "$OUT/check-pi.log" || true
exit "$status"

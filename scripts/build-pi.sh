#!/usr/bin/env bash
# Builds the robot for a Raspberry Pi from this x86_64 Debian/Ubuntu machine: the
# browser app (scripts/build-web.sh, embedded into the binary), rtcbot-robot for
# aarch64 with the `pi` profile (fat LTO, one codegen unit), its debug info split
# off into a separate file, and the arm64 Debian package (cargo-deb).
#
#   target/pi/aarch64-unknown-linux-gnu/pi/rtcbot-robot     the binary, as linked
#   target/pi/aarch64/rtcbot-robot                          stripped: copy it to a Pi
#   target/pi/aarch64/rtcbot-robot.debug                    its debug info (gdb finds
#                                                           it by the debuglink)
#   target/pi/debian/rtcbot-robot_<version>-1_arm64.deb     sudo apt install ./<it>
#
# The build has a target folder of its own (target/pi, or $CARGO_TARGET_DIR): it
# neither waits for nor holds up the workspace's builds in target/.
#
# aarch64 runs on a 64-bit Raspberry Pi OS (or Debian/Ubuntu arm64): Pi 3, 3+, 4,
# 400, 5, Zero 2 W, CM3/CM4/CM5. (32-bit Raspberry Pi OS and the Pi 1, 2 and Zero/
# Zero W are not covered: see README.)
#
# Installs only what is missing (Debian's cross gcc/g++, the arm64 libopus and
# libasound the audio crates link, the rustup target, cargo-deb); needs root or sudo
# for apt. Options:
#   --amd64   also build the amd64 .deb (this machine's architecture, `pi` profile)
#   --no-deb  the binaries only
# The cross build runs under `nice -n 19`: it takes long on a small machine and
# should not slow others' builds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

AMD64=0
DEB=1
for arg in "$@"; do
  case "$arg" in
    --amd64) AMD64=1 ;;
    --no-deb) DEB=0 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "build-pi.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-pi: $*" >&2; }
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# 1. Debian packages: the cross toolchain, the arm64 libraries that the audio crates
# link (audiopus_sys finds libopus through pkg-config, alsa-sys libasound), and the
# host's build tools; libstdc++6:arm64 lets cargo-deb's dpkg-shlibdeps resolve
# openh264's C++ runtime (else the arm64 .deb depends on "libstdc++6:arm64").
# openh264 is compiled from source by openh264-sys2 (its ARM assembly, no nasm);
# v4l2r's bindgen reads the kernel's videodev2.h with libclang.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "dpkg --add-architecture arm64"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi
bash scripts/setup.sh gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross \
  binutils-aarch64-linux-gnu pkg-config libclang1-14 libclang-common-14-dev linux-libc-dev \
  libopus-dev:arm64 libasound2-dev:arm64 libstdc++6:arm64 dpkg-dev
[ "$AMD64" = 1 ] && bash scripts/setup.sh nasm libopus-dev libasound2-dev

# 2. Rust: the target, and cargo-deb.
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi
if [ "$DEB" = 1 ] && ! cargo deb --version >/dev/null 2>&1; then
  log "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi

# 3. The browser app, built once here (wasm is the same on every architecture) and
# embedded by native/build.rs.
bash scripts/build-web.sh

# 4. The cross build, in its own target folder. The C parts (openh264, ring) through
# Debian's cross gcc/g++; pkg-config looks only at the arm64 libraries.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/pi}"
OUT="$CARGO_TARGET_DIR"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export V4L2R_VIDEODEV2_H_PATH=/usr/aarch64-linux-gnu/include/linux
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
build() { # target, then cargo's arguments
  local target=$1
  shift
  local start=$SECONDS
  log "cargo build --profile pi --target $target $* (nice -n 19)"
  nice -n 19 cargo build --locked --profile pi --target "$target" -p rtcbot-native --bin rtcbot-robot "$@"
  log "built for $target in $((SECONDS - start)) s"
}
split_debug() { # target, objcopy
  local bin="$OUT/$1/pi/rtcbot-robot" out="$OUT/${1%%-*}"
  mkdir -p "$out"
  "$2" --only-keep-debug "$bin" "$out/rtcbot-robot.debug"
  "$2" --strip-all --add-gnu-debuglink="$out/rtcbot-robot.debug" "$bin" "$out/rtcbot-robot"
  log "$out/rtcbot-robot: $(stat -c %s "$out/rtcbot-robot") bytes stripped"
}
build aarch64-unknown-linux-gnu
split_debug aarch64-unknown-linux-gnu aarch64-linux-gnu-objcopy
if [ "$AMD64" = 1 ]; then
  build x86_64-unknown-linux-gnu
  split_debug x86_64-unknown-linux-gnu objcopy
fi

# 5. The Debian packages (native/Cargo.toml's [package.metadata.deb]): the stripped
# binary, the systemd unit, the config, the maintainer scripts. --no-build: cargo-deb
# takes the binary built above.
if [ "$DEB" = 1 ]; then
  deb() { # target
    nice -n 19 cargo deb -p rtcbot-native --target "$1" --profile pi --no-build --strip \
      --output "$OUT/debian/"
  }
  deb aarch64-unknown-linux-gnu
  [ "$AMD64" = 1 ] && deb x86_64-unknown-linux-gnu
  ls -l "$OUT"/debian/*.deb >&2
fi

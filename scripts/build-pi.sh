#!/usr/bin/env bash
# Builds the robot for a Raspberry Pi from this x86_64 Debian/Ubuntu machine: the
# browser app (scripts/build-web.sh, embedded into the binary), rtcbot-robot for
# aarch64 (and with --armv7 for 32-bit ARM too) with the `pi` profile (fat LTO, one
# codegen unit), its debug info split off into a separate file, and the Debian
# packages (cargo-deb).
#
#   target/pi/aarch64-unknown-linux-gnu/pi/rtcbot-robot     the binary, as linked
#   target/pi/aarch64/rtcbot-robot                          stripped: copy it to a Pi
#   target/pi/aarch64/rtcbot-robot.debug                    its debug info (gdb finds
#                                                           it by the debuglink)
#   target/pi/debian/rtcbot-robot_<version>-1_arm64.deb     sudo apt install ./<it>
#   target/pi/armv7/rtcbot-robot(.debug)                    --armv7: the same for
#   target/pi/debian/rtcbot-robot_<version>-1_armhf.deb     32-bit Raspberry Pi OS
#
# The build has a target folder of its own (target/pi, or $CARGO_TARGET_DIR): it
# neither waits for nor holds up the workspace's builds in target/.
#
# Which Pi runs which build:
#   aarch64 (arm64 .deb): a 64-bit Raspberry Pi OS (or Debian/Ubuntu arm64) on the
#     Pi 3, 3+, 4, 400, 5, Zero 2 W, CM3/CM4/CM5.
#   armv7 (armhf .deb, --armv7): a 32-bit Raspberry Pi OS (armhf) on the Pi 2 v1.1+
#     (Cortex-A7; the Pi 2 v1.2 is a Cortex-A53), 3, 3+, 4, 400, Zero 2 W, CM3/CM4.
#   Neither: the ARMv6 boards (Pi 1, Zero, Zero W, CM1; Raspberry Pi OS's armhf is
#     ARMv6 there, Debian's armhf needs ARMv7).
#
# Installs only what is missing (Debian's cross gcc/g++, the rustup target,
# cargo-deb; for aarch64 the arm64 libopus and libasound the audio crates link,
# through dpkg multiarch); needs root or sudo for apt. For armv7 only amd64 packages
# are installed: the armhf libraries (libopus, libasound and the runtime libc,
# libgcc, libstdc++ for qemu-arm and dpkg-shlibdeps) are downloaded with a private
# apt state (target/pi/sysroot-armhf.apt) and unpacked into target/pi/sysroot-armhf,
# never installed into this machine. Options:
#   --armv7       also build for armv7-unknown-linux-gnueabihf (32-bit Pi OS)
#   --no-aarch64  skip the aarch64 build (and its arm64 multiarch packages)
#   --amd64       also build the amd64 .deb (this machine's architecture, `pi` profile)
#   --no-deb      the binaries only
# The cross build runs under `nice -n 19`: it takes long on a small machine and
# should not slow others' builds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

AMD64=0
ARMV7=0
AARCH64=1
DEB=1
for arg in "$@"; do
  case "$arg" in
    --amd64) AMD64=1 ;;
    --armv7) ARMV7=1 ;;
    --no-aarch64) AARCH64=0 ;;
    --no-deb) DEB=0 ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
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
if [ "$AARCH64" = 1 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
  fi
  bash scripts/setup.sh gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross \
    binutils-aarch64-linux-gnu pkg-config libclang1-14 libclang-common-14-dev linux-libc-dev \
    libopus-dev:arm64 libasound2-dev:arm64 libstdc++6:arm64 dpkg-dev
fi
# armv7: only amd64 packages (the armhf cross toolchain; its libc6-dev-armhf-cross
# brings the kernel headers v4l2r reads); the armhf libraries come in step 2b.
if [ "$ARMV7" = 1 ]; then
  bash scripts/setup.sh gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross \
    binutils-arm-linux-gnueabihf pkg-config libclang1-14 libclang-common-14-dev dpkg-dev
fi
[ "$AMD64" = 1 ] && bash scripts/setup.sh nasm libopus-dev libasound2-dev

# 2. Rust: the target, and cargo-deb.
targets=()
[ "$AARCH64" = 1 ] && targets+=(aarch64-unknown-linux-gnu)
[ "$ARMV7" = 1 ] && targets+=(armv7-unknown-linux-gnueabihf)
for target in "${targets[@]}"; do
  if ! rustup target list --installed | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target"
  fi
done
if [ "$DEB" = 1 ] && ! cargo deb --version >/dev/null 2>&1; then
  log "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/pi}"
OUT="$CARGO_TARGET_DIR"

# 2b. armv7: the armhf libraries, without installing them into this machine (no
# dpkg --add-architecture armhf: multiarch -dev packages of another architecture
# replace this machine's amd64 libopus-dev/libasound2-dev and back again). apt runs
# with a configuration, sources, lists, cache and (empty) dpkg status of its own in
# $SYSROOT.apt (none of /etc/apt's parts, no lock shared with the system's apt), for
# armhf only, and `apt-get download`s the packages; each is unpacked with dpkg-deb
# twice: merged into $SYSROOT (pkg-config, the linker and qemu-arm -L look there)
# and with its control files into $SYSROOT.pkgs/<package> (dpkg-shlibdeps -S reads
# their symbols/shlibs files, see step 5). Done once; delete the folders to refetch.
SYSROOT="$OUT/sysroot-armhf"
ARMHF_PACKAGES=(libopus0 libopus-dev libasound2 libasound2-dev libc6 libgcc-s1 libstdc++6)
armhf_sysroot() {
  local stamp="$SYSROOT/.packages" apt="$SYSROOT.apt"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${ARMHF_PACKAGES[*]}" ] && return
  log "the armhf libraries into $SYSROOT (apt-get download with a private state)"
  rm -rf "$SYSROOT" "$SYSROOT.pkgs" "$apt"
  mkdir -p "$apt"/{lists/partial,cache/archives/partial,sources.d,empty.d,debs} \
    "$SYSROOT" "$SYSROOT.pkgs"
  local uri comps key suites id codename
  id=$(. /etc/os-release && echo "$ID")
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  if [ "$id" = ubuntu ]; then # armhf is on the ports mirror
    uri=http://ports.ubuntu.com/ubuntu-ports comps="main universe"
    key=/usr/share/keyrings/ubuntu-archive-keyring.gpg
    suites="$codename $codename-updates $codename-security"
  else
    uri=http://deb.debian.org/debian comps=main key=/usr/share/keyrings/debian-archive-keyring.gpg
    suites="$codename $codename-updates"
  fi
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nArchitectures: armhf\nSigned-By: %s\n' \
      "$uri" "$suites" "$comps" "$key"
    [ "$id" = ubuntu ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: armhf\nSigned-By: %s\n' \
      http://deb.debian.org/debian-security "$codename-security" "$key"
  } >"$apt/sources.d/armhf.sources"
  : >"$apt/status"
  cat >"$apt/apt.conf" <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$apt/empty.d";
Dir::Etc::sourcelist "/dev/null";
Dir::Etc::sourceparts "$apt/sources.d";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "$apt/empty.d";
Dir::State "$apt";
Dir::State::lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
APT::Architecture "armhf";
APT::Architectures { "armhf"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
EOF
  APT_CONFIG="$apt/apt.conf" apt-get -qq update
  (cd "$apt/debs" && APT_CONFIG="$apt/apt.conf" apt-get -qq download "${ARMHF_PACKAGES[@]}")
  local deb name
  for deb in "$apt"/debs/*.deb; do
    name=$(dpkg-deb -f "$deb" Package)
    dpkg-deb -x "$deb" "$SYSROOT"
    dpkg-deb -R "$deb" "$SYSROOT.pkgs/$name"
  done
  rm -rf "$apt/lists" "$apt/cache" # 120 MB of package indexes, not needed again
  echo "${ARMHF_PACKAGES[*]}" >"$stamp"
}
[ "$ARMV7" = 1 ] && armhf_sysroot

# 3. The browser app, built once here (wasm is the same on every architecture) and
# embedded by native/build.rs.
bash scripts/build-web.sh

# 4. The cross build, in its own target folder. The C parts (openh264, ring) through
# Debian's cross gcc/g++; pkg-config looks only at the arm64 libraries.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export V4L2R_VIDEODEV2_H_PATH=/usr/aarch64-linux-gnu/include/linux
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
# armv7: Debian's armhf cross toolchain (its own libc in /usr/arm-linux-gnueabihf);
# pkg-config looks only at $SYSROOT's .pc files and prefixes their paths with it
# (audiopus_sys and alsa-sys find libopus/libasound through pkg-config, so -L
# $SYSROOT/usr/lib/arm-linux-gnueabihf reaches the linker from them; what those
# libraries need themselves, libc/libm, is in the cross toolchain).
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export CXX_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-g++
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
export PKG_CONFIG_SYSROOT_DIR_armv7_unknown_linux_gnueabihf="$SYSROOT"
export PKG_CONFIG_LIBDIR_armv7_unknown_linux_gnueabihf="$SYSROOT/usr/lib/arm-linux-gnueabihf/pkgconfig:$SYSROOT/usr/share/pkgconfig"
export BINDGEN_EXTRA_CLANG_ARGS_armv7_unknown_linux_gnueabihf="--sysroot=/usr/arm-linux-gnueabihf -I/usr/arm-linux-gnueabihf/include -idirafter $SYSROOT/usr/include"
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
if [ "$AARCH64" = 1 ]; then
  build aarch64-unknown-linux-gnu
  split_debug aarch64-unknown-linux-gnu aarch64-linux-gnu-objcopy
fi
if [ "$ARMV7" = 1 ]; then
  # v4l2r's bindgen reads videodev2.h; one variable for every target, so set here.
  (export V4L2R_VIDEODEV2_H_PATH=/usr/arm-linux-gnueabihf/include/linux
    build armv7-unknown-linux-gnueabihf)
  split_debug armv7-unknown-linux-gnueabihf arm-linux-gnueabihf-objcopy
fi
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
  [ "$AARCH64" = 1 ] && deb aarch64-unknown-linux-gnu
  if [ "$ARMV7" = 1 ]; then
    # cargo-deb's `$auto` depends run dpkg-shlibdeps, which knows only installed
    # packages: none of the armhf libraries is. A dpkg-shlibdeps first on PATH for
    # this one call adds -S<dir> for each package unpacked with its control files in
    # $SYSROOT.pkgs: "look into this package build tree first", so libopus.so.0 is
    # found there and its DEBIAN/symbols (or shlibs) give "libopus0 (>= 1.1)", as on
    # a Pi (and libc6, libstdc++6 and libasound2 likewise, not the cross
    # toolchain's libc6-armhf-cross).
    tools="$OUT/armhf-tools"
    mkdir -p "$tools"
    {
      echo '#!/bin/sh'
      printf 'exec /usr/bin/dpkg-shlibdeps'
      for dir in "$SYSROOT.pkgs"/*/; do printf ' %q' "-S${dir%/}"; done
      echo ' "$@"'
    } >"$tools/dpkg-shlibdeps"
    chmod +x "$tools/dpkg-shlibdeps"
    (PATH="$tools:$PATH" && deb armv7-unknown-linux-gnueabihf)
  fi
  [ "$AMD64" = 1 ] && deb x86_64-unknown-linux-gnu
  ls -l "$OUT"/debian/*.deb >&2
fi

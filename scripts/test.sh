#!/usr/bin/env bash
# One command to run every test: installs what is missing (Debian packages, the wasm
# toolchain, Chromium, redis-server and coturn for the relay's tests, RTCBot's Python
# package, the browser-test npm packages, the V4L2 test VM), builds the
# browser app and the npm package, then runs every crate's Rust tests (unit, end to
# end, the VM's, the examples, the README's code) and the browser end-to-end tests,
# and closes with one summary line over all of them.
# Idempotent; quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh nasm pkg-config libopus-dev libasound2-dev libclang1-14 libclang-common-14-dev linux-libc-dev iproute2 nftables chromium chromium-driver socat ffmpeg redis-server coturn janus xvfb xdotool libudev-dev
# RTCBot itself (pip rtcbot, aiortc) for the compatibility tests, pinned, in target/pyenv.
bash scripts/python-env.sh
# build-web.sh before cargo build: the robot embeds www/dist (native/build.rs).
bash scripts/build-web.sh
# The VM with real kernel drivers (vivid camera, vicodec M2M encoder, sch_netem) that
# tests/tests/v4l2_vm.rs and lossy.rs boot: qemu, busybox, Debian's kernel, two
# modules built here.
bash scripts/v4l2-vm.sh --setup
# The robot and relay binaries the browser tests start, and the npm package they
# install.
cargo build --locked -p rtcbot-native --bin rtcbot-robot
cargo build --locked -p rtcbot-relay --bin rtcbot-relay
# Janus with a generated config, for the browser test of watching through the SFU.
cargo build --locked -p rtcbot-bench --bin rtcbot-janus
bash scripts/build-npm.sh

logs=target/test-logs
mkdir -p "$logs"
status=0
# Rust: every workspace member's tests (wasm-client's pure code runs natively).
cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$logs/cargo.log" || status=1
# rtcbot-client's gamepad mapping on gilrs (the gamepad feature links libudev).
cargo test --locked -p rtcbot-native --features gamepad --bin rtcbot-client --no-fail-fast 2>&1 | tee -a "$logs/cargo.log" || status=1
# Browser: Debian's Chromium (playwright-core drives it) against the robot binary.
bash scripts/browser-tests.sh 2>&1 | tee "$logs/browser.log" || status=1
# One line over every suite; fails when a crate's tests did not run.
python3 scripts/test-summary.py "$logs/cargo.log" "$logs/browser.log" || status=1
exit "$status"

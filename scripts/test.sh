#!/usr/bin/env bash
# One command to run every test: installs what is missing (Debian packages, the wasm
# toolchain, Chromium, the browser-test npm packages, the V4L2 test VM), builds the browser app and the
# npm package, then
# runs the Rust unit and end-to-end tests and the browser end-to-end tests.
# Idempotent; quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh nasm pkg-config libclang1-14 libclang-common-14-dev linux-libc-dev iproute2 chromium chromium-driver socat
bash scripts/build-web.sh
# The VM with real V4L2 drivers (vivid camera, vicodec M2M encoder) that
# tests/tests/v4l2_vm.rs boots: qemu, busybox, Debian's kernel, two modules built here.
bash scripts/v4l2-vm.sh --setup

# Rust: unit tests, and real WebRTC peers against a real robot.
cargo test --locked

# Browser: Debian's Chromium (playwright-core drives it) against the robot binary.
cargo build --locked -p rtcbot-native --bin rtcbot-robot
# The npm package (target/npm/rtcbot-rs-*.tgz), installed by the browser tests.
bash scripts/build-npm.sh
bash scripts/browser-tests.sh

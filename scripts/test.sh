#!/usr/bin/env bash
# One command to run every test: installs what is missing (Debian packages, the wasm
# toolchain, Chromium), builds the browser app, then runs the unit, integration and
# end-to-end tests. Idempotent; quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh nasm pkg-config chromium chromium-driver socat
if [ -f scripts/build-web.sh ]; then
  bash scripts/build-web.sh
fi
cargo test --locked

#!/usr/bin/env bash
# One command to run the robot: installs what is missing, builds the browser app when
# it is missing or stale, then starts the robot with the test-pattern camera at
# http://localhost:8080. Extra arguments go to the robot (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh nasm pkg-config libopus-dev libasound2-dev libclang1-14 libclang-common-14-dev linux-libc-dev
if [ -f scripts/build-web.sh ]; then
  bash scripts/build-web.sh || echo "run: the browser app did not build; the robot still serves /connect" >&2
fi
exec cargo run --release -p rtcbot-native --bin rtcbot-robot -- "$@"

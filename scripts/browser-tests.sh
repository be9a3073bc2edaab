#!/usr/bin/env bash
# Runs the browser end-to-end tests (tests/browser) in headless Chromium against
# target/debug/rtcbot-robot. When run as root with iproute2, the tests run inside a
# fresh network namespace that has only a loopback interface, so every packet of the
# WebRTC session stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=tests/browser
stamp="$browser/node_modules/.installed-lock"
if ! cmp -s "$browser/package-lock.json" "$stamp" 2>/dev/null; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  cp "$browser/package-lock.json" "$stamp"
fi
run=(node --test --test-concurrency=1 --test-reporter=spec "$browser/e2e/")
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "rtcbot-e2e-$$" 2>/dev/null; then
  trap 'ip netns del "rtcbot-e2e-$$" 2>/dev/null || true' EXIT
  ip -n "rtcbot-e2e-$$" link set lo up
  ip netns exec "rtcbot-e2e-$$" "${run[@]}"
else
  echo "browser-tests: no network namespace available; running on the host's loopback" >&2
  "${run[@]}"
fi

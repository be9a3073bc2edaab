#!/usr/bin/env bash
# Runs the browser end-to-end tests (tests/browser) in headless Chromium against
# target/debug/rtcbot-robot. When run as root with iproute2, the tests run inside a
# fresh network namespace of their own: its loopback, plus one private interface,
# rtcbot0 (10.77.0.1/24, one end of a veth pair whose other end is also inside), which
# Chromium needs to gather host candidates for a page-to-page session. Every packet
# stays inside the namespace. Under CI=true no namespace is a failure, not a fallback.
# RTCBOT_E2E_NETNS=1 tells the tests they may set nftables rules (lossy links).
set -euo pipefail
cd "$(dirname "$0")/.."
browser=tests/browser
stamp="$browser/node_modules/.installed-lock"
if ! cmp -s "$browser/package-lock.json" "$stamp" 2>/dev/null; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  cp "$browser/package-lock.json" "$stamp"
fi
run=(node --test --test-concurrency=1 --test-reporter=spec "$browser/e2e/")
ns="rtcbot-e2e-$$"
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "$ns" 2>/dev/null; then
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  ip -n "$ns" link set lo up
  ip -n "$ns" link add rtcbot0 type veth peer name rtcbot1
  ip -n "$ns" addr add 10.77.0.1/24 dev rtcbot0
  ip -n "$ns" link set rtcbot1 up
  ip -n "$ns" link set rtcbot0 up
  ip -n "$ns" route add default via 10.77.0.2 dev rtcbot0
  ip netns exec "$ns" env RTCBOT_E2E_NETNS=1 "${run[@]}"
elif [ "${CI:-}" = true ]; then
  echo "browser-tests: cannot make a network namespace (needs root and iproute2); CI=true fails instead of running on the host's network" >&2
  exit 1
else
  echo "browser-tests: no network namespace available; running on the host's network (the page-to-page test may skip)" >&2
  "${run[@]}"
fi

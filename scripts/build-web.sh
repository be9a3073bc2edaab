#!/usr/bin/env bash
# Builds the browser app (wasm-client + www) into www/dist.
#
# Idempotent and quick once set up: installs only what is missing
#   - the wasm32-unknown-unknown target,
#   - trunk ~0.21 (the newest trunk needs a newer Rust),
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock,
#   - binaryen 123 (wasm-opt) from npm into .tools/ (Debian's is too old),
# then runs `trunk build --release --offline` only when a source is newer than the
# bundle. Options: --force (always build), --no-install (fail instead of installing).
# Works unattended (CI=true, no stdin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
DIST="$ROOT/www/dist"
FORCE=0
INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-web.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

SCRIPT=build-web.sh
# shellcheck source=scripts/wasm-tools.sh
. "$ROOT/scripts/wasm-tools.sh"

# trunk ~0.21 (the newest trunk needs a newer Rust).
if ! trunk --version 2>/dev/null | grep -Eq '^trunk 0\.21\.'; then
  need "trunk ~0.21"
  cargo install trunk --version '~0.21' --locked
fi

# 5. Build when anything is newer than the bundle.
stale=1
if [ "$FORCE" = 0 ] && [ -f "$DIST/index.html" ]; then
  newer="$(find "$ROOT/wasm-client/src" "$ROOT/wasm-client/Cargo.toml" "$ROOT/shared-protocol/src" \
    "$ROOT/shared-protocol/Cargo.toml" "$ROOT/Cargo.lock" "$ROOT/www" \
    -path "$DIST" -prune -o -type f -newer "$DIST/index.html" -print -quit)"
  [ -z "$newer" ] && stale=0
fi
if [ "$stale" = 1 ]; then
  log "trunk build --release --offline"
  (cd "$ROOT/www" && trunk build --release --offline </dev/null)
  touch "$DIST/index.html"
else
  log "www/dist is up to date (use --force to rebuild)"
fi

# 6. Sizes.
total=0
for f in "$DIST"/*.wasm "$DIST"/*.js; do
  [ -f "$f" ] || continue
  gz=$(gzip -9 -c "$f" | wc -c)
  total=$((total + gz))
  printf '%8d bytes gzip  %s\n' "$gz" "${f#"$ROOT"/}"
done
printf '%8d bytes gzip  total .wasm + .js (%d KB; target <= 150 KB)\n' "$total" $(((total + 1023) / 1024))

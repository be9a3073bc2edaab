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

export PATH="$TOOLS/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf '==> %s\n' "$*" >&2; }
need() {
  if [ "$INSTALL" = 0 ]; then echo "build-web.sh: missing $1 (run without --no-install)" >&2; exit 1; fi
  log "installing $1"
}

# 1. Rust target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  need "the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. trunk ~0.21.
if ! trunk --version 2>/dev/null | grep -Eq '^trunk 0\.21\.'; then
  need "trunk ~0.21"
  cargo install trunk --version '~0.21' --locked
fi

# 3. wasm-bindgen-cli matching Cargo.lock (trunk refuses a mismatched one offline).
WBG="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
if [ -z "$WBG" ]; then
  log "wasm-bindgen is not in Cargo.lock yet; resolving"
  (cd "$ROOT" && cargo metadata --format-version 1 >/dev/null)
  WBG="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WBG" ]; then
  need "wasm-bindgen-cli $WBG"
  cargo install wasm-bindgen-cli --version "=$WBG"
fi

# 4. binaryen 123, project-local.
if ! wasm-opt --version 2>/dev/null | grep -q 'version 123'; then
  need "binaryen 123 (npm) into .tools/"
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/.gitignore" ] || printf '*\n' > "$TOOLS/.gitignore"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error binaryen@123 </dev/null
fi

# .tools/ is project-local and never committed.
if [ -d "$TOOLS" ] && [ ! -f "$TOOLS/.gitignore" ]; then printf '*\n' > "$TOOLS/.gitignore"; fi

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

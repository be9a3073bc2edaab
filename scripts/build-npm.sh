#!/usr/bin/env bash
# Builds the npm package `rtcbot-rs` (rtcbot.js's API from wasm-client, feature
# `js-api`, without the Yew app) and packs it into target/npm/rtcbot-rs-<version>.tgz.
#
#   target/npm/package/   the package folder (package.json, README.md, index.d.ts,
#                         web/: self-initialising ES module, bundler/: wasm-bindgen's
#                         bundler target, also what Node imports)
#   target/npm/*.tgz      `npm pack` of it (the only .tgz there)
#
# Tools: it uses wasm-bindgen-cli directly rather than wasm-pack. build-web.sh already
# installs wasm-bindgen-cli at exactly Cargo.lock's version and binaryen 123, so this
# works offline and adds no tool; wasm-pack would only wrap the same two programs and
# download its own wasm-bindgen. Missing tools are installed the way build-web.sh
# does. Idempotent; works unattended (CI=true, no stdin). Option: --no-install.
# Prints the gzip size of each .wasm (budget: 100 KB gzip) and fails above it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-npm.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$ROOT/target/npm"
PKG="$OUT/package"
BUDGET=$((100 * 1024))
SCRIPT=build-npm.sh
# 1. Tools (shared with build-web.sh).
# shellcheck source=scripts/wasm-tools.sh
. "$ROOT/scripts/wasm-tools.sh"

# 2. The wasm, without the Yew app, in its own cargo profile `npm` (release, optimised
#    for size, fat LTO, no debug info), defined here through cargo's environment
#    configuration so it neither touches Cargo.toml nor shares an output file with
#    trunk's release build of the app.
export CARGO_PROFILE_NPM_INHERITS=release CARGO_PROFILE_NPM_OPT_LEVEL=z \
  CARGO_PROFILE_NPM_LTO=fat CARGO_PROFILE_NPM_CODEGEN_UNITS=1 CARGO_PROFILE_NPM_DEBUG=0
log "cargo build -p rtcbot-wasm --no-default-features --features js-api --profile npm"
(cd "$ROOT" && cargo build --locked -p rtcbot-wasm --lib --profile npm \
  --target wasm32-unknown-unknown --no-default-features --features js-api)
WASM="$TARGET_DIR/wasm32-unknown-unknown/npm/rtcbot_wasm.wasm"

# 3. Bindings for both targets, then wasm-opt.
rm -rf "$PKG"
mkdir -p "$PKG"
for target in web bundler; do
  log "wasm-bindgen --target $target"
  wasm-bindgen "$WASM" --target "$target" --out-dir "$PKG/$target" --out-name rtcbot_wasm
  wasm="$PKG/$target/rtcbot_wasm_bg.wasm"
  wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
done
rm -f "$PKG"/*/.gitignore
# Trailing parameters typed `T | undefined` are optional in JS (rtcbot.js defaults):
# declare them `name?: T` so TypeScript lets callers leave them out.
node -e '
  const fs = require("fs");
  for (const f of process.argv.slice(1)) {
    const src = fs.readFileSync(f, "utf8");
    fs.writeFileSync(f, src.replace(/(\w+): ([^,():;]+?) \| undefined(?=[,)])/g, "$1?: $2"));
  }
' "$PKG/web/rtcbot_wasm.d.ts" "$PKG/bundler/rtcbot_wasm.d.ts"

# 4. The entry points and package files.
cat > "$PKG/web/index.js" <<'JS'
// rtcbot-rs for browsers: a self-initialising ES module. It loads
// rtcbot_wasm_bg.wasm from next to this file before the exports are usable;
// bundlers that follow `new URL(..., import.meta.url)` (webpack 5, Vite, Parcel)
// copy it for you; with esbuild, copy it next to your bundle.
import init from './rtcbot_wasm.js';
export * from './rtcbot_wasm.js';
await init({ module_or_path: new URL('./rtcbot_wasm_bg.wasm', import.meta.url) });
JS
cat > "$PKG/index.d.ts" <<'TS'
// The API of rtcbot-rs; every entry point (web, bundler, node) exports exactly this.
export * from './bundler/rtcbot_wasm.js';
TS
VERSION="$(awk -F'"' '/^\[workspace.package\]/ { w = 1 } w && /^version/ { print $2; exit }' "$ROOT/Cargo.toml")"
node -e '
  const fs = require("fs");
  const [src, dst, version] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(src, "utf8"));
  pkg.version = version;
  fs.writeFileSync(dst, JSON.stringify(pkg, null, 2) + "\n");
' "$ROOT/npm/package.json" "$PKG/package.json" "$VERSION"
cp "$ROOT/npm/README.md" "$PKG/README.md"

# 5. Pack.
rm -f "$OUT"/*.tgz
TARBALL="$(cd "$PKG" && npm pack --pack-destination "$OUT" --loglevel=error </dev/null | tail -n 1)"
log "packed $OUT/$TARBALL"

# 6. Sizes.
status=0
for f in "$PKG"/web/rtcbot_wasm_bg.wasm "$PKG"/bundler/rtcbot_wasm_bg.wasm; do
  gz=$(gzip -9 -c "$f" | wc -c)
  printf '%8d bytes gzip  %s (%d bytes raw; budget %d)\n' "$gz" "${f#"$ROOT"/}" "$(wc -c < "$f")" "$BUDGET"
  [ "$gz" -le "$BUDGET" ] || status=1
done
for f in "$PKG"/web/rtcbot_wasm.js "$PKG"/bundler/rtcbot_wasm_bg.js; do
  printf '%8d bytes gzip  %s\n' "$(gzip -9 -c "$f" | wc -c)" "${f#"$ROOT"/}"
done
printf '%8d bytes       %s\n' "$(wc -c < "$OUT/$TARBALL")" "target/npm/$TARBALL"
if [ "$status" != 0 ]; then
  echo "build-npm.sh: the package's wasm is over the 100 KB gzip budget" >&2
  exit 1
fi

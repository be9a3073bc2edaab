# Sourced by build-web.sh and build-npm.sh: installs the wasm tool chain, only what
# is missing, and puts it on PATH:
#   - the wasm32-unknown-unknown target,
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (trunk and the
#     npm build refuse a mismatched one offline),
#   - binaryen 123 (wasm-opt) from npm into .tools/ (Debian's 108 is too old for Yew).
# Expects ROOT, TOOLS, INSTALL (0 = fail instead of installing) and SCRIPT (for messages).

export PATH="$TOOLS/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log() { printf '==> %s\n' "$*" >&2; }
need() {
  if [ "$INSTALL" = 0 ]; then echo "$SCRIPT: missing $1 (run without --no-install)" >&2; exit 1; fi
  log "installing $1"
}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  need "the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

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

if ! wasm-opt --version 2>/dev/null | grep -q 'version 123'; then
  need "binaryen 123 (npm) into .tools/"
  mkdir -p "$TOOLS"
  [ -f "$TOOLS/.gitignore" ] || printf '*\n' > "$TOOLS/.gitignore"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error binaryen@123 </dev/null
fi

#!/usr/bin/env bash
# The Python environment of the RTCBot compatibility tests (tests/tests/rtcbot_python.rs):
# a venv at target/pyenv holding the real RTCBot from PyPI (with aiortc, PyAV, aiohttp),
# every package pinned in tests/python/requirements.txt.
# Idempotent: instant when the venv already holds exactly those pins; made anew when
# the pins change. Needs python3 (3.8 or newer) with venv; on Debian, installs
# python3-venv when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
requirements=tests/python/requirements.txt
stamp=$venv/.requirements.txt
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
python=${PYTHON:-python3}
command -v "$python" >/dev/null || bash scripts/setup.sh python3
# Debian's python3 keeps venv's pip bootstrap (ensurepip) in a package of its own.
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  bash scripts/setup.sh python3-venv
fi
echo "python-env: making $venv (pip install -r $requirements)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -r "$requirements"
cp "$requirements" "$stamp"
"$venv/bin/python" - <<'EOF' >&2
import importlib.metadata as m
print("python-env: ready:", ", ".join(f"{p} {m.version(p)}" for p in ["rtcbot", "aiortc", "av", "aiohttp"]))
EOF

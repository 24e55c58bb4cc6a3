#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs the locked dependencies; re-runs only when
# pyproject.toml or requirements.lock changed. Then installs the dashboard's browser assets (Chart.js)
# from services/api/frontend/package-lock.json with `npm ci`; re-runs only when the lock changed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
source deploy/local/apt.sh  # apt_get: waits for another apt/dpkg process instead of failing

python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python=$candidate && break
  fi
done
if [ -z "$python" ]; then
  echo "bootstrap: Python 3.11 is required (python3.11 not found)" >&2
  exit 1
fi

# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "bootstrap: installing chromium from Debian's packages"
  apt_get update -qq
  apt_get install -y -qq chromium >/dev/null
fi

stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
  echo "bootstrap: .venv ready ($(.venv/bin/python --version))"
fi

# The API serves Chart.js from node_modules (/static/vendor/chart.js/); it is never fetched from a CDN.
# The stamp lives inside node_modules, so deleting node_modules or changing the lock re-runs npm ci.
frontend=services/api/frontend
npm_stamp=$frontend/node_modules/.installed-$(sha1sum <"$frontend/package-lock.json" | cut -c1-12)
if [ ! -f "$npm_stamp" ]; then
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing npm from Debian's packages"
    apt_get update -qq
    apt_get install -y -qq npm >/dev/null
  fi
  if ! command -v npm >/dev/null; then
    echo "bootstrap: npm is required for the dashboard's chart (install Node.js 20 and npm)" >&2
    exit 1
  fi
  # --ignore-scripts: the packages are plain browser files; nothing needs to run at install.
  (cd "$frontend" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$npm_stamp"
  echo "bootstrap: dashboard assets ready ($frontend/node_modules)"
fi

# helm, for the chart's tests (tests/deploy): built once per clone with the machine's Go toolchain.
bash deploy/local/go_tools.sh >/dev/null

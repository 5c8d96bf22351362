#!/usr/bin/env bash
# The machine-level tools the tests need, installed only when missing (so it needs root only the
# first time, on a fresh Debian 12): Python venv, Node.js + npm, make, redis-server (the Redis store
# tests), chromium (the dashboard's browser tests), pypy3 (make test-pypy), and the regtest
# Lightning network of contrib_plugins/ilptx-lightning (bitcoind, ElectrumX, Electrum).
# Run by `make test` and `.ci/run`; idempotent (about a second when everything is there).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need python3 || missing+=(python3 python3-venv)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
need node || missing+=(nodejs)
need npm || missing+=(npm)
need make || missing+=(make)
need redis-server || missing+=(redis-server)  # the Redis store tests start their own server
need chromium || missing+=(chromium chromium-driver)  # the dashboard's browser tests (Playwright)
need pypy3 || missing+=(pypy3)  # make test-pypy: the unit tests on PyPy
pypy3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(pypy3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

bash contrib_plugins/ilptx-lightning/tests/tools/install-regtest.sh  # bitcoind, ElectrumX, Electrum (slow tier)

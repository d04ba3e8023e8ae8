#!/usr/bin/env bash
# Set up (first time only) and run the whole test suite, browser tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 || [ ! -d /usr/share/fonts/truetype/noto ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Debian's chromium (+ an emoji font for the screenshots) for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  else
    echo "test: chromium is missing; install it (Debian: apt-get install chromium) for the browser tests" >&2
  fi
fi
echo "test: ruff (lint + format check, rules in ruff.toml)"
.venv/bin/ruff check . && .venv/bin/ruff format --check . >/dev/null \
  || { echo "test: ruff found problems (fix: .venv/bin/ruff check --fix . && .venv/bin/ruff format .)" >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (idempotent, quick when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing requirements.txt into .venv (first time: a few minutes, torch is large)"
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt 2>&1 \
    | grep -v -E "^WARNING: Location .* is ignored" || true
  .venv/bin/python -c "import torch, torchvision, streamlit, timm" \
    || { echo "setup: the install failed, see the messages above" >&2; exit 1; }
  echo "$want" > .venv/.requirements.sha
fi

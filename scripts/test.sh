#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole suite: ruff, mypy, pytest (unit,
# integration, Redis, Playwright e2e) and the add-in's node tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh dev

echo "== ruff"; .venv/bin/ruff check backend scripts tests wsgi.py
echo "== mypy"; .venv/bin/mypy
if [ -f office-addin/package.json ]; then
  echo "== office-addin (node)"; (cd office-addin && npm test --silent)
fi
echo "== pytest"; .venv/bin/python -m pytest "$@"

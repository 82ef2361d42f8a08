#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole suite: ruff (lint and format), mypy
# (backend, scripts, tests), the add-in's node tests and pytest (unit, integration, Redis,
# hardening, Playwright and Node e2e) with branch coverage of backend/ held at 90 % or more.
# Arguments go to pytest; with any, coverage is reported but its floor is not applied.
#   fast subset while you work:  .venv/bin/python -m pytest tests/unit -q
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh dev

echo "== ruff"; .venv/bin/ruff check backend scripts tests wsgi.py gunicorn.conf.py
echo "== ruff format"; .venv/bin/ruff format --check backend scripts tests wsgi.py gunicorn.conf.py
echo "== mypy"; .venv/bin/mypy
if [ -f office-addin/package.json ]; then
  echo "== office-addin (node)"; (cd office-addin && npm test --silent)
fi
floor=90; [ $# -gt 0 ] && floor=0
# Two test processes (pytest-xdist; PYTEST_WORKERS=0 runs in this one): most tests wait on
# sockets and subprocesses, so two share the machine's two cores well.
echo "== pytest"
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --cov=backend --cov-branch \
  --cov-report=term:skip-covered --cov-fail-under="$floor" "$@"

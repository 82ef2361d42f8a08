#!/usr/bin/env bash
# Set everything up (idempotent) and start the development server on HOST:PORT
# (default 127.0.0.1:5000) with the offline `local` provider unless a key is configured.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh run
exec .venv/bin/python -m backend "$@"

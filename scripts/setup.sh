#!/usr/bin/env bash
# Sourced by run.sh and test.sh: create/reuse .venv and install what is needed.
#   setup.sh        the service (no API key needed: the offline provider is the default)
#   setup.sh dev    plus test tools, redis-server, chromium, the add-in's npm packages
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode="${1:-run}"
PY="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Python packages come at the versions of requirements/lock.txt, the ones CI ran with (refresh it
# with the command at its top). It locks the dev extra: `dev` installs all of it, `run` only the
# server's share, the lock acting as constraints. One resolve with the project itself, so a lock
# that contradicts pyproject.toml fails here instead of installing the wrong version.
lock=requirements/lock.txt
stamp=".venv/.installed-$mode-$(cat pyproject.toml "$lock" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  if [ "$mode" = dev ]; then extra="dev" pins="-r"; else extra="server" pins="-c"; fi
  echo "Installing Python packages into .venv (.[$extra], versions from $lock) ..."
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/pip install -q "$pins" "$lock" -e ".[$extra]"; } > .venv/pip.log 2>&1; then
    cat .venv/pip.log; exit 1
  fi
  touch "$stamp"
fi

if [ "$mode" = dev ]; then
  missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ -f office-addin/package-lock.json ] && [ ! -d office-addin/node_modules ]; then
    (cd office-addin && npm ci --no-audit --no-fund --silent)
  fi
fi

"""The installed distribution's version, in one place (pyproject.toml is its only source).

A module of its own so that api.py and openapi.py can read it without importing the
package root, whose `create_app` imports them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flaskllm")
except PackageNotFoundError:  # pragma: no cover - run from a copy of the sources, not installed
    __version__ = "0+unknown"

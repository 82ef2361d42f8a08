"""Cheaper idle-connection checks for the SDKs' HTTP client under gevent workers.

Before it reuses a pooled keep-alive connection (and again when a response is closed),
httpcore asks whether the idle socket is readable, with `select.poll()` and a zero
timeout. Under gevent, `select` is monkey-patched and that poll builds watchers and runs
a turn of the hub: profiled in a gevent worker at 0 ms upstream, it was ~18 % of the
worker's CPU per provider call. A zero-timeout poll never blocks, so the original,
unpatched `select.poll` is exactly as correct there and costs a system call. Only
httpcore's own helper module gets it; everything else keeps gevent's cooperative select.
"""

from __future__ import annotations

import importlib
import logging
import types

log = logging.getLogger("backend.gevent_tuning")
HTTPCORE_UTILS = ("httpcore2._utils", "httpcore._utils")  # the SDKs' httpx2 (openai 3) and httpx


def use_native_readiness_check() -> list[str]:
    """In a gevent-patched process, give httpcore the unpatched select; the modules patched."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is part of the server extra
        return []
    if not monkey.is_module_patched("select"):
        return []
    import select

    native = types.SimpleNamespace(
        poll=monkey.get_original("select", "poll"),
        select=monkey.get_original("select", "select"),
        POLLIN=select.POLLIN,
    )
    patched = []
    for name in HTTPCORE_UTILS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        module.select = native  # type: ignore[attr-defined]
        patched.append(name)
    if patched:
        log.debug("native readiness check for %s", ", ".join(patched))
    return patched

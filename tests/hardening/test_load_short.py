"""A short run of scripts/loadtest.py: mixed traffic through the deployed gunicorn.

Speed is the script's business (figures in scripts/results/loadtest.json); this test
only holds the promise that under concurrent load nothing fails that should not: every
answer is the one its request should get (200, or the intended 401/400), and every
batch returns all its rows.
"""

from __future__ import annotations

import pytest

from scripts.loadtest import EXPECTED, KINDS, run

REQUESTS = 1000


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_short_load_has_no_unintended_errors(worker_class: str) -> None:
    result = run(worker_class, requests=REQUESTS, concurrency=64, latency_ms=50, warmup=0)
    assert result["unintended_errors"] == 0, result["unintended_by_kind"]
    intended = sum(KINDS.count(kind) for kind in EXPECTED) * REQUESTS // len(KINDS)
    assert sum(result["intended_errors"].values()) == intended  # the bad requests were sent, and refused
    assert result["statuses"].get("200", 0) == REQUESTS - intended

"""Load and soak: mixed traffic through the deployed gunicorn, for each worker class.

    .venv/bin/python scripts/loadtest.py [--worker-class gevent|gthread|both]
        [--requests 20000] [--concurrency 64] [--latency-ms 50] [--warmup 5000]

Gunicorn runs as deployed (gunicorn.conf.py, settings from the environment) in front of
scripts/mock_llm.py answering after `--latency-ms`. The traffic is a fixed mix, request i
of kind KINDS[i % 20]: webhook misses (new prompts, through the mock) and cache hits,
5-row batches (3 new rows, 2 cached), health checks, and intended errors (a wrong token:
401; an empty prompt and an unknown task type: 400), counted apart from the rest.
Everything else that is not a 200, and every batch that does not return all 5 rows
succeeded, is an unintended error: the target is zero.

Memory: RSS of the workers (master excluded) after the warm-up, which also fills each
worker's in-memory cache to its bound (CACHE_MAX_ENTRIES), and at the end; the target is
growth under 10 %. Prints a table and writes scripts/results/loadtest.json. Figures, not
pass/fail: the test suite runs a short version and asserts zero unintended errors only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from scripts.benchlib import Result, gunicorn_deployed, load, mock_llm, summarise, write_json

KINDS = (
    ["miss"] * 6
    + ["hit"] * 5
    + ["batch"] * 3
    + ["health"] * 3
    + ["unauthorized", "empty_prompt", "unknown_type"]
)
EXPECTED = {"unauthorized": 401, "empty_prompt": 400, "unknown_type": 400}
HIT_POOL = 50
BATCH_ROWS = 5
CACHE_MAX_ENTRIES = 1000


class Traffic:
    """Request i of a run: deterministic, with prompts unique to this run (`stamp`)."""

    def __init__(self, offset: int = 0) -> None:
        self.stamp = time.time_ns()
        self.offset = offset  # warm-up and measured phases get different prompts

    def kind(self, i: int) -> str:
        return KINDS[i % len(KINDS)]

    def __call__(self, i: int) -> tuple[Any, ...]:
        kind, n = self.kind(i), i + self.offset
        if kind == "miss":
            return "POST", "/api/v1/webhook", {"prompt": self.new(n)}
        if kind == "hit":
            return "POST", "/api/v1/webhook", {"prompt": self.pooled(n)}
        if kind == "batch":
            rows = [self.new(n * 10 + r) if r < 3 else self.pooled(n + r) for r in range(BATCH_ROWS)]
            return "POST", "/api/v1/batch", {"items": [{"id": r, "prompt": p} for r, p in enumerate(rows)]}
        if kind == "health":
            return "GET", "/api/v1/health", None
        if kind == "unauthorized":
            return "POST", "/api/v1/webhook", {"prompt": self.new(n)}, {"X-API-Token": "wrong-token"}
        if kind == "empty_prompt":
            return "POST", "/api/v1/webhook", {"prompt": "   "}
        return "POST", "/api/v1/webhook", {"prompt": self.new(n), "type": "haiku"}

    def new(self, n: int) -> str:
        return f"Load test {self.stamp} e-mail {n}: please confirm the order for account {n % 97}. Thanks!"

    @staticmethod
    def pooled(n: int) -> str:
        return f"The recurring e-mail number {n % HIT_POOL}: the meeting moves to Friday. Regards."


def unintended(traffic: Traffic, results: list[Result]) -> Counter[str]:
    """Answers that are not what request i should get, by 'kind:status'."""
    wrong: Counter[str] = Counter()
    for result in results:
        kind = traffic.kind(result.index)
        if result.status != EXPECTED.get(kind, 200):
            wrong[f"{kind}:{result.status}"] += 1
        elif kind == "batch":
            rows = json.loads(result.body)["results"]
            if [row["index"] for row in rows] != list(range(BATCH_ROWS)) or not all(r["ok"] for r in rows):
                wrong["batch:rows_lost_or_failed"] += 1
    return wrong


def run(
    worker_class: str,
    requests: int,
    concurrency: int,
    latency_ms: float,
    warmup: int,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One measured run; returns its figures (see the module docstring)."""
    env = {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-load",
        "REQUEST_TIMEOUT": "30",
        "CACHE_MAX_ENTRIES": str(CACHE_MAX_ENTRIES),
        "BATCH_CONCURRENCY": str(BATCH_ROWS),
        "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "2"),
        **(extra_env or {}),
    }
    with mock_llm(latency_ms=latency_ms) as mock_url:
        env["OPENAI_BASE_URL"] = mock_url + "/v1"
        with gunicorn_deployed(env, worker_class=worker_class) as server:
            warm = Traffic(offset=10**9)
            warm_results: list[Result] = []
            load(server.port, concurrency, warmup, warm, warm_results)
            rss_start = server.worker_rss_mb(include_master=False)
            traffic = Traffic()
            results: list[Result] = []
            summary = load(server.port, concurrency, requests, traffic, results)
            rss_end = server.worker_rss_mb(include_master=False)
            workers = len(server.worker_pids())
    wrong = unintended(traffic, results)
    intended = Counter(traffic.kind(r.index) for r in results if traffic.kind(r.index) in EXPECTED)
    by_kind = {
        kind: summarise([r for r in results if traffic.kind(r.index) == kind], summary["wall_s"])
        for kind in dict.fromkeys(KINDS)
        if kind not in EXPECTED
    }
    return {
        "worker_class": worker_class,
        "workers": workers,
        "requests": requests,
        "concurrency": concurrency,
        "upstream_latency_ms": latency_ms,
        "warmup_requests": warmup,
        "extra_env": extra_env or {},
        "warmup_unintended": sum(unintended(warm, warm_results).values()),
        "rps": summary["rps"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "wall_s": summary["wall_s"],
        "statuses": summary["statuses"],
        "intended_errors": dict(intended),
        "unintended_errors": sum(wrong.values()),
        "unintended_by_kind": dict(wrong),
        "latency_by_kind_ms": {k: {"p50": v["p50_ms"], "p99": v["p99_ms"]} for k, v in by_kind.items()},
        "rss_workers_mb": {
            "after_warmup": round(rss_start, 1),
            "end": round(rss_end, 1),
            "growth_pct": round((rss_end - rss_start) / rss_start * 100, 1),
        },
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'':<34}" + "".join(f"{r['worker_class']:>16}" for r in results)]
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        (f"requests (c={results[0]['concurrency']})", lambda r: r["requests"]),
        ("requests/s", lambda r: r["rps"]),
        ("p50 / p99 ms (2xx)", lambda r: f"{r['p50_ms']}/{r['p99_ms']}"),
        ("webhook miss p50/p99 ms", lambda r: "{p50}/{p99}".format(**r["latency_by_kind_ms"]["miss"])),
        ("batch p50/p99 ms", lambda r: "{p50}/{p99}".format(**r["latency_by_kind_ms"]["batch"])),
        ("intended 4xx", lambda r: sum(r["intended_errors"].values())),
        ("unintended errors (target 0)", lambda r: r["unintended_errors"]),
        ("worker RSS MB after warm-up", lambda r: r["rss_workers_mb"]["after_warmup"]),
        ("worker RSS MB at end", lambda r: r["rss_workers_mb"]["end"]),
        ("RSS growth % (target < 10)", lambda r: r["rss_workers_mb"]["growth_pct"]),
    ]
    for label, get in rows:
        lines.append(f"{label:<34}" + "".join(f"{get(r)!s:>16}" for r in results))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-class", choices=["gevent", "gthread", "both"], default="both")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the server, e.g. CACHE_URL=memory:// (repeatable)",
    )
    parser.add_argument("--out", default="loadtest.json", help="file name under scripts/results/")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    classes = ["gevent", "gthread"] if args.worker_class == "both" else [args.worker_class]
    results = [
        run(wc, args.requests, args.concurrency, args.latency_ms, args.warmup, extra) for wc in classes
    ]
    print(table(results))
    path = write_json(
        args.out,
        {
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "results": results,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""Benchmark of the batch endpoint, the response cache and the webhook path.

    .venv/bin/python scripts/bench.py [--worker-class gthread|gevent|both] [--rows 1000]

Against scripts/mock_llm.py (200 ms upstream for the batch, 0 ms for the webhook) with
the app under gunicorn on loopback, it measures:
  1. a 1,000-row batch at BATCH_CONCURRENCY=32: wall time and efficiency =
     ideal / actual, ideal = ceil(rows / 32) x 0.2 s        (target >= 0.9)
  2. the same batch again, every row cached: wall time       (target < 0.5 s)
  3. webhook through the mock at concurrency 1 and 32 (misses), the cache-hit path and
     plain /api/v1/health at concurrency 32 in the same run  (target: hits >= 0.5 x health)
Prints a table and writes scripts/results/bench.json. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from typing import Any

from benchlib import configure_mock, gunicorn, http, load, mock_llm, request, write_json

UPSTREAM_S = 0.2
CONCURRENCY = 32


def batch_phase(port: int, rows: int) -> dict[str, Any]:
    items = [{"id": i, "prompt": f"Bench e-mail number {i}: please confirm the order.", "type": "summary"}
             for i in range(rows)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    first = request(conn, "POST", "/api/v1/batch", {"items": items})
    second = request(conn, "POST", "/api/v1/batch", {"items": items})
    stats1 = json.loads(first.body)["stats"]
    stats2 = json.loads(second.body)["stats"]
    ideal = math.ceil(rows / CONCURRENCY) * UPSTREAM_S
    return {
        "rows": rows,
        "cold_wall_s": round(first.seconds, 3),
        "ideal_s": round(ideal, 3),
        "efficiency": round(ideal / first.seconds, 3),
        "cold_stats": stats1,
        "cached_wall_s": round(second.seconds, 3),
        "cached_stats": {k: stats2[k] for k in ("total", "succeeded", "cached")},
    }


def webhook_phase(port: int, mock_url: str, n: int) -> dict[str, Any]:
    configure_mock(mock_url, latency_ms=0)
    stamp = time.time_ns()

    def miss(i: int) -> tuple[str, str, Any]:
        return "POST", "/api/v1/webhook", {"prompt": f"Webhook bench {stamp} request {i}: call me."}

    def hit(i: int) -> tuple[str, str, Any]:
        return "POST", "/api/v1/webhook", {"prompt": "The one cached e-mail: meeting moved to Friday."}

    def health(i: int) -> tuple[str, str, Any]:
        return "GET", "/api/v1/health", None

    load(port, 4, 200, hit)  # warm-up: imports, connections, and the cached answer
    out = {
        "webhook_c1": load(port, 1, n // 4, lambda i: miss(i)),
        "webhook_c32": load(port, 32, n, lambda i: miss(i + n)),
        "cache_hit_c32": load(port, 32, n, hit),
        "health_c32": load(port, 32, n, health),
    }
    out["hit_over_health"] = round(out["cache_hit_c32"]["rps"] / out["health_c32"]["rps"], 3)
    return out


def run(worker_class: str, rows: int, n: int) -> dict[str, Any]:
    with mock_llm(latency_ms=UPSTREAM_S * 1000) as mock_url:
        env = {
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": mock_url + "/v1",
            "BATCH_CONCURRENCY": str(CONCURRENCY),
            "BATCH_MAX_ITEMS": str(rows),
            "BATCH_TIMEOUT": "120",
            "REQUEST_TIMEOUT": "30",
        }
        with gunicorn(env, worker_class=worker_class) as server:
            result: dict[str, Any] = {"worker_class": worker_class, "batch": batch_phase(server.port, rows)}
            result.update(webhook_phase(server.port, mock_url, n))
            result["rss_mb"] = round(server.worker_rss_mb(), 1)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'metric':<38}" + "".join(f"{r['worker_class']:>14}" for r in results)]

    def row(label: str, get: Any) -> None:
        lines.append(f"{label:<38}" + "".join(f"{get(r)!s:>14}" for r in results))

    row("batch cold wall s (1000 rows, c=32)", lambda r: r["batch"]["cold_wall_s"])
    row("batch ideal s", lambda r: r["batch"]["ideal_s"])
    row("batch efficiency (target >= 0.9)", lambda r: r["batch"]["efficiency"])
    row("batch cached wall s (target < 0.5)", lambda r: r["batch"]["cached_wall_s"])
    row("batch cached rows", lambda r: r["batch"]["cached_stats"]["cached"])
    for key in ("webhook_c1", "webhook_c32", "cache_hit_c32", "health_c32"):
        row(f"{key} rps", lambda r, k=key: r[k]["rps"])
        row(f"{key} p50 / p99 ms", lambda r, k=key: f"{r[k]['p50_ms']}/{r[k]['p99_ms']}")
    row("cache hit rps / health rps (>= 0.5)", lambda r: r["hit_over_health"])
    row("RSS master+workers MB", lambda r: r["rss_mb"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker-class", choices=["gthread", "gevent", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per webhook phase")
    args = parser.parse_args()
    classes = ["gthread", "gevent"] if args.worker_class == "both" else [args.worker_class]
    results = [run(wc, args.rows, args.requests) for wc in classes]
    print(table(results))
    path = write_json("bench.json", {"machine": platform.platform(), "cpus": __import__("os").cpu_count(),
                                     "when": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

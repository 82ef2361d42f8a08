"""Benchmarks: the Excel surfaces at scale, and the batch, cache and webhook paths.

    .venv/bin/python scripts/bench.py [--suite excel|http|all] [--worker-class gthread|gevent|both]

Suite `excel` (the default): the server started as the README starts it (`gunicorn
wsgi:application`, gunicorn.conf.py, shipped defaults: only a token and the provider set)
in front of scripts/mock_llm.py, and the Excel surfaces driven in Node by
scripts/excel_driver.js, each next to its ideal of ceil(rows / 32) x upstream latency:
  1. PROCESSEMAIL filled down 1,000 cells (200 ms upstream), then recalculated: every cell
     OK, /batch requests, wall time, upstream calls of the recalculation (target: <= 10
     requests, ideal / actual >= 0.7, 0 upstream calls on recalculation)
  2. ProcessEmails.ts on 2,000 rows of 3 KB e-mails (200 ms upstream), one run, fake
     workbook enforcing Excel's 5 MB per call                (target: ideal / actual >= 0.8)
  3. ProcessEmails.ts on 25,000 rows at 100 ms upstream, as jobs  (target: <= 1.25 x ideal)

Suite `http`, against the mock (200 ms upstream for the batch, 0 ms for the webhook) with
the app under gunicorn on loopback:
  1. a 1,000-row batch at PROVIDER_CONCURRENCY=32: wall time and efficiency =
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

from benchlib import (
    TOKEN,
    configure_mock,
    gunicorn,
    gunicorn_shipped,
    http,
    load,
    mock_llm,
    mock_stats,
    node_driver,
    request,
    write_json,
)

UPSTREAM_S = 0.2
CONCURRENCY = 32


def batch_phase(port: int, rows: int) -> dict[str, Any]:
    items = [
        {"id": i, "prompt": f"Bench e-mail number {i}: please confirm the order.", "type": "summary"}
        for i in range(rows)
    ]
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


def ideal_s(rows: int, latency_s: float) -> float:
    return math.ceil(rows / CONCURRENCY) * latency_s


def excel_run(name: str, latency_s: float, rows: int, args: list[str]) -> dict[str, Any]:
    """One Node scenario against a fresh shipped-defaults server and mock."""
    with mock_llm(latency_ms=latency_s * 1000) as mock_url:
        env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": mock_url + "/v1", "LOG_LEVEL": "WARNING"}
        with gunicorn_shipped(env) as server:
            url = f"http://127.0.0.1:{server.port}"
            before = mock_stats(mock_url)["calls"]
            figures = node_driver(args[0], "--url", url, "--token", TOKEN, *args[1:])
            figures["upstream_calls"] = mock_stats(mock_url)["calls"] - before
            figures["rss_mb"] = round(server.worker_rss_mb(), 1)
    ideal = ideal_s(rows, latency_s)
    seconds = figures["seconds"]
    return {
        "name": name,
        "rows": rows,
        "latency_s": latency_s,
        "ideal_s": round(ideal, 2),
        "efficiency": round(ideal / seconds, 3),
        "x_ideal": round(seconds / ideal, 3),
        **figures,
    }


def excel_suite() -> list[dict[str, Any]]:
    stamp = str(time.time_ns())
    return [
        excel_run(
            "fill-down 1,000 cells + recalc", 0.2, 1000, ["filldown", "--cells", "1000", "--prefix", stamp]
        ),
        excel_run(
            "Office Script, 2,000 rows x 3 KB",
            0.2,
            2000,
            ["script", "--rows", "2000", "--bytes", "3000", "--prefix", stamp, "--approve-usd", "10000"],
        ),
        excel_run(
            "Office Script, 25,000 rows (jobs)",
            0.1,
            25000,
            ["script", "--rows", "25000", "--bytes", "300", "--prefix", stamp, "--approve-usd", "10000"],
        ),
    ]


def excel_table(runs: list[dict[str, Any]]) -> str:
    lines = [f"{'scenario':<36}{'ok':>8}{'requests':>10}{'wall s':>9}{'ideal s':>9}{'ideal/wall':>12}"]
    for r in runs:
        requests = r.get("batch_requests", r.get("jobs_submitted", ""))
        lines.append(
            f"{r['name']:<36}{r['ok']:>8}{requests!s:>10}{r['seconds']:>9}{r['ideal_s']:>9}"
            f"{r['efficiency']:>12}"
        )
        if "recalc_seconds" in r:
            recalc_calls = r["upstream_calls"] - r["ok"]
            lines.append(
                f"{'  recalculation':<36}{r['recalc_ok']:>8}{r['recalc_batch_requests']:>10}"
                f"{r['recalc_seconds']:>9}{'':>9}{'upstream calls: ' + str(recalc_calls):>12}"
            )
        if "max_call_bytes" in r:
            lines.append(f"{'  largest workbook call, bytes':<36}{r['max_call_bytes']:>8}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suite", choices=["excel", "http", "all"], default="excel")
    parser.add_argument("--worker-class", choices=["gthread", "gevent", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per webhook phase")
    args = parser.parse_args()
    about = {
        "machine": platform.platform(),
        "cpus": __import__("os").cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.suite in ("excel", "all"):
        runs = excel_suite()
        print(excel_table(runs))
        print(f"wrote {write_json('bench_excel.json', {**about, 'runs': runs})}\n")
    if args.suite in ("http", "all"):
        classes = ["gthread", "gevent"] if args.worker_class == "both" else [args.worker_class]
        results = [run(wc, args.rows, args.requests) for wc in classes]
        print(table(results))
        print(f"\nwrote {write_json('bench.json', {**about, 'results': results})}")


if __name__ == "__main__":
    main()

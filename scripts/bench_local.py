"""Time each task of the offline `local` provider on the sample e-mail; score its sentiment.

Why: the local provider runs inside the request (no network), so its CPU time is the
request's latency and, under gevent, time stolen from every other request on the worker.
This prints mean / p50 / p99 per task, then the sentiment accuracy on the labelled
business e-mails in tests/data/sentiment_emails*.jsonl (what each set is for: see
tests/unit/test_local_sentiment.py), and writes both to scripts/results/bench_local.json.

    .venv/bin/python scripts/bench_local.py [--iterations 200] [--warmup 20] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.providers.base import Job  # noqa: E402
from backend.providers.local import LocalProvider  # noqa: E402

TASKS = ("summary", "keywords", "sentiment", "entities")
SENTIMENT_SETS = {
    "sentiment_emails": "held out (written before the rules)",
    "sentiment_emails_dev": "development (rules tuned on it)",
    "sentiment_emails_fresh": "fresh (written later, measured once per round)",
}


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_ms) - 1, max(0, round(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def bench(text: str, iterations: int, warmup: int) -> dict[str, dict[str, float]]:
    """Per task: mean, p50, p99 and max in milliseconds over `iterations` calls."""
    started = time.perf_counter()
    provider = LocalProvider()
    results: dict[str, dict[str, float]] = {"construct": {"ms": (time.perf_counter() - started) * 1000}}
    for task in TASKS:
        job = Job(task=task, text=text)
        for _ in range(warmup):
            provider.complete(job, timeout=10)
        samples: list[float] = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            provider.complete(job, timeout=10)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        results[task] = {
            "mean_ms": round(statistics.fmean(samples), 3),
            "p50_ms": round(percentile(samples, 50), 3),
            "p99_ms": round(percentile(samples, 99), 3),
            "max_ms": round(samples[-1], 3),
        }
    return results


def sentiment_accuracy(provider: LocalProvider) -> dict[str, dict[str, float | int]]:
    """Per labelled set: e-mails, correct labels, accuracy (and all sets together)."""
    out: dict[str, dict[str, float | int]] = {}
    total = correct = 0
    for name in SENTIMENT_SETS:
        path = ROOT / "tests/data" / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        hits = sum(provider.sentiment(row["text"])["label"] == row["label"] for row in rows)
        out[name] = {"emails": len(rows), "correct": hits, "accuracy": round(hits / len(rows), 3)}
        total += len(rows)
        correct += hits
    out["all"] = {"emails": total, "correct": correct, "accuracy": round(correct / total, 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--file", type=Path, default=ROOT / "tests/data/sample_email.txt")
    parser.add_argument("--out", type=Path, default=ROOT / "scripts/results/bench_local.json")
    args = parser.parse_args()

    text = args.file.read_text(encoding="utf-8")
    results = bench(text, args.iterations, args.warmup)

    print(f"local provider on {args.file.name} ({len(text.split())} words, {len(text)} chars),")
    print(f"{args.iterations} iterations after {args.warmup} warm-up calls per task")
    print(f"provider construction: {results['construct']['ms']:.1f} ms (once per process)\n")
    print(f"{'task':<10} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for task in TASKS:
        r = results[task]
        print(f"{task:<10} {r['mean_ms']:>9.2f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['max_ms']:>9.2f}")

    accuracy = sentiment_accuracy(LocalProvider(ner_model="none"))
    print("\nsentiment accuracy on labelled business e-mails (positive/negative/neutral/mixed)")
    for name, r in accuracy.items():
        role = SENTIMENT_SETS.get(name, "all of them")
        print(f"{name:<24} {r['correct']:>3}/{r['emails']:<3} = {r['accuracy']:.3f}  {role}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "input": {
            "file": shown(args.file),
            "words": len(text.split()),
            "chars": len(text),
        },
        "iterations": args.iterations,
        "warmup": args.warmup,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
        "sentiment_accuracy": accuracy,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {shown(args.out)}")


if __name__ == "__main__":
    main()

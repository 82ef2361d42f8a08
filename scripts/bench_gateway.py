"""Gateway benchmark: FlaskLLM next to a bare Flask + openai SDK handler (and LiteLLM).

Why it exists: the issue asks whether FlaskLLM, as shipped, costs more than the few lines
anyone would write instead (a Flask route calling the official SDK), and how it compares
with LiteLLM's proxy. This script reproduces the whole comparison in ONE run, with the
systems measured in alternating rounds (A, B, A, B, ...) so that the drift of a shared
machine falls on all of them alike; every figure is the median over rounds.

    .venv/bin/python scripts/bench_gateway.py [--quick] [--rounds 5] [--seconds 3] [--litellm-python PY]
        [--litellm-workers 1] [--set NAME=VALUE ...]

Systems, each in front of scripts/mock_llm.py (its own process, OpenAI wire format):
  * FlaskLLM: `gunicorn wsgi:application` with the shipped defaults (benchlib.gunicorn_shipped:
    gunicorn.conf.py, gevent, one worker per core) and the openai provider pointed at the
    mock (OPENAI_BASE_URL / OPENAI_API_KEY). One change, printed with the figures:
    RATE_LIMIT=1000000: the limiter runs as shipped, but the shipped 60 requests/min per
    token would answer 429s.
  * bare: a tiny Flask app carried in this file (BARE_APP), written to a temp module and
    served by gunicorn gevent with FlaskLLM's worker count; one POST route that calls
    client.chat.completions.create against the mock and returns the text as JSON.
  * LiteLLM proxy, when the interpreter of --litellm-python (default: this one) can import
    litellm.proxy; else it is skipped. LiteLLM pins its own SDK versions, so give it a venv
    of its own: `uv venv /tmp/lvenv && uv pip install --python /tmp/lvenv/bin/python
    "litellm[proxy]"`, then `--litellm-python /tmp/lvenv/bin/python`. It runs with its
    CLI's own default of 1 worker, as shipped; `--litellm-workers 0` gives it FlaskLLM's.

The load generator is closed-loop: each client holds one keep-alive connection, sends a
request, waits for the whole reply and sends the next. All clients share one selector
loop in this process (raw sockets, pre-built requests), which costs a few microseconds
per request; its own CPU, the mock's CPU and the machine's busy share are printed so a
saturated generator or mock would show. Figures (per system, 0 ms upstream unless said):
  1. p50 overhead at c=1: p50 through the system minus p50 of the mock called directly
  2. rps at c=32, cache misses (a new prompt on every request)
  3. server CPU ms per request at c=32 (utime + stime of master and workers, /proc)
  4. % of ideal (c / 0.2 s) at 200 ms upstream, c=64 and c=256 (a second mock process)
  5. FlaskLLM: cache-hit rps at c=32 (a few prompts repeated after a warm-up)
  6. FlaskLLM: RSS of master + workers after 100,000 unique prompts at c=32 (a fresh
     deployment; --quick sends 10,000), and their PSS, which counts a shared page once
  7. FlaskLLM: rows per server CPU-second through /api/v1/batch (100 new rows a batch)
     and through jobs (2,000 new rows, polled until done)
`--set NAME=VALUE` runs FlaskLLM with one of its settings changed (printed with the figures),
e.g. `--set PROVIDER_CONCURRENCY=128` to see what the provider budget costs at 200 ms.
The issue's targets are printed beside the figures, met or not met; the exit status never
depends on them. Writes scripts/results/bench_gateway.json and bench_gateway.txt.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from scripts.benchlib import (
    PYTHON,
    ROOT,
    TOKEN,
    Server,
    free_port,
    gunicorn_shipped,
    mock_llm,
    pss_mib,
    request,
    rss_mib,
    wait_http,
    write_json,
)

UPSTREAM_SLOW_MS = 200.0
MODEL = "gpt-4"
API_KEY = "sk-bench"
SUMMARY_SYSTEM = (  # FlaskLLM's summary instruction (backend/templates.toml), for the bare app too
    "You summarize business text (e-mails, meetings, documents) for busy readers. Write a concise "
    "summary in two or three sentences that keeps decisions, requests, dates and amounts. Answer "
    "with the summary only, no preamble. The text is from: a spreadsheet."
)
HIT_PROMPTS = [f"Cached e-mail {n}: the meeting moved to Friday, bring the Q3 figures." for n in range(8)]
BATCH_ROWS = 100
JOB_ROWS = 2000
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {
    "overhead_ms": 2.0,
    "rps_vs_bare": 1.0,
    "rps_vs_litellm": 7.0,
    "ideal_c64": 0.90,
    "ideal_c256": 0.40,
    "hit_rps": 1500.0,
    "rss_mib": 200.0,
    "rows_per_cpu_s": 1000.0,
}

BARE_APP = f'''"""Bare Flask + the official openai SDK: the baseline of scripts/bench_gateway.py."""

import os

from flask import Flask, jsonify, request
from openai import OpenAI

SYSTEM = {SUMMARY_SYSTEM!r}
app = Flask(__name__)
client = OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.post("/complete")
def complete():
    prompt = request.get_json()["prompt"]
    reply = client.chat.completions.create(
        model={MODEL!r},
        messages=[{{"role": "system", "content": SYSTEM}}, {{"role": "user", "content": prompt}}],
    )
    return jsonify(text=reply.choices[0].message.content)
'''

LITELLM_CONFIG = """model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {base}
      api_key: {key}
general_settings:
  master_key: {master}
"""
# LiteLLM's proxy refuses to start without a strong master key; clients send it as Bearer.
LITELLM_MASTER_KEY = "sk-" + "0123456789abcdef" * 4


# ---------------------------------------------------------------- processes and /proc


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (gunicorn: the master and its workers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children_of(current)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of `pids` (all their threads), from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15, counted from `state` (3)
    return ticks / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


@contextmanager
def mock_process(latency_ms: float) -> Iterator[tuple[str, int]]:
    """benchlib.mock_llm, plus the mock's pid (the child that appeared), for its CPU."""
    before = set(children_of(os.getpid()))
    with mock_llm(latency_ms=latency_ms) as url:
        new = sorted(set(children_of(os.getpid())) - before)
        yield url, new[0] if new else -1


@dataclass
class System:
    """One system under test: where it listens and how to build its requests."""

    name: str
    port: int
    pid: int  # the server's first process; its tree is what CPU and RSS count
    path: str
    headers: dict[str, str]
    body: Callable[[str], dict[str, Any]]
    log: Path | None = None

    def pids(self) -> list[int]:
        return tree(self.pid) if self.pid > 0 else []


def flaskllm_system(server: Server, log: Path) -> System:
    return System(
        "FlaskLLM",
        server.port,
        server.proc.pid,
        "/api/v1/webhook",
        {"X-API-Token": TOKEN},
        lambda p: {"prompt": p, "type": "summary"},
        log,
    )


def mock_system(url: str, pid: int) -> System:
    port = int(url.rsplit(":", 1)[1])
    return System(
        "mock",
        port,
        pid,
        "/v1/chat/completions",
        {"Authorization": f"Bearer {API_KEY}"},
        lambda p: {
            "model": MODEL,
            "messages": [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": p}],
        },
    )


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _base_env(mock_url: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "OPENAI_BASE_URL": mock_url + "/v1",
        "OPENAI_API_KEY": API_KEY,
    }


@contextmanager
def flaskllm(mock_url: str) -> Iterator[System]:
    """FlaskLLM with the shipped defaults, the provider at the mock, the rate limit raised."""
    log = Path(tempfile.mkdtemp(prefix="bench-gateway-flaskllm-")) / "gunicorn.log"
    env = {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": mock_url + "/v1",
        "RATE_LIMIT": BENCH_RATE_LIMIT,
        **FLASKLLM_SETTINGS,
    }
    with gunicorn_shipped(env, log_path=log) as server:
        yield flaskllm_system(server, log)


@contextmanager
def bare(mock_url: str, workers: int) -> Iterator[System]:
    """BARE_APP under gunicorn gevent, `workers` workers, from a temp folder (no conf file)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-bare-"))
    (folder / "bare_app.py").write_text(BARE_APP)
    port, log = free_port(), folder / "gunicorn.log"
    args = [PYTHON, "-m", "gunicorn", "-k", "gevent", "-w", str(workers), "--worker-connections", "1000"]
    args += ["-b", f"127.0.0.1:{port}", "--keep-alive", "5", "--log-level", "warning", "bare_app:app"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args, cwd=folder, env=_base_env(mock_url), stdout=out, stderr=out, start_new_session=True
        )
    try:
        wait_http(port, "/health")
        yield System(
            "bare",
            port,
            proc.pid,
            "/complete",
            {},
            lambda p: {"prompt": p},
            log,
        )
    finally:
        _stop(proc)


BENCH_RATE_LIMIT = "1000000"  # per token and minute: the limiter's work is measured, never a 429
FLASKLLM_SETTINGS: dict[str, str] = {}  # --set NAME=VALUE: settings changed from the shipped ones
LITELLM_PYTHON = [PYTHON]  # the interpreter that runs LiteLLM's proxy (--litellm-python)
# LiteLLM's workers (--litellm-workers): its CLI's own default is 1, and 0 means as many as
# FlaskLLM's gunicorn runs.
LITELLM_WORKERS = [1]


def litellm_available() -> str | None:
    """None when LiteLLM's proxy can run here, else why not.

    LiteLLM pins its own versions of the SDKs, so it may live in a venv of its own: that
    interpreter is asked, in a subprocess, whether it can import the proxy."""
    probe = "import litellm, litellm.proxy.proxy_cli"
    found = subprocess.run([LITELLM_PYTHON[0], "-c", probe], capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return None
    last = (found.stderr.strip().splitlines() or ["?"])[-1]
    return "not installed" if "No module named 'litellm'" in last else f"its proxy cannot start ({last})"


@contextmanager
def litellm_proxy(mock_url: str, workers: int) -> Iterator[System]:
    """LiteLLM's proxy (its CLI, `workers` workers) with one model routed to the mock."""
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-litellm-"))
    config = folder / "config.yaml"
    config.write_text(
        LITELLM_CONFIG.format(model=MODEL, base=mock_url + "/v1", key=API_KEY, master=LITELLM_MASTER_KEY)
    )
    port, log = free_port(), folder / "litellm.log"
    code = "from litellm.proxy.proxy_cli import run_server; run_server()"
    args = [
        LITELLM_PYTHON[0],
        "-c",
        code,
        "--config",
        str(config),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    args += ["--num_workers", str(workers)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args, cwd=folder, env=_base_env(mock_url), stdout=out, stderr=out, start_new_session=True
        )
    try:
        wait_http(port, "/health/liveliness", timeout=120)
        yield System(
            "LiteLLM",
            port,
            proc.pid,
            "/v1/chat/completions",
            {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
            lambda p: {"model": MODEL, "messages": [{"role": "user", "content": p}]},
            log,
        )
    finally:
        _stop(proc)


# ---------------------------------------------------------------- closed-loop generator


def http_request(port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode() + data


def _chunked_end(buf: bytearray, pos: int) -> int | None:
    """Where a chunked body starting at `pos` ends, or None while it is incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            return None if end < 0 else end + 4
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return None


def parse_response(buf: bytearray) -> tuple[int, int, bool] | None:
    """(status, bytes of the whole response, server closes) once `buf` holds one response."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").lower().split("\r\n")
    status, length, chunked, close = int(lines[0].split()[1]), -1, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            close = "close" in value
    start = end + 4
    if chunked:
        stop = _chunked_end(buf, start)
        return None if stop is None else (status, stop, close)
    if length < 0:
        return None  # delimited by the server closing: finished at EOF
    return (status, start + length, close) if len(buf) >= start + length else None


@dataclass
class _Client:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    sent_at: float = 0.0
    busy: bool = False


@dataclass
class Loop:
    """What one closed-loop run saw."""

    requests: int
    wall_s: float
    statuses: dict[str, int]
    latencies: list[float]
    bad_bodies: int

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.startswith("2"))

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def pct_ms(self, p: float) -> float:
        times = sorted(self.latencies)
        return times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else math.nan


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def closed_loop(
    port: int,
    concurrency: int,
    make: Callable[[int], bytes],
    seconds: float | None = None,
    total: int | None = None,
    check: Callable[[bytes], bool] | None = None,
    stall_s: float = 120.0,
) -> Loop:
    """`concurrency` clients, one keep-alive connection each, one request in flight each,
    until `seconds` have passed (replies in flight are awaited) or `total` were sent.
    `make(i)` returns request i as bytes; `check(body)` (optional) judges a 2xx body."""
    sel = selectors.DefaultSelector()
    clients = [_Client(_connect(port)) for _ in range(concurrency)]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    issued, busy, bad = 0, 0, 0
    limit = total if total is not None else sys.maxsize
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else math.inf
    last = started

    def send(client: _Client) -> None:
        nonlocal issued, busy
        if issued >= limit or time.perf_counter() >= deadline:
            return
        data = make(issued)
        issued += 1
        client.sent_at, client.busy = time.perf_counter(), True
        busy += 1
        try:
            client.sock.sendall(data)
        except OSError:
            reconnect(client, failed=True)

    def finish(client: _Client, status: int) -> None:
        nonlocal busy, last
        now = time.perf_counter()
        statuses[str(status)] += 1
        if 200 <= status < 300:
            latencies.append(now - client.sent_at)
        client.busy, last = False, now
        busy -= 1

    def reconnect(client: _Client, failed: bool) -> None:
        if failed and client.busy:
            finish(client, 599)
        sel.unregister(client.sock)
        client.sock.close()
        client.buf.clear()
        try:
            client.sock = _connect(port)
        except OSError:
            return  # the server is gone: this client stops
        sel.register(client.sock, selectors.EVENT_READ, client)
        send(client)

    for client in clients:
        sel.register(client.sock, selectors.EVENT_READ, client)
        send(client)
    while busy:
        events = sel.select(timeout=1.0)
        if not events and time.perf_counter() - last > stall_s:
            for client in clients:
                if client.busy:
                    finish(client, 598)  # no reply within stall_s
            break
        for key, _ in events:
            client = key.data
            try:
                chunk = client.sock.recv(262144)
            except OSError:
                chunk = b""
            if not chunk:
                reconnect(client, failed=True)
                continue
            client.buf += chunk
            parsed = parse_response(client.buf)
            if parsed is None:
                continue
            status, size, close = parsed
            if check is not None and 200 <= status < 300:
                head_end = client.buf.find(b"\r\n\r\n") + 4
                bad += 0 if check(bytes(client.buf[head_end:size])) else 1
            del client.buf[:size]
            finish(client, status)
            if close:
                reconnect(client, failed=False)
            else:
                send(client)
    for client in clients:
        client.sock.close()
    sel.close()
    return Loop(sum(statuses.values()), last - started, dict(statuses), latencies, bad)


# ---------------------------------------------------------------- measured rounds


class Prompts:
    """Unique prompts across the whole run (FlaskLLM's cache persists between rounds)."""

    def __init__(self) -> None:
        self.stamp, self.n = time.time_ns(), 0

    def next(self) -> str:
        self.n += 1
        return (
            f"E-mail {self.stamp}-{self.n}: Hello team, order {self.n} ships on Friday; "
            "please confirm the invoice amount and the delivery address by Thursday noon."
        )


PROMPTS = Prompts()


def measured(
    system: System,
    kind: str,
    concurrency: int,
    make: Callable[[int], bytes],
    mock_pid: int,
    seconds: float | None = None,
    total: int | None = None,
    check: Callable[[bytes], bool] | None = None,
    rows_per_request: int = 1,
) -> dict[str, Any]:
    """One closed-loop round with the CPU of the server, the mock, this generator and the machine."""
    pids, mock = system.pids(), [mock_pid] if mock_pid > 0 and mock_pid != system.pid else []
    server0, mock0, gen0, mach0 = cpu_seconds(pids), cpu_seconds(mock), time.process_time(), machine_ticks()
    loop = closed_loop(system.port, concurrency, make, seconds, total, check)
    server1, mock1, gen1, mach1 = cpu_seconds(pids), cpu_seconds(mock), time.process_time(), machine_ticks()
    n = max(1, loop.requests)
    return {
        "system": system.name,
        "kind": kind,
        "concurrency": concurrency,
        "requests": loop.requests,
        "rows": loop.requests * rows_per_request,
        "wall_s": round(loop.wall_s, 3),
        "rps": round(loop.rps, 1),
        "p50_ms": round(loop.pct_ms(0.50), 3),
        "p99_ms": round(loop.pct_ms(0.99), 3),
        "statuses": loop.statuses,
        "errors": loop.errors + loop.bad_bodies,
        "bad_bodies": loop.bad_bodies,
        "server_cpu_s": round(server1 - server0, 3),
        "server_cpu_ms_per_req": round((server1 - server0) * 1000 / n, 3),
        "mock_cpu_ms_per_req": round((mock1 - mock0) * 1000 / n, 3) if mock else None,
        "gen_cpu_ms_per_req": round((gen1 - gen0) * 1000 / n, 4),
        "gen_cpu_share": round((gen1 - gen0) / loop.wall_s, 3) if loop.wall_s else None,
        "machine_busy": round((mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1]), 3),
        "server_procs": len(pids),
    }


def miss_maker(system: System) -> Callable[[int], bytes]:
    return lambda i: http_request(
        system.port, "POST", system.path, system.body(PROMPTS.next()), system.headers
    )


def hit_maker(system: System) -> Callable[[int], bytes]:
    built = [
        http_request(system.port, "POST", system.path, system.body(p), system.headers) for p in HIT_PROMPTS
    ]
    return lambda i: built[i % len(built)]


def batch_maker(system: System) -> Callable[[int], bytes]:
    def make(i: int) -> bytes:
        items = [{"id": r, "prompt": PROMPTS.next()} for r in range(BATCH_ROWS)]
        return http_request(system.port, "POST", "/api/v1/batch", {"items": items}, system.headers)

    return make


def batch_ok(body: bytes) -> bool:
    stats = json.loads(body).get("stats", {})
    return bool(stats.get("succeeded") == BATCH_ROWS)


def job_round(system: System, rows: int) -> dict[str, Any]:
    """Submit one job of `rows` new rows, poll it until done: server CPU per row."""
    pids = system.pids()
    cpu0, mach0, started = cpu_seconds(pids), machine_ticks(), time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=120)
    items = [{"id": r, "prompt": PROMPTS.next()} for r in range(rows)]
    submitted = request(conn, "POST", "/api/v1/jobs", {"items": items})
    job: dict[str, Any] = {}
    polls, status_errors = 0, 0
    if submitted.status in (200, 202):
        job = json.loads(submitted.body)["job"]
        give_up = time.monotonic() + 300
        while job.get("status") not in ("done", "cancelled") and time.monotonic() < give_up:
            time.sleep(0.1)
            polled = request(conn, "GET", f"/api/v1/jobs/{job['id']}")
            polls += 1
            if polled.status != 200:
                status_errors += 1
                continue
            job = json.loads(polled.body)["job"]
    wall = time.perf_counter() - started
    cpu, mach1 = cpu_seconds(pids) - cpu0, machine_ticks()
    conn.close()
    succeeded = int(job.get("succeeded", 0))
    return {
        "system": system.name,
        "kind": "job",
        "rows": rows,
        "submit_status": submitted.status,
        "job_status": job.get("status"),
        "succeeded": succeeded,
        "polls": polls,
        "errors": (rows - succeeded) + status_errors + (0 if submitted.status in (200, 202) else 1),
        "wall_s": round(wall, 3),
        "rows_per_s": round(rows / wall, 1),
        "server_cpu_s": round(cpu, 3),
        "rows_per_cpu_s": round(rows / cpu, 1) if cpu > 0 else None,
        "machine_busy": round((mach1[0] - mach0[0]) / max(1, mach1[1] - mach0[1]), 3),
    }


def warm(system: System, seconds: float = 1.0, concurrency: int = 8) -> None:
    """Imports, connection pools, first requests: not measured."""
    closed_loop(system.port, concurrency, miss_maker(system), seconds=seconds)


def say(text: str) -> None:
    print(text, flush=True)


def show(r: dict[str, Any]) -> None:
    flag = f"  !! {r['errors']} errors {r.get('statuses', '')}" if r["errors"] else ""
    if r["kind"] == "job":
        say(
            f"    {r['system']:<9} job {r['rows']} rows: {r['job_status']} in {r['wall_s']} s, "
            f"{r['rows_per_cpu_s']} rows/CPU-s, machine busy {r['machine_busy']:.0%}{flag}"
        )
        return
    say(
        f"    {r['system']:<9} {r['kind']:<6} c={r['concurrency']:<3} {r['requests']:>6} req "
        f"{r['rps']:>8.1f} rps  p50 {r['p50_ms']:>7.2f} ms  p99 {r['p99_ms']:>7.2f} ms  "
        f"srv {r['server_cpu_ms_per_req']:.3f} ms/req  gen {r['gen_cpu_share']:.0%}  "
        f"machine {r['machine_busy']:.0%}{flag}"
    )


# ---------------------------------------------------------------- phases


def fast_phase(rounds: int, seconds: float, with_litellm: bool) -> dict[str, Any]:
    """0 ms upstream: c=1 latency, c=32 misses, FlaskLLM hits, batches and jobs, alternated."""
    out: dict[str, Any] = {"rounds": []}
    with mock_process(0.0) as (mock_url, mock_pid), flaskllm(mock_url) as flask_sys:
        workers = len(children_of(flask_sys.pid))
        with bare(mock_url, workers) as bare_sys, _maybe_litellm(with_litellm, mock_url, workers) as lite:
            systems = [flask_sys, bare_sys] + ([lite] if lite else [])
            mock = mock_system(mock_url, mock_pid)
            say(f"  0 ms upstream: mock pid {mock_pid}, {workers} workers each; warm-up")
            for system in [mock, *systems]:
                warm(system)
            hits = hit_maker(flask_sys)
            closed_loop(flask_sys.port, 1, hits, total=len(HIT_PROMPTS))  # the answers, cached once
            closed_loop(flask_sys.port, 8, hits, seconds=1.0)  # ... and in each worker's L1
            closed_loop(flask_sys.port, 2, batch_maker(flask_sys), total=4, check=batch_ok)
            for n in range(rounds):
                say(f"  round {n + 1}/{rounds} (0 ms upstream)")
                done = []
                c1_seconds = max(1.0, seconds / 2)
                for system in [mock, *systems]:
                    done.append(measured(system, "miss", 1, miss_maker(system), mock_pid, c1_seconds))
                for system in systems:
                    done.append(measured(system, "miss", 32, miss_maker(system), mock_pid, seconds))
                done.append(measured(flask_sys, "hit", 32, hits, mock_pid, seconds))
                done.append(
                    measured(
                        flask_sys,
                        "batch",
                        4,
                        batch_maker(flask_sys),
                        mock_pid,
                        seconds,
                        check=batch_ok,
                        rows_per_request=BATCH_ROWS,
                    )
                )
                done.append(job_round(flask_sys, JOB_ROWS))
                for r in done:
                    r["round"] = n + 1
                    show(r)
                out["rounds"] += done
            out["rss_after_rounds_mib"] = {s.name: round(rss_mib(s.pids()), 1) for s in systems}
            out["workers"] = workers
    return out


def slow_phase(rounds: int, seconds: float, with_litellm: bool, workers: int) -> dict[str, Any]:
    """200 ms upstream: c=64 and c=256 against the ideal c / 0.2 s, alternated."""
    out: dict[str, Any] = {"rounds": []}
    with (
        mock_process(UPSTREAM_SLOW_MS) as (mock_url, mock_pid),
        flaskllm(mock_url) as flask_sys,
        bare(mock_url, workers) as bare_sys,
        _maybe_litellm(with_litellm, mock_url, workers) as lite,
    ):
        systems = [flask_sys, bare_sys] + ([lite] if lite else [])
        say(f"  {UPSTREAM_SLOW_MS:g} ms upstream: mock pid {mock_pid}; warm-up at c=256")
        for system in systems:
            warm(system, seconds=2.0, concurrency=256)
        for n in range(rounds):
            say(f"  round {n + 1}/{rounds} ({UPSTREAM_SLOW_MS:g} ms upstream)")
            done = []
            for c in (64, 256):
                for system in systems:
                    r = measured(system, "miss", c, miss_maker(system), mock_pid, seconds)
                    r["ideal_rps"] = c / (UPSTREAM_SLOW_MS / 1000)
                    r["of_ideal"] = round(r["rps"] / r["ideal_rps"], 3)
                    done.append(r)
            for r in done:
                r["round"] = n + 1
                show(r)
            out["rounds"] += done
    return out


def rss_phase(prompts: int, step: int) -> dict[str, Any]:
    """A fresh FlaskLLM deployment, `prompts` unique prompts at c=32, RSS along the way."""
    with mock_process(0.0) as (mock_url, _mock_pid), flaskllm(mock_url) as flask_sys:
        warm(flask_sys)
        samples = [_memory(0, flask_sys.pids())]
        say(f"  RSS: {prompts:,} unique prompts at c=32, fresh deployment; {samples[0]['rss_mib']} MiB at 0")
        sent, statuses, started = 0, Counter[str](), time.perf_counter()
        while sent < prompts:
            n = min(step, prompts - sent)
            loop = closed_loop(flask_sys.port, 32, miss_maker(flask_sys), total=n)
            sent += n
            statuses.update(loop.statuses)
            samples.append(_memory(sent, flask_sys.pids()))
            say(
                f"    {sent:>7,} prompts  {loop.rps:7.1f} rps  RSS {samples[-1]['rss_mib']} MiB"
                f"  PSS {samples[-1]['pss_mib']} MiB"
            )
        wall = time.perf_counter() - started
        per_process = {pid: round(rss_mib([pid]), 1) for pid in flask_sys.pids()}
    errors = sum(n for s, n in statuses.items() if not s.startswith("2"))
    return {
        "prompts": prompts,
        "wall_s": round(wall, 1),
        "rps": round(prompts / wall, 1),
        "statuses": dict(statuses),
        "errors": errors,
        "samples": samples,
        "rss_mib": samples[-1]["rss_mib"],
        "pss_mib": samples[-1]["pss_mib"],
        "per_process_mib": per_process,
    }


def _memory(prompts: int, pids: list[int]) -> dict[str, Any]:
    return {"prompts": prompts, "rss_mib": round(rss_mib(pids), 1), "pss_mib": round(pss_mib(pids), 1)}


@contextmanager
def _maybe_litellm(wanted: bool, mock_url: str, workers: int) -> Iterator[System | None]:
    if not wanted:
        yield None
        return
    with litellm_proxy(mock_url, LITELLM_WORKERS[0] or workers) as system:
        warm(system)
        yield system


# ---------------------------------------------------------------- summary and table


def median(values: list[float]) -> float | None:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.median(clean), 3) if clean else None


def pick(rounds: list[dict[str, Any]], system: str, kind: str, c: int | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in rounds
        if r["system"] == system and r["kind"] == kind and (c is None or r.get("concurrency") == c)
    ]


def summarise(
    fast: dict[str, Any], slow: dict[str, Any], rss: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    f_rounds, s_rounds = fast["rounds"], slow["rounds"]
    mock_p50 = {r["round"]: r["p50_ms"] for r in pick(f_rounds, "mock", "miss", 1)}
    summary: dict[str, Any] = {"mock_p50_c1_ms": median(list(mock_p50.values()))}
    for name in names:
        c1 = pick(f_rounds, name, "miss", 1)
        c32 = pick(f_rounds, name, "miss", 32)
        summary[name] = {
            "p50_c1_ms": median([r["p50_ms"] for r in c1]),
            "overhead_c1_ms": median([r["p50_ms"] - mock_p50[r["round"]] for r in c1]),
            "rps_c32": median([r["rps"] for r in c32]),
            "p50_c32_ms": median([r["p50_ms"] for r in c32]),
            "cpu_ms_per_req_c32": median([r["server_cpu_ms_per_req"] for r in c32]),
            "of_ideal_c64": median([r["of_ideal"] for r in pick(s_rounds, name, "miss", 64)]),
            "of_ideal_c256": median([r["of_ideal"] for r in pick(s_rounds, name, "miss", 256)]),
            "rss_after_rounds_mib": fast["rss_after_rounds_mib"].get(name),
        }
    flask = summary["FlaskLLM"]
    flask["hit_rps_c32"] = median([r["rps"] for r in pick(f_rounds, "FlaskLLM", "hit", 32)])
    batch = pick(f_rounds, "FlaskLLM", "batch")
    flask["batch_rows_per_cpu_s"] = median(
        [r["rows"] / r["server_cpu_s"] for r in batch if r["server_cpu_s"] > 0]
    )
    flask["batch_rows_per_s"] = median([r["rows"] / r["wall_s"] for r in batch if r["wall_s"] > 0])
    jobs = pick(f_rounds, "FlaskLLM", "job")
    flask["job_rows_per_cpu_s"] = median([r["rows_per_cpu_s"] for r in jobs])
    flask["job_rows_per_s"] = median([r["rows_per_s"] for r in jobs])
    flask["rss_after_prompts_mib"] = rss["rss_mib"]
    flask["pss_after_prompts_mib"] = rss["pss_mib"]
    c32_all = [r for r in f_rounds if r["kind"] == "miss" and r["concurrency"] == 32]
    summary["generator"] = {
        "cpu_ms_per_req_c32": median([r["gen_cpu_ms_per_req"] for r in c32_all]),
        "cpu_share_c32_max": max((r["gen_cpu_share"] or 0 for r in c32_all), default=None),
        "cpu_share_c256_max": max(
            (r["gen_cpu_share"] or 0 for r in s_rounds if r["concurrency"] == 256), default=None
        ),
    }
    summary["mock_cpu_ms_per_req_c32"] = median([r["mock_cpu_ms_per_req"] for r in c32_all])
    summary["machine_busy_c32"] = median([r["machine_busy"] for r in c32_all])
    summary["error_rounds"] = [
        {k: r.get(k) for k in ("round", "system", "kind", "concurrency", "errors", "statuses")}
        for r in f_rounds + s_rounds
        if r["errors"]
    ]
    return summary


def fmt(value: Any, spec: str = ".1f", suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:{spec}}{suffix}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "NOT met"


def table(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    f, b = summary["FlaskLLM"], summary["bare"]
    lite = summary.get("LiteLLM")
    t = TARGETS
    lines = [
        f"bench_gateway  {meta['when']}  python {meta['python']}  {meta['cores']} cores  "
        f"rounds {meta['rounds']} x {meta['seconds']} s (alternating)  wall {meta['wall_s']:.0f} s",
        "FlaskLLM: shipped defaults (gunicorn.conf.py: gevent, "
        f"{meta['workers']} workers, LOG_LEVEL=INFO) EXCEPT "
        + ", ".join(f"{k}={v}" for k, v in meta["settings_changed"].items())
        + " (RATE_LIMIT raised: the limiter runs, but the shipped 60/min per token would answer 429s)",
        f"bare: Flask + openai SDK, gunicorn gevent, {meta['workers']} workers; LiteLLM: {meta['litellm']}",
        "",
        f"{'metric':<48}{'FlaskLLM':>10}{'bare':>10}{'LiteLLM':>10}  {'target':<26}result",
    ]

    def row(label: str, fv: str, bv: str, lv: str, target: str, result: str) -> None:
        lines.append(f"{label:<48}{fv:>10}{bv:>10}{lv:>10}  {target:<26}{result}")

    def val(d: dict[str, Any] | None, key: str, spec: str = ".1f", suffix: str = "") -> str:
        return fmt(d.get(key) if d else None, spec, suffix)

    overhead = f["overhead_c1_ms"]
    row(
        "1 p50 overhead over mock, c=1 (ms)",
        val(f, "overhead_c1_ms", ".2f"),
        val(b, "overhead_c1_ms", ".2f"),
        val(lite, "overhead_c1_ms", ".2f"),
        f"<= {t['overhead_ms']} ms",
        verdict(None if overhead is None else overhead <= t["overhead_ms"]),
    )
    row(
        f"  (p50 c=1; mock direct {fmt(summary['mock_p50_c1_ms'], '.2f')} ms)",
        val(f, "p50_c1_ms", ".2f"),
        val(b, "p50_c1_ms", ".2f"),
        val(lite, "p50_c1_ms", ".2f"),
        "",
        "",
    )
    vs_bare = f["rps_c32"] / b["rps_c32"] if f["rps_c32"] and b["rps_c32"] else None
    vs_lite = f["rps_c32"] / lite["rps_c32"] if lite and f["rps_c32"] and lite["rps_c32"] else None
    row(
        "2 rps, c=32, cache misses",
        val(f, "rps_c32", ".0f"),
        val(b, "rps_c32", ".0f"),
        val(lite, "rps_c32", ".0f"),
        f">= {t['rps_vs_bare']}x bare",
        f"{verdict(None if vs_bare is None else vs_bare >= t['rps_vs_bare'])} ({fmt(vs_bare, '.2f')}x)",
    )
    row(
        "",
        "",
        "",
        "",
        f">= {t['rps_vs_litellm']:g}x LiteLLM",
        "n/a (LiteLLM not measured)"
        if vs_lite is None
        else f"{verdict(vs_lite >= t['rps_vs_litellm'])} ({vs_lite:.2f}x)",
    )
    cpu_f, cpu_b = f["cpu_ms_per_req_c32"], b["cpu_ms_per_req_c32"]
    row(
        "3 server CPU ms / request, c=32",
        val(f, "cpu_ms_per_req_c32", ".3f"),
        val(b, "cpu_ms_per_req_c32", ".3f"),
        val(lite, "cpu_ms_per_req_c32", ".3f"),
        "<= bare",
        f"{verdict(None if cpu_f is None or cpu_b is None else cpu_f <= cpu_b)}"
        + (f" ({cpu_f / cpu_b:.2f}x)" if cpu_f and cpu_b else ""),
    )
    for c, key in ((64, "ideal_c64"), (256, "ideal_c256")):
        mine = f[f"of_ideal_c{c}"]
        row(
            f"4 % of ideal, {UPSTREAM_SLOW_MS:g} ms upstream, c={c} ({c / 0.2:.0f} rps)",
            val(f, f"of_ideal_c{c}", ".1%"),
            val(b, f"of_ideal_c{c}", ".1%"),
            val(lite, f"of_ideal_c{c}", ".1%"),
            f">= {t[key]:.0%}",
            verdict(None if mine is None else mine >= t[key]),
        )
    hit = f["hit_rps_c32"]
    row(
        "5 cache-hit rps, c=32",
        fmt(hit, ".0f"),
        "",
        "",
        f">= {t['hit_rps']:,.0f} rps",
        verdict(None if hit is None else hit >= t["hit_rps"]),
    )
    rss = f["rss_after_prompts_mib"]
    row(
        f"6 RSS master+workers, {meta['prompts']:,} prompts (MiB)",
        fmt(rss, ".1f"),
        "",
        "",
        f"<= {t['rss_mib']:.0f} MiB",
        verdict(rss <= t["rss_mib"]) + (" (--quick)" if meta["quick"] else ""),
    )
    row(
        "  (PSS: shared pages counted once, MiB)",
        fmt(f["pss_after_prompts_mib"], ".1f"),
        "",
        "",
        "",
        "",
    )
    row(
        "  (RSS after the 0 ms rounds, MiB)",
        val(f, "rss_after_rounds_mib"),
        val(b, "rss_after_rounds_mib"),
        val(lite, "rss_after_rounds_mib"),
        "",
        "",
    )
    for label, key in (("/api/v1/batch (100 rows, c=4)", "batch"), (f"jobs ({JOB_ROWS:,} rows)", "job")):
        per_cpu = f[f"{key}_rows_per_cpu_s"]
        row(
            f"7 rows / CPU-s, {label}",
            fmt(per_cpu, ".0f"),
            "",
            "",
            f">= {t['rows_per_cpu_s']:,.0f}",
            verdict(None if per_cpu is None else per_cpu >= t["rows_per_cpu_s"])
            + f" ({fmt(f[f'{key}_rows_per_s'], '.0f')} rows/s wall)",
        )
    gen = summary["generator"]
    lines += [
        "",
        "load generator (one selector loop, this process): "
        f"{fmt(gen['cpu_ms_per_req_c32'], '.3f')} ms CPU/req at c=32, "
        f"at most {fmt(gen['cpu_share_c32_max'], '.0%')} of a core (c=256: "
        f"{fmt(gen['cpu_share_c256_max'], '.0%')}); mock: {fmt(summary['mock_cpu_ms_per_req_c32'], '.3f')} "
        f"ms CPU/req; machine busy during c=32 rounds: {fmt(summary['machine_busy_c32'], '.0%')} of "
        f"{meta['cores']} cores",
        f"RSS run: {meta['prompts']:,} prompts in {meta['rss_wall_s']} s, errors {meta['rss_errors']}; "
        f"samples (prompts: RSS / PSS MiB) {meta['rss_samples']}",
    ]
    errors = summary["error_rounds"]
    lines.append(
        "rounds with errors (non-2xx or bad bodies): "
        + ("none" if not errors else "; ".join(json.dumps(e) for e in errors))
    )
    lines.append("figures only: targets missed do not change the exit status")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10,000 prompts for the RSS figure, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per phase (default 5, --quick 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per load round (c=1: half)")
    parser.add_argument(
        "--prompts", type=int, default=None, help="RSS phase prompts (100,000; --quick 10,000)"
    )
    parser.add_argument(
        "--litellm-python",
        default=PYTHON,
        help="the interpreter with litellm[proxy] installed (default: this one), e.g. a venv of its own",
    )
    parser.add_argument(
        "--litellm-workers",
        type=int,
        default=1,
        help="LiteLLM proxy workers (default 1, its own CLI default; 0: as many as FlaskLLM's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="run FlaskLLM with this setting changed (repeatable), e.g. PROVIDER_CONCURRENCY=128",
    )
    args = parser.parse_args(argv)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set wants NAME=VALUE, not {item!r}")
        FLASKLLM_SETTINGS[name.strip().upper()] = value
    LITELLM_PYTHON[0] = args.litellm_python
    LITELLM_WORKERS[0] = max(0, args.litellm_workers)
    rounds = args.rounds or (3 if args.quick else 5)
    prompts = args.prompts or (10_000 if args.quick else 100_000)
    started = time.perf_counter()
    why_not = litellm_available()
    lite_workers = f"{LITELLM_WORKERS[0]} worker(s)" if LITELLM_WORKERS[0] else "as many workers as FlaskLLM"
    litellm_note = f"measured, {lite_workers}" if why_not is None else f"{why_not}, skipped"
    say(f"bench_gateway: project {ROOT}")
    say(f"LiteLLM: {litellm_note}")
    say(
        f"FlaskLLM: shipped defaults except RATE_LIMIT={BENCH_RATE_LIMIT}"
        " (shipped: 60 requests/min per token)" + "".join(f", {k}={v}" for k, v in FLASKLLM_SETTINGS.items())
    )
    fast = fast_phase(rounds, args.seconds, why_not is None)
    rss = rss_phase(prompts, step=max(1, min(10_000, prompts // 5)))
    slow = slow_phase(max(3, rounds - 2), args.seconds, why_not is None, fast["workers"])
    names = ["FlaskLLM", "bare"] + (["LiteLLM"] if why_not is None else [])
    summary = summarise(fast, slow, rss, names)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "cores": len(os.sched_getaffinity(0)),
        "rounds": rounds,
        "slow_rounds": max(3, rounds - 2),
        "seconds": args.seconds,
        "workers": fast["workers"],
        "litellm": litellm_note,
        "quick": args.quick,
        "prompts": prompts,
        "rss_wall_s": rss["wall_s"],
        "rss_errors": rss["errors"],
        "rss_samples": ", ".join(
            f"{s['prompts']:,}: {s['rss_mib']} / {s['pss_mib']}" for s in rss["samples"]
        ),
        "settings_changed": {"RATE_LIMIT": BENCH_RATE_LIMIT, **FLASKLLM_SETTINGS},
        "wall_s": time.perf_counter() - started,
    }
    text = table(summary, meta)
    say("")
    say(text)
    write_json(
        "bench_gateway.json",
        {"meta": meta, "targets": TARGETS, "summary": summary, "fast": fast, "slow": slow, "rss": rss},
    )
    out = ROOT / "scripts" / "results" / "bench_gateway.txt"
    out.write_text(text + "\n")
    say(f"\nwrote {out.parent / 'bench_gateway.json'} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

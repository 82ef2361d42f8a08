"""Pieces shared by the benchmark and load-test scripts: start the mock LLM and gunicorn
on free loopback ports, fire keep-alive HTTP requests from threads, summarise latencies.

Figures only: nothing here asserts a speed. The scripts print tables and write JSON
under scripts/results/.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 (a test token)
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


@contextmanager
def mock_llm(latency_ms: float = 0.0) -> Iterator[str]:
    """The mock LLM in its own process (so its CPU is not the app's); yields its URL."""
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "scripts" / "mock_llm.py"), "--port", "0", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("MOCK_LLM_LISTENING "):
            raise RuntimeError(f"mock did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def configure_mock(url: str, **config: Any) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/_mock/config", json.dumps(config), {"Content-Type": "application/json"})
    conn.getresponse().read()


def mock_stats(url: str) -> dict[str, Any]:
    """The mock's counters: {"calls", "by_path", "by_prompt", "config"}."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/_mock/stats")
    stats: dict[str, Any] = json.loads(conn.getresponse().read())
    return stats


def node_driver(*args: str, timeout: float = 900) -> dict[str, Any]:
    """Run scripts/excel_driver.js (the Excel surfaces in Node) and return its JSON line."""
    out = subprocess.run(
        ["node", str(ROOT / "scripts" / "excel_driver.js"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"excel_driver.js {args[0]} printed no figures: {out.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def kill_all(self) -> None:
        """`kill -9` of the whole server: master and workers at once, no clean-up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def worker_rss_mb(self, include_master: bool = True) -> float:
        """Resident memory of the gunicorn master (unless excluded) and workers, in MB."""
        return rss_mib(([self.proc.pid] if include_master else []) + self.worker_pids())


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes together, in MiB (/proc; gone processes count 0)."""
    return _proc_kib(pids, "status", "VmRSS:") / 1024


def pss_mib(pids: list[int]) -> float:
    """Proportional memory of these processes together, in MiB: each shared page (libraries,
    the pages workers still share with the master after fork) is split among the processes
    that map it, so the sum is what the deployment takes from the machine. Summed RSS counts
    a shared page once per process."""
    return _proc_kib(pids, "smaps_rollup", "Pss:") / 1024


def _proc_kib(pids: list[int], file: str, field: str) -> int:
    """The kB figure of `field` in /proc/<pid>/<file>, summed over `pids` (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def app_env(env: dict[str, str], data: str) -> dict[str, str]:
    """A production environment for the app plus `env`: the bench token, and the cache, job
    and state files in `data` (never the checkout's instance/, where a user's ledger lives)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC", "API_TOKEN"))},
        "ENVIRONMENT": "production",
        "API_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "CACHE_URL": f"sqlite:///{data}/cache.sqlite3",
        "JOBS_URL": f"sqlite:///{data}/jobs.sqlite3",
        "STATE_URL": f"sqlite:///{data}/state.sqlite3",
        "RATE_LIMIT_ENABLED": "false",
        **env,
    }


@contextmanager
def gunicorn(
    env: dict[str, str],
    worker_class: str = "gthread",
    workers: int = 2,
    threads: int = 32,
    timeout: int = 120,
) -> Iterator[Server]:
    """The app under gunicorn on a free loopback port, with `env` as its settings."""
    port = free_port()
    args = [
        PYTHON,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        "-k",
        worker_class,
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    if worker_class == "gthread":
        args += ["--threads", str(threads)]
    else:
        args += ["--worker-connections", "1000"]
    with (
        tempfile.TemporaryDirectory(prefix="flaskllm-bench-") as data,
        _running([*args, "wsgi:application"], port, app_env(env, data)) as server,
    ):
        yield server


@contextmanager
def gunicorn_deployed(env: dict[str, str], worker_class: str = "gevent") -> Iterator[Server]:
    """The app as deployed: gunicorn configured only by gunicorn.conf.py and the environment."""
    port = free_port()
    settings = {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKER_CLASS": worker_class,
        "GUNICORN_LOGLEVEL": "warning",
        **env,
    }
    args = [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:application"]
    with (
        tempfile.TemporaryDirectory(prefix="flaskllm-bench-") as data,
        _running(args, port, app_env(settings, data)) as server,
    ):
        yield server


def shipped_env(env: dict[str, str], state_dir: str | None = None) -> dict[str, str]:
    """The shipped defaults: only a token, the provider settings in `env`, and where the
    cache and job files go (a fresh folder, so runs do not see each other's answers).
    Nothing is raised, nothing switched off."""
    tmp = state_dir or tempfile.mkdtemp(prefix="flaskllm-shipped-")
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "API_TOKEN": TOKEN,
        "CACHE_URL": f"sqlite:///{tmp}/cache.sqlite3",
        "JOBS_URL": f"sqlite:///{tmp}/jobs.sqlite3",
        "STATE_URL": f"sqlite:///{tmp}/state.sqlite3",
        **env,
    }


@contextmanager
def gunicorn_shipped(
    env: dict[str, str], state_dir: str | None = None, log_path: Path | None = None, port: int | None = None
) -> Iterator[Server]:
    """`gunicorn wsgi:application` from the project folder, as the README and
    docs/deployment.md start it: gunicorn.conf.py read by gunicorn itself, shipped defaults."""
    port = port or free_port()
    full_env = {**shipped_env(env, state_dir), "PORT": str(port)}
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "wsgi:application"],
        cwd=ROOT,
        env=full_env,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,
    )  # its own process group: kill_all() hits all
    try:
        wait_http(port, "/api/v1/health")
        yield Server(port, proc, full_env)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if log:
            log.close()


@contextmanager
def _running(args: list[str], port: int, env: dict[str, str]) -> Iterator[Server]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        wait_http(port, "/api/v1/health")
        yield Server(port, proc, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Result:
    status: int
    seconds: float
    body: bytes
    index: int = -1  # which request of a load() run this answers


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Result:
    """One request with the bench token (unless `headers` replace it); the JSON body encoded."""
    headers = dict(headers) if headers is not None else {"X-API-Token": TOKEN}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn.request(method, path, data, headers)
    response = conn.getresponse()
    payload = response.read()
    return Result(response.status, time.perf_counter() - started, payload)


def load(
    port: int,
    concurrency: int,
    total: int,
    make: Callable[[int], tuple[Any, ...]],
    results: list[Result] | None = None,
) -> dict[str, Any]:
    """Send `total` requests from `concurrency` keep-alive connections and summarise them.

    `make(i)` builds request i: (method, path, body) or (method, path, body, headers).
    Pass a list as `results` to get every Result (with its `index`) back.
    """
    counter = iter(range(total))
    lock = threading.Lock()
    results = [] if results is None else results

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine: list[Result] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body, *extra = make(i)
            try:
                result = request(conn, method, path, body, *extra)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                result = Result(599, 0.0, b"")
            result.index = i
            mine.append(result)
        with lock:
            results.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return summarise(results, wall)


def summarise(results: list[Result], wall: float) -> dict[str, Any]:
    times = sorted(r.seconds for r in results if r.status < 400)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1

    def pct(p: float) -> float:
        return round(times[min(len(times) - 1, int(p * len(times)))] * 1000, 2) if times else 0.0

    return {
        "requests": len(results),
        "wall_s": round(wall, 3),
        "rps": round(len(results) / wall, 1) if wall else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(times) * 1000, 2) if times else 0.0,
        "statuses": statuses,
    }


def write_json(name: str, data: Any) -> Path:
    out = ROOT / "scripts" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    return out

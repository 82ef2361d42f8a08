"""Packaging: `pip install .` gives a service that runs with no checkout around it; the lock is fresh.

The project is copied to a temporary folder (so building writes no build/ or egg-info into the
repository) with a planted office-addin/node_modules file, built with `pip wheel` the way
`pip install .` builds it (isolated, setuptools from PyPI or a mirror), and the wheel's file
list checked: every file the server serves under /addin/ is in it as backend/kit/..., and
nothing else of office-addin/. Then the wheel is installed with `--target` into a folder outside the
repository and run as `python -m backend` by a fresh venv, from yet another working directory.
Its third-party packages come from the repository's venv on PYTHONPATH (installing them from
PyPI would take minutes); `.pth` files are not read from PYTHONPATH, so the venv's editable
install of this checkout stays out of the way, and the test asserts where `backend` came from.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from backend.addin import SERVED
from scripts.benchlib import free_port

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "office-addin"
LOCK = ROOT / "requirements" / "lock.txt"
# What building needs from a checkout: pyproject.toml names README.md as the readme.
SOURCES = ("pyproject.toml", "README.md")
# A few of the served files, fetched from the installed server and compared with the checkout.
FETCHED = ("taskpane.html", "functions.json", "assets/icon-32.png", "office-scripts/ProcessEmails.ts")
TOKEN = "packaging-token-0123456789-abcdefghijklmnop"


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its output on failure, its stdout otherwise."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, f"{args[:4]}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def copy_project(dest: Path) -> Path:
    dest.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "backend", dest / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(KIT, dest / "office-addin", ignore=shutil.ignore_patterns("node_modules"))
    planted = dest / "office-addin" / "node_modules" / "planted"  # whatever npm ci left there
    planted.mkdir(parents=True)
    (planted / "index.js").write_text("module.exports = 1;\n")
    (planted / "package.json").write_text("{}\n")
    return dest


def build_wheel(src: Path, out: Path) -> Path:
    """Build as `pip install .` does: in an isolated environment with setuptools from PyPI.

    (The venv's own setuptools is the old one Python ships, without `wheel`, so a build without
    isolation would test something no user runs.)
    """
    run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)])
    (wheel,) = out.glob("flaskllm-*.whl")
    return wheel


def get(port: int, path: str, body: bytes | None = None, **headers: str) -> tuple[int, str, bytes]:
    """GET `path`, or POST `body` to it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET" if body is None else "POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def wait_health(port: int, server: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"python -m backend exited with {server.returncode}")
        try:
            if get(port, "/api/v1/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no health answer on port {port} within {timeout} s")


@pytest.mark.timeout(60)
def test_the_wheel_carries_the_kit_and_runs_outside_a_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(copy_project(tmp_path / "src"), tmp_path / "dist")

    names = set(zipfile.ZipFile(wheel).namelist())
    kit = {n.removeprefix("backend/kit/") for n in names if n.startswith("backend/kit/")}
    assert {"manifest.xml", *SERVED} <= kit, sorted({"manifest.xml", *SERVED} - kit)
    assert not {n for n in kit if n.startswith(("node_modules/", "tests/", "tools/"))}, sorted(kit)
    assert not kit & {"package.json", "package-lock.json", "README.md", "office-scripts/tsconfig.json"}
    assert not any(n.endswith(".py") for n in kit)
    # Every module of backend/ (packages are listed by hand in pyproject.toml) and its data.
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "backend").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "backend/templates.toml" in names

    site = tmp_path / "site"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ]
    )
    run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")])
    python = str(tmp_path / "venv" / "bin" / "python")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "ENVIRONMENT": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LLM_PROVIDER": "local",
        "API_TOKEN": TOKEN,
        "CACHE_URL": f"sqlite:///{tmp_path / 'state' / 'cache.sqlite3'}",
        "JOBS_URL": f"sqlite:///{tmp_path / 'state' / 'jobs.sqlite3'}",
        "STATE_URL": f"sqlite:///{tmp_path / 'state' / 'state.sqlite3'}",
        "JOB_WORKERS": "1",
    }

    where = (
        "import json, backend, backend.addin as a; print(json.dumps([backend.__file__, str(a.ADDIN_DIR)]))"
    )
    package_file, addin_dir = json.loads(run([python, "-c", where], cwd=cwd, env=env))
    assert Path(package_file).resolve() == (site / "backend" / "__init__.py").resolve()
    assert Path(addin_dir) == (site / "backend" / "kit").resolve()

    server = subprocess.Popen(
        [python, "-m", "backend"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_health(port, server)
        status, _, body = get(port, "/api/v1/health")
        assert status == 200 and json.loads(body)

        status, content_type, body = get(port, "/addin/manifest.xml")
        assert status == 200 and content_type.startswith("application/xml")
        ET.fromstring(body)  # noqa: S314 (well-formed; our own server's answer)
        assert f"http://127.0.0.1:{port}/addin/taskpane.html".encode() in body

        for path in FETCHED:
            status, content_type, body = get(port, f"/addin/{path}")
            assert status == 200, path
            assert content_type == SERVED[path]
            assert body == (KIT / path).read_bytes(), path
        assert get(port, "/addin/package.json")[0] == 404

        # A real answer: the offline provider, with the packaged templates.toml and the cache.
        prompt = json.dumps({"prompt": "Hello team. The review moves to Friday."}).encode()
        status, _, body = get(
            port, "/api/v1/webhook", prompt, **{"X-API-Token": TOKEN, "Content-Type": "application/json"}
        )
        assert status == 200, body
    finally:
        server.terminate()
        output = server.communicate(timeout=15)[0]
    assert "FlaskLLM development server" in output, output
    # State went where it was told, not into an instance/ folder beside the installed package.
    assert (tmp_path / "state" / "cache.sqlite3").exists()
    assert (tmp_path / "state" / "jobs.sqlite3").exists()
    assert not (site / "instance").exists() and not (site / "backend" / "instance").exists()


def test_the_lock_pins_every_requirement_of_the_dev_extra() -> None:
    """scripts/setup.sh installs requirements/lock.txt: a requirement added to pyproject.toml
    without refreshing it (the command is at its top) would install unpinned, or not at all.
    Checks the direct requirements, for Python 3.11 on Linux as locked; pip resolves the rest.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    text = LOCK.read_text(encoding="utf-8")
    assert "uv pip compile pyproject.toml --extra dev" in text.splitlines()[1]  # the refresh command
    pins = {
        canonicalize_name(name): Version(version)
        for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M)
    }
    assert pins and canonicalize_name(project["name"]) not in pins
    environment = {
        "python_version": "3.11",
        "python_full_version": "3.11.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "implementation_name": "cpython",
    }
    optional = project["optional-dependencies"]
    wanted = [Requirement(spec) for spec in [*project["dependencies"], *optional["dev"]]]
    seen, missing = {"dev"}, []
    while wanted:
        requirement = wanted.pop()
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(project["name"]):  # the dev extra names flaskllm[redis,server]
            wanted += [Requirement(spec) for extra in requirement.extras - seen for spec in optional[extra]]
            seen |= requirement.extras
        elif name not in pins or not requirement.specifier.contains(pins[name], prereleases=True):
            missing.append(f"{requirement} (locked: {pins.get(name)})")
    assert {"redis", "server"} <= seen
    assert not missing, f"requirements/lock.txt is stale, refresh it: {missing}"

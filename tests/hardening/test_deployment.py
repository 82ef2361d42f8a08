"""The production paths: gunicorn as configured by gunicorn.conf.py, and PythonAnywhere.

gunicorn.conf.py is checked the way gunicorn itself reads it (`--print-config`), then run:
a slow request in flight when SIGTERM arrives still completes with 200, and the access
log it writes carries no query string. The PythonAnywhere test copies the project the
way a `git clone` lays it out, writes the spec's `.env` into it, and imports the app
exactly as PythonAnywhere's WSGI file does: from another working directory, with the
project folder appended to sys.path.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from scripts import benchlib
from scripts.mock_llm import MockLLM

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gunicorn.conf.py"


def gunicorn_config(env: dict[str, str], cwd: Path = ROOT) -> dict[str, str]:
    """gunicorn's effective settings for gunicorn.conf.py under `env`, as it prints them.

    `--print-config` also loads the app, which opens its job and state files: they go to a
    folder of their own, not the checkout's instance/ (a user's ledger lives there).
    """
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    with tempfile.TemporaryDirectory(prefix="flaskllm-conf-") as data:
        files = {
            "JOBS_URL": f"sqlite:///{data}/jobs.sqlite3",
            "STATE_URL": f"sqlite:///{data}/state.sqlite3",
        }
        out = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--print-config", "-c", str(CONF), "wsgi:application"],
            cwd=cwd,
            env={**keep, **files, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_gunicorn_conf_defaults() -> None:
    config = gunicorn_config({})
    assert config["worker_class"] == "gevent"
    assert int(config["workers"]) == len(os.sched_getaffinity(0))
    assert int(config["timeout"]) > 50 and int(config["graceful_timeout"]) >= 50  # > BATCH_TIMEOUT 50
    assert config["bind"] == "['127.0.0.1:5000']"
    assert config["accesslog"] == "None"  # the app writes its own JSON line per request
    assert "%(U)s" in config["access_log_format"]
    assert "%(r)s" not in config["access_log_format"] and "%(q)s" not in config["access_log_format"]
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"


def test_gunicorn_conf_reads_the_apps_settings_and_env_file(tmp_path: Path) -> None:
    """One owner per setting: gunicorn's timeout and bind come from the app's Settings, `.env` too."""
    (tmp_path / ".env").write_text("BATCH_TIMEOUT=120\nPORT=8765\nHOST=127.0.0.2\n")
    config = gunicorn_config({}, cwd=tmp_path)
    assert int(config["timeout"]) > 120 and int(config["graceful_timeout"]) >= 120
    assert config["bind"] == "['127.0.0.2:8765']"


def test_gunicorn_conf_follows_the_environment() -> None:
    config = gunicorn_config(
        {
            "GUNICORN_WORKER_CLASS": "gthread",
            "GUNICORN_WORKERS": "3",
            "GUNICORN_THREADS": "16",
            "REQUEST_TIMEOUT": "120",
            "BATCH_TIMEOUT": "40",
            "PORT": "8123",
            "HOST": "0.0.0.0",
            "GUNICORN_ACCESSLOG": "-",
            "FORWARDED_ALLOW_IPS": "10.0.0.5",
        }
    )
    assert (config["worker_class"], config["workers"], config["threads"]) == ("gthread", "3", "16")
    assert int(config["timeout"]) > 120 and int(config["graceful_timeout"]) >= 120
    assert config["bind"] == "['0.0.0.0:8123']"
    assert config["accesslog"] == "-" and config["forwarded_allow_ips"] == "['10.0.0.5']"
    socket_bind = gunicorn_config({"GUNICORN_BIND": "unix:/run/flaskllm.sock"})["bind"]
    assert socket_bind == "['unix:/run/flaskllm.sock']"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_sigterm_lets_the_request_in_flight_finish(mock: MockLLM, tmp_path: Path, worker_class: str) -> None:
    access_log = tmp_path / "access.log"
    env = {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": mock.openai_base_url,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESSLOG": str(access_log),
    }
    headers = {"Content-Type": "application/json"}
    with benchlib.gunicorn_deployed(env, worker_class=worker_class) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request(
            "POST",
            f"/api/v1/webhook?api_token={benchlib.TOKEN}",
            json.dumps({"prompt": "Fast one. Thanks."}),
            headers,
        )
        assert conn.getresponse().status == 200
        conn.close()  # an idle keep-alive connection would hold a gevent worker for KEEPALIVE s
        slow: dict[str, object] = {}

        def in_flight() -> None:
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            c.request(
                "POST",
                "/api/v1/webhook",
                json.dumps({"prompt": "[[mock:delay=2]] Slow one. Ok."}),
                {**headers, "X-API-Token": benchlib.TOKEN},
            )
            response = c.getresponse()
            slow["status"], slow["body"] = response.status, response.read()

        thread = threading.Thread(target=in_flight)
        thread.start()
        while mock.calls() < 2:  # the slow request reached the provider: it is in flight
            thread.join(0.02)
        server.proc.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        assert slow.get("status") == 200, slow
        assert server.proc.wait(timeout=30) == 0  # a clean exit once the request was answered
    lines = access_log.read_text().splitlines()
    assert sum("/api/v1/webhook" in line for line in lines) == 2, lines
    assert not any("api_token" in line or benchlib.TOKEN in line for line in lines), lines


PA_WSGI = """
import sys
import os

# Add your project directory to the path
path = {project!r}
if path not in sys.path:
    sys.path.append(path)

# Import the application
from wsgi import application
"""

PA_CHECK = """
import json, sys
from werkzeug.test import Client
namespace = {}
exec(open(sys.argv[1]).read(), namespace)
client = Client(namespace["application"])
token = sys.argv[2]
health = client.get("/api/v1/health")
ok = client.post("/api/v1/webhook", json={"prompt": "Hello team. The review moves to Friday."},
                 headers={"X-API-Token": token})
denied = client.post("/api/v1/webhook", json={"prompt": "Hello."})
import backend
print(json.dumps({"health": health.json, "ok": ok.status_code, "denied": denied.status_code,
                  "backend": backend.__file__}))
"""


@pytest.mark.timeout(60)
def test_pythonanywhere_wsgi_file_imports_the_app(tmp_path: Path) -> None:
    project = tmp_path / "home" / "you" / "flaskllm"
    shutil.copytree(ROOT / "backend", project / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "office-addin",
        project / "office-addin",
        ignore=shutil.ignore_patterns("node_modules", "tests", "tools"),
    )
    shutil.copy(ROOT / "wsgi.py", project / "wsgi.py")
    token = "pa-token-0123456789-abcdefghijklmnopqrstuvwxyz"
    (project / ".env").write_text(  # step 4 of the spec, with the offline provider
        f"ENVIRONMENT=production\nDEBUG=False\nAPI_TOKEN={token}\nLLM_PROVIDER=local\n"
        "REQUEST_TIMEOUT=30\nMAX_PROMPT_LENGTH=4000\nRATE_LIMIT_ENABLED=True\nRATE_LIMIT=60\n"
    )
    wsgi_file = tmp_path / "var" / "www" / "you_pythonanywhere_com_wsgi.py"
    wsgi_file.parent.mkdir(parents=True)
    wsgi_file.write_text(PA_WSGI.format(project=str(project)))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home" / "you")}
    out = subprocess.run(
        [sys.executable, "-c", PA_CHECK, str(wsgi_file), token],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"].startswith(str(project))  # the clone's code, not this checkout's
    assert result["health"]["environment"] == "production"  # the project's .env was read
    assert (result["ok"], result["denied"]) == (200, 401)
    assert (project / "instance" / "response-cache.sqlite3").exists()  # cache beside the code

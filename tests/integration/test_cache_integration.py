"""The response cache through the API: what is a hit, what is not, and where it lives.

Hits are proven by the mock's call counter (a hit makes no upstream call) and by
`"cached": true`. The SQLite file is the default L2: shared by app instances (workers),
surviving a restart, and never able to break a request, even when it is garbage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.mock_llm import MockLLM
from tests.integration.conftest import HEADERS

URL = "/api/v1/webhook"
TEXT = "We need to reduce hiring next quarter. Budget is tight. Please confirm by Friday."


def ask(client: FlaskClient, prompt: str = TEXT, **fields: Any) -> dict[str, Any]:
    resp = client.post(URL, json={"prompt": prompt, **fields}, headers=HEADERS)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body: dict[str, Any] = resp.get_json()
    return body


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"type": "keywords"},
        {"type": "sentiment"},
        {"type": "entities"},
        {"type": "translation", "language": "de"},
        {"type": "custom"},
        {"source": "email"},
    ],
)
def test_second_identical_request_is_a_hit(
    make_app: Callable[..., Flask], mock: MockLLM, provider: str, fields: dict[str, str]
) -> None:
    client = make_app(provider).test_client()
    first = ask(client, **fields)
    assert first["cached"] is False
    assert mock.calls() == 1
    second = ask(client, **fields)
    assert second["cached"] is True
    assert mock.calls() == 1
    assert second["result"] == first["result"] and second["summary"] == first["summary"]
    assert second["type"] == first["type"] and second["model"] == first["model"]
    assert second["usage"] == {"input_tokens": 0, "output_tokens": 0}  # a hit costs nothing
    assert second["request_id"] != first["request_id"]


def test_different_task_or_language_is_a_miss(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    variants: list[dict[str, str]] = [
        {},
        {"type": "keywords"},
        {"type": "sentiment"},
        {"type": "entities"},
        {"type": "custom"},
        {"type": "translation", "language": "de"},
        {"type": "translation", "language": "fr"},
        {"source": "meeting"},
    ]
    for n, fields in enumerate(variants, start=1):
        assert ask(client, **fields)["cached"] is False, fields
        assert mock.calls() == n
    for fields in variants:  # and each of them is now a hit
        assert ask(client, **fields)["cached"] is True, fields
    assert mock.calls() == len(variants)


@pytest.mark.parametrize(
    "variant",
    [
        "  " + TEXT,
        TEXT + "\n\n",
        TEXT.replace(" ", "  "),
        TEXT.replace(". ", ".\n"),
        "\t" + TEXT.replace(" ", " \t "),
    ],
)
def test_whitespace_differences_are_a_hit(
    make_app: Callable[..., Flask], mock: MockLLM, variant: str
) -> None:
    client = make_app().test_client()
    ask(client)
    assert ask(client, variant)["cached"] is True
    assert mock.calls() == 1


def test_other_text_is_a_miss(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    ask(client)
    assert ask(client, TEXT.lower())["cached"] is False
    assert ask(client, TEXT + " Thanks.")["cached"] is False
    assert mock.calls() == 3


def test_language_case_is_the_same_language(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    ask(client, type="translation", language="de")
    assert ask(client, type="translation", language="DE")["cached"] is True
    assert mock.calls() == 1


def test_providers_do_not_share_answers(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    ask(make_app("openai", cache_url=url).test_client())
    assert ask(make_app("anthropic", cache_url=url).test_client())["cached"] is False
    assert ask(make_app("openai", cache_url=url, openai_model="gpt-4o").test_client())["cached"] is False
    assert mock.calls() == 3


@pytest.mark.parametrize("directive", ["status=500", "garbage", "status=429,retry_after=0.1", "delay=3"])
def test_errors_are_never_cached(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path, directive: str
) -> None:
    client = make_app(max_retries=0, request_timeout=1, cache_url=f"sqlite:///{tmp_path}/c.db").test_client()
    mock.configure(**_config_for(directive))
    resp = client.post(URL, json={"prompt": TEXT}, headers=HEADERS)
    assert resp.status_code >= 400
    mock.configure(status=None, mode="ok", retry_after=None, latency_ms=0)
    assert ask(client)["cached"] is False
    assert mock.calls() == 2
    assert ask(client)["cached"] is True


def _config_for(directive: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for part in directive.split(","):
        key, _, value = part.partition("=")
        if key == "status":
            config["status"] = int(value)
        elif key == "retry_after":
            config["retry_after"] = float(value)
        elif key == "delay":
            config["latency_ms"] = float(value) * 1000
        else:
            config["mode"] = key
    return config


def test_batch_and_webhook_share_the_cache(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app().test_client()
    ask(client, type="keywords")
    resp = client.post(
        "/api/v1/batch", json={"items": [{"prompt": TEXT, "type": "keywords"}]}, headers=HEADERS
    )
    assert resp.get_json()["results"][0]["cached"] is True
    resp = client.post(
        "/api/v1/batch", json={"items": [{"prompt": TEXT, "type": "sentiment"}]}, headers=HEADERS
    )
    assert resp.get_json()["results"][0]["cached"] is False
    assert ask(client, type="sentiment")["cached"] is True
    assert mock.calls() == 2


def test_cache_can_be_switched_off(make_app: Callable[..., Flask], mock: MockLLM) -> None:
    client = make_app(cache_ttl=0).test_client()
    ask(client)
    assert ask(client)["cached"] is False
    assert mock.calls() == 2


# ------------------------------------------------------------------ SQLite L2


def test_two_apps_share_one_sqlite_file(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    worker1 = make_app(cache_url=url).test_client()
    worker2 = make_app(cache_url=url).test_client()
    first = ask(worker1, type="keywords")
    hit = ask(worker2, type="keywords")
    assert hit["cached"] is True and hit["result"] == first["result"]
    ask(worker2, type="sentiment")
    assert ask(worker1, type="sentiment")["cached"] is True
    assert mock.calls() == 2


def test_cache_survives_a_restart(make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    first = ask(make_app(cache_url=url).test_client(), type="entities")
    mock.reset()
    restarted = make_app(cache_url=url).test_client()
    again = ask(restarted, type="entities")
    assert again["cached"] is True and again["result"] == first["result"]
    assert mock.calls() == 0


def test_default_cache_is_sqlite_in_the_instance_folder(make_app: Callable[..., Flask]) -> None:
    from backend.cache import SQLiteStore

    app = make_app(cache_url="")
    store = app.extensions["flaskllm"].service.cache.store
    assert isinstance(store, SQLiteStore)  # opened lazily: nothing is written by this test
    assert store.path == Path(app.instance_path) / "response-cache.sqlite3"


def test_garbage_cache_file_before_start(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"\x00\x01garbage, not SQLite\xff" * 512)
    client = make_app(cache_url=f"sqlite:///{path}").test_client()
    assert ask(client)["cached"] is False
    assert ask(client)["cached"] is True  # L1 still works
    assert ask(client, type="keywords")["cached"] is False
    assert mock.calls() == 2
    assert "response cache store unavailable" in caplog.text  # the damaged L2 was really hit


def test_cache_file_corrupted_while_serving(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    client = make_app(cache_url=url).test_client()
    ask(client)
    for i in range(5):
        ask(client, f"Warm-up text number {i}. Fine.")
    size = path.stat().st_size
    with path.open("r+b") as fh:  # same inode, garbage content
        fh.write(b"\xde\xad\xbe\xef" * max(1024, size // 4))
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.write_bytes(b"\xff" * side.stat().st_size)
    assert ask(client)["cached"] is True  # from L1
    calls = mock.calls()
    for i in range(3):
        assert ask(client, f"New text after the damage {i}. Fine.")["cached"] is False
        assert ask(client, f"New text after the damage {i}. Fine.")["cached"] is True
    assert mock.calls() == calls + 3
    assert "response cache store unavailable" in caplog.text
    other = make_app(cache_url=url).test_client()  # a worker starting on the damaged file
    assert ask(other, "Yet another text. Fine.")["cached"] is False


def test_cache_file_deleted_while_serving(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path
) -> None:
    path = tmp_path / "c.db"
    client = make_app(cache_url=f"sqlite:///{path}").test_client()
    ask(client)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert ask(client, "After deletion. Fine.")["cached"] is False
    assert ask(client, "After deletion. Fine.")["cached"] is True


def test_template_version_change_invalidates_old_answers(
    make_app: Callable[..., Flask], mock: MockLLM, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    ask(make_app(cache_url=url).test_client())
    ask(make_app(cache_url=url).test_client(), type="keywords")
    assert mock.calls() == 2

    v2 = tmp_path / "v2.toml"
    v2.write_text('[summary]\nversion = 2\nsystem = "Summarise in one sentence. From: {source}."\n')
    upgraded = make_app(cache_url=url, prompt_templates=v2).test_client()
    assert ask(upgraded)["cached"] is False  # the new wording is asked again
    assert mock.calls() == 3
    assert ask(upgraded)["cached"] is True
    assert ask(upgraded, type="keywords")["cached"] is True  # other tasks untouched
    assert mock.calls() == 3

    same_version = tmp_path / "v1.toml"
    same_version.write_text("[summary]\nversion = 1\n")
    assert ask(make_app(cache_url=url, prompt_templates=same_version).test_client())["cached"] is True
    assert mock.calls() == 3

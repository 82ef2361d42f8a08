"""The formula surface end to end: CLASSIFY, EXTRACT, KEYWORDS, ENTITIES, PROMPT and
PROMPTWITH run by scripts/excel_driver.js in Node as Excel's shared runtime would run them,
against the server started as the README starts it (`gunicorn wsgi:application`, shipped
defaults: only a token and the provider set) in front of the mock LLM, which answers
structured-output requests (OpenAI `json_schema`) with answers that follow the schema.

What only this can show: the kit's rows are what the server takes (labels, fields, the
instruction, the context table), the server's answers come back in the shapes the cells
promise (one label, a 1 x 3 row, a row of keywords, N x 2), and a model outside the
allow-list is the `#VALUE!` naming the allowed ones. The cell deadline is checked against a
listener that accepts connections and never answers: every queued cell must settle at one
deadline from its call.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import benchlib
from scripts.mock_llm import MockLLM

pytestmark = pytest.mark.e2e

LABELS = {"billing", "shipping", "complaint", "other"}
CLASSIFY_CELLS = 500


@pytest.fixture(scope="module")
def node() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is not installed")


@pytest.fixture
def shipped(node: None, mock: MockLLM, tmp_path: Path) -> Iterator[str]:
    mock.configure(latency_ms=20)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": mock.openai_base_url}
    with benchlib.gunicorn_shipped(env, str(tmp_path), tmp_path / "server.log") as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.fixture
def silent_server(node: None) -> Iterator[str]:
    """A loopback listener that accepts every connection and never answers a byte.

    Connections are held open (as a hung server holds them) until the test ends.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


def drive(url: str, mode: str, *args: str) -> dict[str, object]:
    return benchlib.node_driver(mode, "--url", url, "--token", benchlib.TOKEN, *args, timeout=120)


@pytest.mark.timeout(120)
def test_every_formula_answers_in_its_promised_shape(shipped: str, mock: MockLLM) -> None:
    figures = drive(shipped, "formulas", "--cells", str(CLASSIFY_CELLS), "--prefix", f"f{time.time_ns()}")
    assert (figures["errors"], figures["first_error"]) == (0, None), figures
    assert figures["classify_cells"] == figures["classify_ok"] == CLASSIFY_CELLS
    assert figures["classify_in_labels"] == CLASSIFY_CELLS  # each answer one of the four labels
    assert figures["extract_ok"] == figures["extract_cells"] == 20  # each cell spills 1 x 3
    assert figures["keywords_ok"] == figures["keywords_cells"] == 20  # 1 x N, N >= 1
    assert figures["entities_ok"] == figures["entities_cells"] == 5  # N x 2
    assert figures["prompt_ok"] is True, figures["prompt_answer"]
    assert figures["prompt_sent_instruction"] is True
    assert figures["prompt_sent_headers"] is True and figures["prompt_sent_values"] is True
    assert figures["batch_requests"] == 6  # 546 rows in one wave: 100-row batches
    assert mock.calls() == CLASSIFY_CELLS + 20 + 20 + 5 + 1
    models = figures["models"]  # the allow-list from /health: PROMPTWITH named another model
    assert isinstance(models, list) and models, figures
    assert figures["promptwith_error"] == f"#VALUE!: model: must be one of {', '.join(map(str, models))}"


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_settles_every_queued_cell_at_one_deadline(silent_server: str) -> None:
    figures = drive(
        silent_server, "deadline", "--cells", "1000", "--cell-deadline-ms", "2000", "--max-concurrent", "2"
    )
    assert (figures["cells"], figures["settled"], figures["errors"]) == (1000, 1000, 1000)
    assert figures["first_error"] == "#N/A: No answer from the FlaskLLM server within 2 s"
    max_seconds = float(str(figures["max_seconds"]))
    assert 2.0 <= max_seconds < 3.0, f"the last cell settled after {max_seconds} s"  # not 2 s per queue round

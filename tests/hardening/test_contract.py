"""Contract fuzzing: schemathesis drives the live app from its own /api/v1/openapi.json.

Every operation gets the examples, the coverage phase (boundary and malformed values:
missing fields, wrong types, one past every limit) and a fuzzing phase of positive and
negative cases, deterministic (derandomize) so a failure reproduces. Each case must
never 500, must answer a documented status with a body and headers matching the
documented schema, valid input must succeed (200, or 202 for a job, with a token; 404 for a job id that no
job of this token has) and invalid input must
be rejected (400/413/415). Without a token, the protected operations answer 401 to
whatever is sent.

The app runs the real openai SDK against the in-process mock LLM (0 ms latency), with
small limits (300-character prompts, 4-row batches) so boundary cases stay cheap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.result import Ok

from backend import create_app
from scripts.benchlib import free_port
from scripts.mock_llm import MockLLM
from tests.conftest import TOKEN, make_settings
from tests.hardening.live import FUZZ_CASES

MAX_EXAMPLES = 80
MOCK = MockLLM(port=free_port())
APP = create_app(
    make_settings(
        llm_provider="openai",
        openai_api_key="sk-test",
        openai_base_url=MOCK.openai_base_url,
        request_timeout=5,
        max_retries=1,
        max_prompt_length=300,
        batch_max_items=4,
        job_max_items=4,
        log_level="WARNING",
    )
)
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # 202: a job accepted; 404: a job id that no job of this token has; 409: an
            # Idempotency-Key the fuzzer already used with other rows.
            "positive_data_acceptance": {"expected-statuses": ["200", "202", "401", "404", "409"]},
            "negative_data_rejection": {"expected-statuses": ["400", "401", "413", "415"]},
        }
    }
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP, config=CONFIG)
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SECURED = {"POST /api/v1/webhook", "POST /api/v1/batch", "POST /api/v1/jobs"}
CASES: Counter[tuple[str, str]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def mock_llm_up() -> Iterator[MockLLM]:
    with MOCK:
        yield MOCK


@pytest.fixture(autouse=True)
def enough_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each fuzz test (one operation, one mode): it generated enough cases.

    Checked per test, not at the end of the file: test processes (pytest-xdist) share the
    file's tests out between them, so no one process sees every count."""
    mode = {"test_with_token": "token", "test_without_token": "anonymous"}.get(request.node.originalname)
    label = getattr(request.node, "operation_label", None)
    if mode is None or label is None:
        yield
        return
    before = CASES[mode, label]
    yield
    minimum = MAX_EXAMPLES if label in SECURED else 1
    assert CASES[mode, label] - before >= minimum, (mode, label, CASES[mode, label] - before)
    request.config.stash[FUZZ_CASES] = {f"{m} {op}": n for (m, op), n in sorted(CASES.items())}


@pytest.mark.timeout(120)
@schema.parametrize()
@SETTINGS
def test_with_token(case: schemathesis.Case[Any]) -> None:
    CASES["token", case.operation.label] += 1
    case.call_and_validate(headers={"X-API-Token": TOKEN})


@pytest.mark.timeout(120)
@schema.parametrize()
@SETTINGS
def test_without_token(case: schemathesis.Case[Any]) -> None:
    CASES["anonymous", case.operation.label] += 1
    response = case.call_and_validate()  # any token schemathesis made up is a wrong one
    if case.operation.label in SECURED and case.method.upper() == "POST":  # not a 405 probe
        assert response.status_code == 401, response.text


def test_the_schema_lists_every_paid_operation() -> None:
    """The schema lists every operation that spends money, so the fuzz tests above reach it."""
    operations = {result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)}
    assert operations >= SECURED

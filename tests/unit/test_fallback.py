"""LLM_FALLBACK: the chain takes over on outages, cools a failed provider, and comes back."""

from __future__ import annotations

from typing import ClassVar

import pytest

from backend.errors import InvalidAnswer, ProviderError, ProviderTimeout, RateLimited
from backend.providers import build_provider
from backend.providers.base import Job
from backend.providers.fallback import FallbackProvider
from tests.conftest import make_settings
from tests.fakes.provider import FakeProvider


class Secondary(FakeProvider):
    name: ClassVar[str] = "second"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def chain(cooldown: float = 30.0) -> tuple[FallbackProvider, FakeProvider, Secondary, Clock]:
    clock = Clock()
    primary, second = FakeProvider("p-1"), Secondary("s-1")
    return FallbackProvider([primary, second], cooldown, clock), primary, second, clock


JOB = Job(task="summary", text="hello", model="p-big")


def test_primary_answers_while_it_is_up() -> None:
    provider, primary, second, _ = chain()
    completion = provider.complete(JOB, 10)
    assert completion.provider == "fake"
    assert len(primary.calls) == 1 and not second.calls
    assert provider.route("p-big") == ("fake", "p-big")
    assert (provider.name, provider.model) == ("fake", "p-1")


@pytest.mark.parametrize("failure", [ProviderError("down"), ProviderTimeout("slow")])
def test_an_outage_moves_the_row_and_later_rows_to_the_fallback(failure: Exception) -> None:
    provider, primary, second, clock = chain(cooldown=30)
    primary.enqueue(failure)  # type: ignore[arg-type]
    completion = provider.complete(JOB, 9)
    assert completion.provider == "second"
    assert second.calls[0].model is None  # the fallback's own model, not the primary's
    assert primary.timeouts[0] == pytest.approx(6.0)  # a third kept for the fallback
    assert provider.route("p-big") == ("second", "s-1")  # the cache key follows
    provider.complete(JOB, 9)
    assert len(primary.calls) == 1 and len(second.calls) == 2  # cooling: not asked
    clock.now += 31
    assert provider.complete(JOB, 9).provider == "fake"  # back after the cooldown
    assert provider.route(None) == ("fake", "p-1")


def test_a_bad_answer_or_a_rate_limit_is_the_rows_own() -> None:
    provider, primary, second, _ = chain()
    primary.enqueue(InvalidAnswer("nonsense"))
    with pytest.raises(InvalidAnswer):
        provider.complete(JOB, 5)
    primary.enqueue(RateLimited("slow down"))
    with pytest.raises(RateLimited):
        provider.complete(JOB, 5)
    assert not second.calls


def test_when_every_provider_is_down_the_last_error_is_raised_and_all_are_tried_again() -> None:
    provider, primary, second, _ = chain()
    primary.enqueue(ProviderError("a"))
    second.enqueue(ProviderError("b"))
    with pytest.raises(ProviderError, match="b"):
        provider.complete(JOB, 5)
    # both cooling: the chain still asks, in order, rather than refusing the row
    assert provider.complete(JOB, 5).provider == "fake"
    with pytest.raises(ProviderTimeout):
        provider.complete(JOB, 0.01)


def test_settings_build_the_chain_and_refuse_a_fallback_without_its_key() -> None:
    settings = make_settings(
        llm_provider="openai",
        openai_api_key="sk-x",
        anthropic_api_key="sk-ant-x",
        llm_fallback="anthropic, OpenAI",
    )
    built = build_provider(settings)
    assert isinstance(built, FallbackProvider)
    assert [p.name for p in built.chain] == ["openai", "anthropic"]
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        build_provider(make_settings(llm_provider="openai", openai_api_key="sk-x", llm_fallback="anthropic"))
    with pytest.raises(ValueError, match="unknown"):
        build_provider(make_settings(llm_fallback="mystery"))
    assert build_provider(make_settings(llm_fallback="local")).name == "local"  # itself: no chain
    with pytest.raises(ValueError, match="needs a primary"):
        FallbackProvider([FakeProvider()], 1.0)

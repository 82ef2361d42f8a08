"""Provider registry: the name in LLM_PROVIDER -> a function that builds it from settings.

Each provider module is imported only when chosen, so an operator of the offline
default never pays the SDKs' import time, and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from backend.providers.base import Completion, Job, Provider, Usage

if TYPE_CHECKING:
    from backend.providers.retry import Throttle
    from backend.settings import Settings


def _openai(settings: Settings, throttle: Throttle | None) -> Provider:
    from backend.providers.openai import OpenAIProvider

    return OpenAIProvider.from_settings(settings, throttle)


def _anthropic(settings: Settings, throttle: Throttle | None) -> Provider:
    from backend.providers.anthropic import AnthropicProvider

    return AnthropicProvider.from_settings(settings, throttle)


def _local(settings: Settings, throttle: Throttle | None) -> Provider:
    from backend.providers.local import LocalProvider

    return LocalProvider(ner_model=settings.local_ner_model)


REGISTRY: dict[str, Callable[[Settings, Throttle | None], Provider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "local": _local,
}


def build_provider(settings: Settings, throttle: Throttle | None = None) -> Provider:
    """The provider LLM_PROVIDER names (`auto`: by which key is set), or a clear ValueError.

    `throttle` receives the provider's 429s (the app's ProviderBudget); None: a private one.
    """
    name = settings.resolved_provider
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"LLM_PROVIDER={name!r} is unknown; use auto, {', '.join(REGISTRY)}") from None
    primary = factory(settings, throttle)
    fallbacks = [f for f in dict.fromkeys(settings.llm_fallback) if f != name]
    if not fallbacks:
        return primary
    chain = [primary]
    for fallback in fallbacks:
        if fallback not in REGISTRY:
            raise ValueError(f"LLM_FALLBACK names {fallback!r}, which is unknown; use {', '.join(REGISTRY)}")
        key = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(fallback, True)
        if not key:
            raise ValueError(f"LLM_FALLBACK names {fallback!r}, but {fallback.upper()}_API_KEY is not set")
        chain.append(REGISTRY[fallback](settings, None))  # its own throttle: its 429s are its own
    from backend.providers.fallback import FallbackProvider

    return FallbackProvider(chain, settings.fallback_cooldown)


__all__ = ["REGISTRY", "Completion", "Job", "Provider", "Usage", "build_provider"]

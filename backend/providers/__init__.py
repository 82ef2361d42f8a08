"""Provider registry: the name in LLM_PROVIDER -> a function that builds it from settings.

Each provider module is imported only when chosen, so an operator of the offline
default never pays the SDKs' import time, and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from backend.providers.base import Completion, Job, Provider, Usage

if TYPE_CHECKING:
    from backend.settings import Settings


def _openai(settings: Settings) -> Provider:
    from backend.providers.openai import OpenAIProvider

    return OpenAIProvider.from_settings(settings)


def _anthropic(settings: Settings) -> Provider:
    from backend.providers.anthropic import AnthropicProvider

    return AnthropicProvider.from_settings(settings)


def _local(settings: Settings) -> Provider:
    from backend.providers.local import LocalProvider

    return LocalProvider(ner_model=settings.local_ner_model)


REGISTRY: dict[str, Callable[[Settings], Provider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "local": _local,
}


def build_provider(settings: Settings) -> Provider:
    """The provider LLM_PROVIDER names (`auto`: by which key is set), or a clear ValueError."""
    name = settings.resolved_provider
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"LLM_PROVIDER={name!r} is unknown; use auto, {', '.join(REGISTRY)}") from None
    return factory(settings)


__all__ = ["REGISTRY", "Completion", "Job", "Provider", "Usage", "build_provider"]

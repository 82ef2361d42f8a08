"""The offline default provider: extractive summary, keywords, sentiment and entities.

Why it exists: a fresh clone with no API key must still answer something useful, and an
operator may prefer no text leaving the machine. It is honest about what it is
(`provider: local`, `model: local-extractive`) and refuses, with HTTP 400, the tasks that
need a language model (translation, custom templates) instead of guessing.

Everything heavy (YAKE extractor, VADER lexicon, spaCy model if installed) is built once
per provider instance and reused; each call is CPU-only and bounded in size (200
sentences, 20,000 characters), so the `timeout` argument is not used: a call on a
normal cell takes milliseconds (keywords: tens of them, see scripts/bench_local.py).
"""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any, ClassVar

import yake

from backend.errors import UnsupportedByProvider
from backend.providers.base import Completion, Job, Provider, Usage
from backend.providers.emailtext import clean_email
from backend.providers.entities import Entity, EntityExtractor
from backend.providers.sentiment import BusinessSentiment, SentimentResult
from backend.providers.textrank import summarize

KEYWORD_NGRAM = 2  # 3-grams tend to glue names onto topics ("John Smith invoice")
KEYWORD_DEDUP = 0.7

_WORD = re.compile(r"\w")


def _word_count(text: str) -> int:
    return len(text.split())


def _keyword_extractor(top: int) -> Any:
    """YAKE's extractor; the dedup keyword is `dedup_lim` from 0.7, `dedupLim` before.

    yake 0.7 silently ignores the old camel-case name, so pass the one it reads.
    """
    params = inspect.signature(yake.KeywordExtractor).parameters
    dedup = "dedup_lim" if "dedup_lim" in params else "dedupLim"
    kwargs: dict[str, Any] = {"lan": "en", "n": KEYWORD_NGRAM, "top": top, dedup: KEYWORD_DEDUP}
    return yake.KeywordExtractor(**kwargs)


class LocalProvider(Provider):
    """Offline, deterministic answers for summary, keywords, sentiment and entities."""

    name: ClassVar[str] = "local"
    supported_tasks: ClassVar[frozenset[str] | None] = frozenset(
        {"summary", "keywords", "sentiment", "entities"}
    )

    def __init__(
        self,
        max_summary_sentences: int = 2,
        keyword_count: int = 8,
        *,
        ner_model: str | None = None,
        entity_extractor: EntityExtractor | None = None,
    ) -> None:
        """`ner_model` names the optional spaCy model (the LOCAL_NER_MODEL setting)."""
        self.model = "local-extractive"
        self.max_summary_sentences = max(1, max_summary_sentences)
        self.keyword_count = max(1, keyword_count)
        # One YAKE extractor per keyword count asked for (its `top` is fixed when built).
        # YAKE keeps a similarity cache on the instance that it clears as it goes; a lock
        # keeps two threads from clearing it under each other (the work is GIL-bound anyway).
        self._extractors: dict[int, Any] = {self.keyword_count: _keyword_extractor(2 * self.keyword_count)}
        self._keywords_lock = threading.Lock()
        self._sentiment = BusinessSentiment()
        self._entities = entity_extractor or EntityExtractor(ner_model)

    def complete(self, job: Job, timeout: float) -> Completion:
        """Answer `job` locally; translation, custom and unknown tasks are refused (400)."""
        if job.task == "summary":
            summary = summarize(job.text, self.max_summary_sentences)
            return self._completion(job, summary, summary)
        if job.task == "keywords":
            keywords = self.keywords(job.text, job.count)
            return self._completion(job, ", ".join(keywords), keywords)
        if job.task == "sentiment":
            sentiment = self.sentiment(job.text)
            return self._completion(job, f"{sentiment['label']} ({sentiment['score']:.2f})", sentiment)
        if job.task == "entities":
            entities = self.entities(job.text)
            text = "; ".join(f"{e['text']} ({e['label']})" for e in entities)
            return self._completion(job, text, entities)
        raise UnsupportedByProvider(
            f"The offline 'local' provider cannot do {job.task[:40]!r} tasks (it supports "
            f"{', '.join(sorted(self.supported_tasks or ()))}). Configure an LLM provider: "
            "set OPENAI_API_KEY or ANTHROPIC_API_KEY (and LLM_PROVIDER=auto, openai or "
            "anthropic) on the server."
        )

    def _completion(self, job: Job, text: str, result: Any) -> Completion:
        usage = Usage(input_tokens=_word_count(job.text), output_tokens=_word_count(text))
        return Completion(text=text, model=self.model, usage=usage, result=result)

    def keywords(self, text: str, count: int | None = None) -> list[str]:
        """YAKE keywords of the cleaned e-mail (subject first), best first.

        Case-insensitive duplicates go, and so does a keyword whose words all appear
        in a better-ranked one ("Northwind" after "Northwind Traders"): eight cells of
        "renewal", "Traders renewal", "Traders" say less than eight different topics.
        YAKE is asked for twice as many candidates so the list still fills up.
        """
        cleaned = clean_email(text)
        body = cleaned.content
        if cleaned.subject:
            body = f"{cleaned.subject}.\n{body}"
        if not _WORD.search(body):
            return []
        count = max(1, count or self.keyword_count)
        # A short list is the head of the default one (same candidates, same ranking).
        size = max(count, self.keyword_count)
        with self._keywords_lock:
            extractor = self._extractors.get(size)
            if extractor is None:
                extractor = self._extractors[size] = _keyword_extractor(2 * size)
            ranked = extractor.extract_keywords(body)
        out: list[str] = []
        covered: set[str] = set()
        for keyword, _score in ranked:
            value = " ".join(str(keyword).split())
            words = set(value.casefold().split())
            if not words or words <= covered:
                continue
            covered |= words
            out.append(value)
            if len(out) == count:
                break
        return out

    def sentiment(self, text: str) -> SentimentResult:
        """Business-aware VADER label and score (see `sentiment.BusinessSentiment`)."""
        return self._sentiment.score(text)

    def entities(self, text: str) -> list[Entity]:
        """Entities of `text` (rules, or spaCy merged with rules when installed)."""
        return self._entities.extract(text)

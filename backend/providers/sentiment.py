"""Sentiment for the offline `local` provider: VADER read with business English in mind.

Why this shape:
- VADER (Hutto & Gilbert, 2014) is a lexicon and a handful of rules (negation,
  boosters, "but", caps): no model, deterministic, fast. `bizlexicon` adapts its
  lexicon and rewrites business phrases into tokens VADER can weigh, so "we will
  increase our prices" reads as bad news, not as a friendly "increase".
- Greetings and sign-offs are removed first (`emailtext.clean_email`): they are polite
  in every e-mail and would push angry ones towards positive.
- "mixed" is decided per clause (sentences cut at "but", "however", "unfortunately",
  ";" ...): good and bad news often share one sentence ("the client loved the
  prototype, but they cut the budget"). One clearly positive and one clearly negative
  clause are needed, and the weaker side must carry a third of the stronger side's
  weight, so one polite "thanks" in an angry letter does not make it mixed.
- Work is bounded: VADER is quadratic in the words it is given (it re-reads the word
  list for every word, and each emoji becomes two or three words). Texts up to
  WHOLE_TEXT_CHARS (a typical cell) are scored whole; longer ones clause by clause, the
  clauses' raw valence sums added before VADER's normalisation x / sqrt(x^2 + 15) (the
  same total except for VADER's "but" rule across sentences and its "!" cap). Emoji
  past the first MAX_EMOJI add nothing VADER would not saturate anyway and are dropped.
"""

from __future__ import annotations

import math
import re
import textwrap
import unicodedata
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from backend.providers.bizlexicon import adapt_lexicon, prepare
from backend.providers.emailtext import clean_email, sanitize, split_sentences

SentimentResult = dict[str, Any]

# VADER's own convention for the compound score: |c| < 0.05 is neutral.
NEUTRAL_BAND = 0.05
# A clause counts as clearly positive / negative from |compound| >= MIXED_CLAUSE: about
# one ordinary sentiment word ("great", "broken", "delayed") in a short clause.
MIXED_CLAUSE = 0.4
MIXED_BALANCE = 1 / 3
WHOLE_TEXT_CHARS = 2_000
CHUNK_CHARS = 200
MAX_CHARS = 5_000
MAX_PIECES = 200
MAX_EMOJI = 50
VADER_ALPHA = 15

# Where a sentence turns: the marker starts the next clause.
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*|,?\s+(?=(?:but|however|although|though|whereas|yet|unfortunately|sadly"
    r"|on\s+the\s+other\s+hand|that\s+said|the\s+bad\s+news)\b)",
    re.IGNORECASE,
)


def unnormalise(compound: float) -> float:
    """The raw valence sum VADER normalised into `compound` (clamped: it rounds to 4 places)."""
    c = max(-0.9999, min(0.9999, compound))
    return c * math.sqrt(VADER_ALPHA / (1 - c * c))


def _drop_extra_emoji(text: str) -> str:
    """`text` without the symbols (emoji) after the first MAX_EMOJI of them."""
    seen = 0
    out: list[str] = []
    for ch in text:
        if ch > "\u2000" and unicodedata.category(ch) == "So":
            seen += 1
            if seen > MAX_EMOJI:
                continue
        out.append(ch)
    return "".join(out)


def is_mixed(clauses: list[float]) -> bool:
    """One clearly positive and one clearly negative clause, the weaker side not negligible."""
    positive = sum(c for c in clauses if c > 0)
    negative = -sum(c for c in clauses if c < 0)
    return (
        max(clauses, default=0.0) >= MIXED_CLAUSE
        and min(clauses, default=0.0) <= -MIXED_CLAUSE
        and min(positive, negative) >= MIXED_BALANCE * max(positive, negative)
    )


class BusinessSentiment:
    """VADER with the business layer; one instance per provider (the lexicon is per instance)."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()
        adapt_lexicon(self._vader.lexicon)

    def compound(self, text: str) -> float:
        """VADER's compound score of already prepared text."""
        return float(self._vader.polarity_scores(text)["compound"]) if text.strip() else 0.0

    def pieces(self, text: str) -> list[str]:
        """The cleaned message as prepared sentences (cut at CHUNK_CHARS), at most MAX_PIECES."""
        cleaned = clean_email(text).text.strip() or sanitize(text).strip()
        cleaned = _drop_extra_emoji(cleaned[:MAX_CHARS])
        raw = [
            piece
            for line in cleaned.split("\n")
            for sentence in split_sentences(line)
            for piece in textwrap.wrap(sentence, CHUNK_CHARS)
        ][:MAX_PIECES]
        return [p for p in (prepare(piece).strip() for piece in raw) if p]

    def score(self, text: str, whole_text_chars: int = WHOLE_TEXT_CHARS) -> SentimentResult:
        """{"label": positive | negative | neutral | mixed, "score": -1..1} for `text`."""
        pieces = self.pieces(text)
        if not pieces:
            return {"label": "neutral", "score": 0.0}
        clauses = [self.compound(c) for piece in pieces for c in _CLAUSE_BREAK.split(piece) if c]
        joined = "\n".join(pieces)
        if len(joined) <= whole_text_chars:
            score = self.compound(joined)
        else:  # the clauses' raw sums: no second pass over the long text
            raw = sum(unnormalise(c) for c in clauses)
            score = raw / math.sqrt(raw * raw + VADER_ALPHA)
        if is_mixed(clauses):
            label = "mixed"
        elif score >= NEUTRAL_BAND:
            label = "positive"
        elif score <= -NEUTRAL_BAND:
            label = "negative"
        else:
            label = "neutral"
        return {"label": label, "score": round(score, 3) + 0.0}  # + 0.0: no "-0.0"

"""Extractive summary for the offline `local` provider: TextRank over the message's sentences.

Why this shape:
- The sentences come from `emailtext`, which has already dropped headers, greetings,
  sign-offs, signatures and quoted replies: TextRank happily picks those ("Thanks,
  John" overlaps with everything), so they go *before* ranking. Every sentence handed
  back is a slice of the input: copied, never invented; only a lower-case first letter
  left by a cut greeting ("Hi team, the supplier...") is capitalised.
- A summary must be short to be worth a cell: at most 2 sentences and, from 4
  sentences of input on, at most 35 % of the words. Sentences that open by pointing
  back ("That would...") are ranked lower, as they read badly on their own.
- TextRank (Mihalcea & Tarau, 2004) in pure Python: sentence graph weighted by word
  overlap normalised by log lengths, PageRank with damping 0.85. No model, no download,
  deterministic, and a few milliseconds for a 250-word e-mail.
- Work is bounded whatever the input: sentences and iterations are capped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from backend.providers.emailtext import (
    SPEAKER,
    WORD,
    CleanedEmail,
    clean_email,
    sanitize,
    split_sentences,
    units,
    windows,
)

MAX_SENTENCES = 200  # sentence candidates ranked (the graph is quadratic in this)
MIN_RANKED_WORDS = 4  # shorter sentences are picked only when nothing longer is left
SPEAKER_UTTERANCE_WORDS = 60  # transcript lines up to this length stay one candidate
FALLBACK_CHARS = 300
LONG_INPUT_SENTENCES = 4  # from here on a summary keeps at most MAX_WORD_SHARE of the words
MAX_WORD_SHARE = 0.35
DAMPING = 0.85
MAX_ITERATIONS = 50
TOLERANCE = 1e-5


# Sentences that lean on the one before ("That would keep...", "It also...", "But...") read
# badly on their own, so a summary prefers a sentence that stands alone.
_DANGLING = re.compile(
    r"^\W*(?:that|this|these|those|it|its|they|them|their|he|she|his|her|which|so|also|but|and"
    r"|however|then|therefore|thus|otherwise|such)\b",
    re.IGNORECASE,
)
DANGLING_WEIGHT = 0.7
_FIRST_WORD = re.compile(r"^(\W*)([^\W\d_][\w'\u2019-]*)")

# fmt: off
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "let", "me", "more", "most", "my", "myself", "no", "nor", "not", "now",
    "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over",
    "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours", "yourself", "yourselves", "ll", "re", "ve", "s", "t", "d", "m"
})
# fmt: on


@dataclass(frozen=True)
class Sentence:
    """One summary candidate: `text` as shown, `tokens` as compared, `position` in input."""

    text: str
    tokens: frozenset[str]
    word_count: int
    position: int
    dangling: bool = False  # opens with a word pointing back ("That would ...")
    window: bool = False  # a later window of an over-long sentence: not a sentence start


def _stem(word: str) -> str:
    """Just enough stemming that "invoice" and "invoices" count as the same word."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> frozenset[str]:
    """Content words of `text`, lower-cased and lightly stemmed, for overlap."""
    return frozenset(_stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1)


def candidate_sentences(cleaned: CleanedEmail) -> list[Sentence]:
    """The sentences of the cleaned message, in order, at most MAX_SENTENCES of them."""
    out: list[Sentence] = []
    for unit, speaker in units(cleaned):
        if speaker and len(unit.split()) <= SPEAKER_UTTERANCE_WORDS:
            raw = [unit.strip()]
        else:
            raw = split_sentences(unit)
        for sentence in raw:
            for n, piece in enumerate(windows(sentence)):
                if not WORD.search(piece):
                    continue
                shown = " ".join(filter(None, (p.strip() for p in piece.split("\n"))))
                # A speaker's name says nothing about the topic: leave it out of overlap.
                prefix = SPEAKER.match(shown) if speaker else None
                content = shown[prefix.end() :] if prefix else shown
                dangling = bool(_DANGLING.match(content))
                out.append(Sentence(shown, tokens(content), len(shown.split()), len(out), dangling, n > 0))
                if len(out) >= MAX_SENTENCES:
                    return out
    return out


def _similarity(a: Sentence, b: Sentence) -> float:
    """TextRank's overlap: shared words / (log|a| + log|b|), +1 inside the logs.

    The +1 keeps one-word sentences from dividing by log(1) = 0.
    """
    shared = len(a.tokens & b.tokens)
    if not shared:
        return 0.0
    return shared / (math.log(len(a.tokens) + 1) + math.log(len(b.tokens) + 1))


def textrank_scores(sentences: list[Sentence]) -> list[float]:
    """Weighted PageRank over the sentence-similarity graph (damping 0.85, bounded)."""
    n = len(sentences)
    neighbours: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i in range(n):  # at most MAX_SENTENCES**2 / 2 small set intersections
        for j in range(i + 1, n):
            weight = _similarity(sentences[i], sentences[j])
            if weight:
                neighbours[i].append((j, weight))
                neighbours[j].append((i, weight))
    out_weight = [sum(w for _, w in edges) for edges in neighbours]
    scores = [1.0] * n
    for _ in range(MAX_ITERATIONS):
        new = [
            (1 - DAMPING) + DAMPING * sum(w / out_weight[j] * scores[j] for j, w in neighbours[i])
            for i in range(n)
        ]
        delta = max((abs(a - b) for a, b in zip(new, scores, strict=True)), default=0.0)
        scores = new
        if delta < TOLERANCE:
            break
    return scores


def capitalise(sentence: str) -> str:
    """`sentence` with its first letter upper-cased when its first word is all lower case.

    After "Hi team, " is cut, "the supplier raised prices" must still read as a
    sentence; "iPhone sales" and "eBay" are left alone.
    """
    match = _FIRST_WORD.match(sentence)
    if not match or not match.group(2).islower():
        return sentence
    i = match.start(2)
    return sentence[:i] + sentence[i].upper() + sentence[i + 1 :]


def _shown(sentence: Sentence) -> str:
    return sentence.text if sentence.window else capitalise(sentence.text)


def _pick(ranked: list[Sentence], max_sentences: int, max_words: int) -> list[Sentence]:
    """The top of the ranking, as far as it fits both budgets.

    It stops at the first sentence that does not fit rather than reaching down for a
    short, low-ranked one ("Please reply by Friday.") just because it is short. If
    not even the best fits, the best-ranked sentence that fits alone stands in (and
    the best one when none does: a summary is never empty).
    """
    picked: list[Sentence] = []
    words = 0
    for sentence in ranked[:max_sentences]:
        if words + sentence.word_count > max_words:
            break
        picked.append(sentence)
        words += sentence.word_count
    if picked:
        return picked
    fitting = [s for s in ranked if s.word_count <= max_words]
    return (fitting or ranked)[:1]


def summarize(text: str, max_sentences: int = 2) -> str:
    """The highest-ranked sentences of the cleaned text, in input order, capitalised.

    A summary must be much shorter than its text: from LONG_INPUT_SENTENCES sentences on,
    it has at most `max_sentences` sentences *and* at most MAX_WORD_SHARE of the words
    (the best-ranked sentence alone when no sentence fits). Shorter texts give at most
    `max_sentences` sentences, so a two-sentence cell comes back cleaned, whole. When
    cleanup leaves nothing (a bare "Hello", an emoji), the first 300 characters of the
    stripped input stand in, so a cell never shows an empty summary for a non-empty input.

    An e-mail's subject joins the graph as a node that can never be picked: the writer's
    own one-line summary lends weight to the sentences that share its words.
    """
    cleaned = clean_email(text)
    sentences = candidate_sentences(cleaned)
    if not sentences:
        return sanitize(text).strip()[:FALLBACK_CHARS]
    if len(sentences) <= max_sentences:
        return " ".join(_shown(s) for s in sentences)
    graph = list(sentences)
    if cleaned.subject:
        subject_tokens = tokens(cleaned.subject)
        graph.append(Sentence(cleaned.subject, subject_tokens, 0, len(sentences)))
    scores = textrank_scores(graph)
    # Fragments ("Agenda", "Thanks!") only fill places no real sentence can; a sentence
    # that opens by pointing back ("That would...") weighs DANGLING_WEIGHT of its score.
    ranked = sorted(
        sentences,
        key=lambda s: (
            s.word_count < MIN_RANKED_WORDS,
            -scores[s.position] * (DANGLING_WEIGHT if s.dangling else 1.0),
            s.position,
        ),
    )
    max_words = len(ranked) * MAX_SENTENCES  # no word budget for short texts
    if len(sentences) >= LONG_INPUT_SENTENCES:
        max_words = math.floor(MAX_WORD_SHARE * sum(s.word_count for s in sentences))
    best = _pick(ranked, max_sentences, max_words)
    return " ".join(_shown(s) for s in sorted(best, key=lambda s: s.position))

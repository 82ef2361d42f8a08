"""Extractive summary for the offline `local` provider: e-mail cleanup, sentences, TextRank.

Why this shape:
- Excel users paste whole e-mails. Headers, greetings, sign-offs, signatures and quoted
  replies are not what the mail is about, and TextRank happily picks them ("Thanks,
  John" overlaps with everything), so they are removed *before* ranking.
- Cleanup only drops whole lines (or a leading greeting), so every sentence handed back
  is a slice of the input: copied, never invented. The one change made to a slice is
  that a hard line wrap inside a sentence ("with\\nAcme Corp") is shown as one space.
- TextRank (Mihalcea & Tarau, 2004) in pure Python: sentence graph weighted by word
  overlap normalised by log lengths, PageRank with damping 0.85. No model, no download,
  deterministic, and a few milliseconds for a 250-word e-mail.
- Work is bounded whatever the input: characters, sentences and iterations are capped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_CHARS = 20_000  # five times the API's default prompt cap; the rest is ignored
MAX_SENTENCES = 200  # sentence candidates ranked (the graph is quadratic in this)
MAX_SENTENCE_WORDS = 80  # longer "sentences" (no punctuation) are cut into windows
WINDOW_WORDS = 40
MIN_RANKED_WORDS = 4  # shorter sentences are picked only when nothing longer is left
SPEAKER_UTTERANCE_WORDS = 60  # transcript lines up to this length stay one candidate
FALLBACK_CHARS = 300
DAMPING = 0.85
MAX_ITERATIONS = 50
TOLERANCE = 1e-5

# --- cleanup -------------------------------------------------------------------------

# Control characters other than tab/newline (NUL bytes from bad exports, etc.).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER = re.compile(
    r"^\s*(?:subject|from|to|cc|bcc|date|sent|reply-to|importance|re|fw|fwd)\s*:",
    re.IGNORECASE,
)
_THREAD_HEADER = re.compile(r"^\s*(?:from|sent)\s*:", re.IGNORECASE)
_SUBJECT = re.compile(r"^\s*subject\s*:\s*(?:(?:re|fw|fwd)\s*:\s*)*(.*)$", re.IGNORECASE)
_GREETING_WORDS = (
    r"(?:hi|hello|hey|hiya|dear|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|to\s+whom\s+it\s+may\s+concern)"
)
# A whole line that is only a greeting: "Hi John,", "Dear team,", "Hello,", "Hi!".
_GREETING_LINE = re.compile(rf"^\s*{_GREETING_WORDS}\b[^.!?\n]{{0,40}}[,:!]?\s*$", re.IGNORECASE)
# A greeting that opens a line with content after it: "Hi John, the invoice is late."
_GREETING_PREFIX = re.compile(rf"^\s*{_GREETING_WORDS}\b[^,:!.?\n]{{0,40}}[,:!]\s+", re.IGNORECASE)
_SIGN_OFF_WORDS = (
    r"(?:best\s+regards|kind\s+regards|warm\s+regards|warmest\s+regards|regards"
    r"|best\s+wishes|best|all\s+the\s+best|many\s+thanks|thanks\s+again|thanks\s+a\s+lot"
    r"|thanks|thank\s+you|thx|cheers|sincerely|yours\s+sincerely|yours\s+truly"
    r"|yours\s+faithfully|yours|respectfully|talk\s+soon|take\s+care)"
)
# A sign-off line, optionally followed by a short name: "Best regards,", "Thanks, Anna".
_SIGN_OFF = re.compile(
    rf"^\s*{_SIGN_OFF_WORDS}\s*[,.!]*\s*(?:[-\u2013\u2014]\s*)?(?:[A-Z][\w.'\u2019-]*(?:\s+[A-Z][\w.'\u2019-]*){{0,2}})?"
    r"\s*[,.!]*\s*$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s*$")
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*(?:-{2,}\s*(?:original|forwarded)\s+message\s*-{2,}|_{10,})\s*$", re.IGNORECASE
)
_ON_WROTE = re.compile(r"^\s*On\b.{0,200}\bwrote:\s*$", re.IGNORECASE)
_ON_START = re.compile(r"^\s*On\s", re.IGNORECASE)
_WROTE_END = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_MOBILE = re.compile(r"^\s*sent\s+from\s+my\b", re.IGNORECASE)
_NO_WORD = re.compile(r"^\W*$")  # separators, emoji-only lines, blank lines

# --- sentences -----------------------------------------------------------------------

_SPEAKER = re.compile(
    r"^\s*(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*)?"
    r"[A-Z][\w.'\u2019-]*(?:\s+[A-Z][\w.'\u2019-]*){0,3}\s*:\s+(?=\S)"
)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_TERMINAL = re.compile(r"[.!?…:;\u3002\uff01\uff1f؟]['\"\u201d\u2019)\]]*\s*$")
# A sentence ends at . ! ? … followed by optional closers and whitespace, or at a CJK
# full stop (which needs no space after it).
_BOUNDARY = re.compile(
    r"(?<![.!?…؟])[.!?…؟]+['\"\u201d\u2019)\]»]*(?:\s+|$)"
    r"|[\u3002\uff01\uff1f]+['\"\u201d\u2019\u300d\u300f)]*\s*"
)
# fmt: off
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "eg", "ie",
    "inc", "ltd", "co", "corp", "no", "approx", "est", "dept", "fig", "al", "jan", "feb", "mar",
    "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu",
    "fri", "sat", "sun", "a.m", "p.m", "u.s", "u.k"
})
# fmt: on
_WORD = re.compile(r"\w+")

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


@dataclass(frozen=True)
class CleanedEmail:
    """The body lines worth reading (line index, text) and the subject, if there was one."""

    lines: list[tuple[int, str]]
    subject: str | None

    @property
    def text(self) -> str:
        """The kept lines as one text, for sentiment analysis."""
        return "\n".join(line for _, line in self.lines)

    @property
    def content(self) -> str:
        """The kept lines without transcript speaker prefixes ("Alice: "), for keywords.

        Speakers' names repeat on every line, so keyword extraction would rank them first.
        """
        return "\n".join(_SPEAKER.sub("", line, count=1) for _, line in self.lines)


def sanitize(text: str) -> str:
    """Drop NUL and other control characters, unify line endings, cap the length."""
    text = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def _is_quote_intro(lines: list[str], i: int) -> bool:
    """'On Mon, 4 Mar 2024, Ann <a@b.c> wrote:', on one line or wrapped onto a second."""
    if _ON_WROTE.match(lines[i]):
        return True
    return (
        bool(_ON_START.match(lines[i]))
        and i + 1 < len(lines)
        and bool(_WROTE_END.search(lines[i + 1]))
        and len(lines[i]) + len(lines[i + 1]) < 250
    )


def clean_email(text: str) -> CleanedEmail:
    """Keep the lines of `text` a reader would call the message; works on any text.

    Header lines and greeting lines are dropped; quoted lines (">") are dropped; the
    message ends at a signature marker ("-- "), a quoted-reply intro ("On ... wrote:"),
    an "Original Message" separator, a reply header (From:/Sent: after the body began)
    or a sign-off ("Best regards,") once some body text has been seen, so everything
    after those (signature, older thread) goes too. Plain text without any of these
    comes back unchanged, line for line.
    """
    lines = sanitize(text).split("\n")
    kept: list[tuple[int, str]] = []
    subject: str | None = None
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line) or _ORIGINAL_MESSAGE.match(line) or _is_quote_intro(lines, i):
            break
        if kept and (_THREAD_HEADER.match(line) or (len(line) < 80 and _SIGN_OFF.match(line))):
            break
        if _HEADER.match(line):
            match = _SUBJECT.match(line)
            if match and subject is None and match.group(1).strip():
                subject = match.group(1).strip()
            continue
        if _QUOTED.match(line) or _MOBILE.match(line) or _NO_WORD.match(line):
            continue
        if not kept and len(line) < 80 and _GREETING_LINE.match(line):
            continue
        if not kept:
            prefix = _GREETING_PREFIX.match(line)
            if prefix and _WORD.search(line, prefix.end()):
                line = line[prefix.end() :]
        kept.append((i, line.rstrip()))
    return CleanedEmail(kept, subject)


def _units(cleaned: CleanedEmail) -> list[tuple[str, bool]]:
    """Group kept lines into paragraphs (joining hard-wrapped lines) and utterances.

    Returns (text, is_speaker_utterance). Two adjacent lines are one paragraph when the
    first does not end a sentence, the second starts no speaker turn or bullet, and the
    first is long (a wrapped line) or the second starts lower case (a continuation).
    "Name: ..." lines are speaker turns only in a transcript (two or more of them), so
    a lone "Note: ..." in an e-mail is still split into sentences.
    """
    transcript = sum(1 for _, line in cleaned.lines if _SPEAKER.match(line)) >= 2
    units: list[tuple[str, bool]] = []
    prev_index = -2
    for index, line in cleaned.lines:
        speaker = transcript and bool(_SPEAKER.match(line))
        if units and index == prev_index + 1 and not speaker and not _BULLET.match(line):
            prev_text, prev_speaker = units[-1]
            last_line = prev_text.rsplit("\n", 1)[-1].strip()
            first = line.lstrip()[:1]
            if not _TERMINAL.search(last_line) and (len(last_line) >= 40 or first.islower()):
                units[-1] = (prev_text + "\n" + line, prev_speaker)
                prev_index = index
                continue
        units.append((line, speaker))
        prev_index = index
    return units


def _is_real_boundary(text: str, start: int, next_char: str) -> bool:
    """False for "Dr. Smith", "e.g. this", "J. Smith": abbreviation, initial, lower case next."""
    if next_char.islower():
        return False
    if text[start] != ".":
        return True
    before = text[max(0, start - 20) : start].split()  # bounded: no rescans of long text
    if not before:
        return True
    word = before[-1].lstrip("(['\"\u201c\u2018").lower()
    if word in _ABBREVIATIONS:
        return False
    return not (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences, each a verbatim slice of `text` (stripped)."""
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        next_char = text[end : end + 1]
        if end < len(text) and not _is_real_boundary(text, match.start(), next_char):
            continue
        piece = text[start:end].strip()
        if piece:
            pieces.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _windows(sentence: str) -> list[str]:
    """Cut an over-long run of words (no punctuation at all) into verbatim windows."""
    spans = [m.span() for m in re.finditer(r"\S+", sentence)]
    if len(spans) <= MAX_SENTENCE_WORDS:
        return [sentence]
    return [
        sentence[spans[i][0] : spans[min(i + WINDOW_WORDS, len(spans)) - 1][1]]
        for i in range(0, len(spans), WINDOW_WORDS)
    ]


def _stem(word: str) -> str:
    """Just enough stemming that "invoice" and "invoices" count as the same word."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> frozenset[str]:
    """Content words of `text`, lower-cased and lightly stemmed, for overlap."""
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1)


def candidate_sentences(cleaned: CleanedEmail) -> list[Sentence]:
    """The sentences of the cleaned message, in order, at most MAX_SENTENCES of them."""
    out: list[Sentence] = []
    for unit, speaker in _units(cleaned):
        if speaker and len(unit.split()) <= SPEAKER_UTTERANCE_WORDS:
            raw = [unit.strip()]
        else:
            raw = split_sentences(unit)
        for sentence in raw:
            for piece in _windows(sentence):
                if not _WORD.search(piece):
                    continue
                shown = " ".join(filter(None, (p.strip() for p in piece.split("\n"))))
                # A speaker's name says nothing about the topic: leave it out of overlap.
                prefix = _SPEAKER.match(shown) if speaker else None
                content = shown[prefix.end() :] if prefix else shown
                out.append(Sentence(shown, tokens(content), len(shown.split()), len(out)))
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


def summarize(text: str, max_sentences: int = 3) -> str:
    """The `max_sentences` highest-ranked sentences of the cleaned text, in input order.

    Texts with no more sentences than asked come back cleaned, whole. When cleanup
    leaves nothing (a bare "Hello", an emoji), the first 300 characters of the stripped
    input stand in, so a cell never shows an empty summary for a non-empty input.

    An e-mail's subject joins the graph as a node that can never be picked: the writer's
    own one-line summary lends weight to the sentences that share its words.
    """
    cleaned = clean_email(text)
    sentences = candidate_sentences(cleaned)
    if not sentences:
        return sanitize(text).strip()[:FALLBACK_CHARS]
    if len(sentences) <= max_sentences:
        return " ".join(s.text for s in sentences)
    graph = list(sentences)
    if cleaned.subject:
        subject_tokens = tokens(cleaned.subject)
        graph.append(Sentence(cleaned.subject, subject_tokens, 0, len(sentences)))
    scores = textrank_scores(graph)
    # Fragments ("Agenda", "Thanks!") only fill places no real sentence can.
    best = sorted(
        sentences,
        key=lambda s: (s.word_count < MIN_RANKED_WORDS, -scores[s.position], s.position),
    )[:max_sentences]
    return " ".join(s.text for s in sorted(best, key=lambda s: s.position))

"""Plain text out of a pasted e-mail or transcript: cleanup, paragraphs, sentences.

Why a module of its own: the local provider's summary, keywords and sentiment all read
the message, not its wrapping. Headers, greetings, sign-offs, signatures and quoted
replies are dropped as whole lines (or a leading greeting), so every sentence handed on
is a verbatim slice of the input; the one change is that a hard line wrap inside a
sentence ("with\\nAcme Corp") is shown as one space. Work is bounded whatever the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 20_000  # five times the API's default prompt cap; the rest is ignored
MAX_SENTENCE_WORDS = 80  # longer "sentences" (no punctuation) are cut into windows
WINDOW_WORDS = 40

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
# The same sign-off at the end of a one-line cell: "... while I am away. Best, Ana".
_TRAILING_SIGN_OFF = re.compile(
    rf"(?<=[.!?])\s+(?i:{_SIGN_OFF_WORDS})[\s,.!]*"
    r"(?:(?:[-\u2013\u2014]\s*)?[A-Z][\w'\u2019-]*(?:[.\s]+[A-Z][\w'\u2019-]*){0,2}[\s,.!]*)?$",
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

SPEAKER = re.compile(
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
# A company name ends at its suffix, so a capital after "Corp." starts a new sentence.
_COMPANY_SUFFIXES = frozenset({"inc", "ltd", "corp", "co", "llc", "plc"})
WORD = re.compile(r"\w+")


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
        return "\n".join(SPEAKER.sub("", line, count=1) for _, line in self.lines)


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
    after those (signature, older thread) goes too; so does a sign-off ending the last
    line of a one-line cell ("... by Friday. Thanks, Tom"). Plain text without any of these
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
            if prefix and WORD.search(line, prefix.end()):
                line = line[prefix.end() :]
        kept.append((i, line.rstrip()))
    if kept:
        index, last = kept[-1]
        tail = _TRAILING_SIGN_OFF.search(last)
        if tail:
            kept[-1] = (index, last[: tail.start()])
    return CleanedEmail(kept, subject)


def units(cleaned: CleanedEmail) -> list[tuple[str, bool]]:
    """Group kept lines into paragraphs (joining hard-wrapped lines) and utterances.

    Returns (text, is_speaker_utterance). Two adjacent lines are one paragraph when the
    first does not end a sentence, the second starts no speaker turn or bullet, and the
    first is long (a wrapped line) or the second starts lower case (a continuation).
    "Name: ..." lines are speaker turns only in a transcript (two or more of them), so
    a lone "Note: ..." in an e-mail is still split into sentences.
    """
    transcript = sum(1 for _, line in cleaned.lines if SPEAKER.match(line)) >= 2
    units: list[tuple[str, bool]] = []
    prev_index = -2
    for index, line in cleaned.lines:
        speaker = transcript and bool(SPEAKER.match(line))
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
    """False for "Dr. Smith", "e.g. this", "J. Smith": abbreviation, initial, lower case next.

    A company suffix is the exception: "Acme Corp. Tom will call" is two sentences.
    """
    if next_char.islower():
        return False
    if text[start] != ".":
        return True
    before = text[max(0, start - 20) : start].split()  # bounded: no rescans of long text
    if not before:
        return True
    word = before[-1].lstrip("(['\"\u201c\u2018").lower()
    if word in _COMPANY_SUFFIXES:
        return next_char.isupper()  # "with Acme Corp. Tom will call" ends at "Corp."
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


def windows(sentence: str) -> list[str]:
    """Cut an over-long run of words (no punctuation at all) into verbatim windows."""
    spans = [m.span() for m in re.finditer(r"\S+", sentence)]
    if len(spans) <= MAX_SENTENCE_WORDS:
        return [sentence]
    return [
        sentence[spans[i][0] : spans[min(i + WINDOW_WORDS, len(spans)) - 1][1]]
        for i in range(0, len(spans), WINDOW_WORDS)
    ]

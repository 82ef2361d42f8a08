"""Entities for the offline `local` provider: regex rules, upgraded by spaCy when installed.

Labels are the LLM task's (backend/templates.toml): PERSON, ORG, LOCATION, DATE, MONEY,
PRODUCT, OTHER, so a sheet reads the same whatever the provider. Times count as DATE;
percentages, e-mail addresses, URLs and phone numbers as OTHER.

Why rules first: money, dates, times, percentages, e-mail addresses, URLs and phone
numbers have shapes a regex finds reliably and in microseconds, with nothing to
download. Names are the weak spot of rules: `names.classify` labels a run of
capitalised words from the evidence in the e-mail (greetings, sign-offs, titles,
company suffixes, short word lists) and calls the rest OTHER. The optional `[ner]`
extra (spaCy plus a small English model, e.g. `en_core_web_sm`) replaces that with a
statistical model; the MONEY, EMAIL, URL and PHONE rules and the people named in
greetings and sign-offs stay in charge even then, because the small model misses
"€300", splits URLs and e-mail addresses, and often takes "Hi Sarah" for an ORG.

The spaCy model is named by the LOCAL_NER_MODEL setting (default "en_core_web_sm"; set
it to "" or "none" to keep rules only) and loaded lazily, once per process.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from typing import Any, TypedDict

from backend.providers.names import COMPANY_SUFFIXES, MULTI_WORD_PLACES, TITLES, classify, context_people

log = logging.getLogger("backend.providers.entities")

DEFAULT_NER_MODEL = "en_core_web_sm"
MAX_CHARS = 20_000


class Entity(TypedDict):
    """One entity as the API returns it."""

    text: str
    label: str


_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
_SCALE = r"(?:\s?(?:thousand|million|billion|trillion|mn|bn|[kKmM])\b)?"
_AMOUNT = r"\d{1,3}(?:[,\u00a0\u202f]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CODE = r"(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|CNY|INR|SEK|NOK|DKK|dollars?|euros?|pounds?)"

# (label, pattern) in priority order: on overlap the earlier label wins, then the
# longer match. E-mail and URL come first because they contain digits and names.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")),
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]")),
    (
        "MONEY",
        re.compile(
            rf"(?:US\$|[$\u20ac\u00a3\u00a5\u20b9])\s?(?:{_AMOUNT}){_SCALE}"
            rf"|\b(?:USD|EUR|GBP|CHF|JPY)\s?(?:{_AMOUNT}){_SCALE}"
            rf"|\b(?:{_AMOUNT}){_SCALE}\s?{_CODE}\b"
        ),
    ),
    ("PERCENT", re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|percent\b|per\s?cent\b)")),
    (
        "DATE",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}\b"
            r"|\b\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})\b"
            rf"|\b{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?(?!\w)"
            rf"|\b{_MONTH}\s+\d{{4}}\b"
            rf"|\b{_MONTH}\s+{_ORD}(?:,?\s+\d{{4}})?\b"
            rf"|\b(?:(?:[Nn]ext|[Ll]ast|[Tt]his|[Cc]oming)\s+)?{_DAY}\b"
            r"|\b(?:[Nn]ext|[Ll]ast)\s+(?:week|month|quarter|year)\b"
            r"|\b[Tt]omorrow\b|\b[Yy]esterday\b"
            r"|\bQ[1-4](?:\s+\d{4})?\b"
        ),
    ),
    (
        "TIME",
        re.compile(
            r"\b(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s?(?:[ap]\.m\.|[ap]m\b|[AP]M\b)"
            r"|\b(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\b"
        ),
    ),
    ("PHONE", re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,}\d(?![\w])")),
    (
        "LOCATION",
        re.compile(
            r"\b(?:" + "|".join(p.title().replace(" ", r"\s") for p in sorted(MULTI_WORD_PLACES)) + r")\b"
        ),
    ),
]
_PHONE_DIGITS = (9, 15)

# Capitalised words: "Northwind", "O'Neil", "ACME", "McDonald's"; connectors allowed
# between them ("Bank of America", "Procter & Gamble"); titles and company suffixes
# may carry a dot ("Dr. Jane Smith", "Contoso Ltd.").
_NAME_TOKEN = re.compile(r"[^\W\d_][\w'\u2019&.-]*|&")
_CONNECTORS = frozenset(
    {"of", "&", "de", "van", "von", "der", "den", "da", "di", "du", "la", "le", "del", "bin"}
)
_TITLES = TITLES | {"st", "sr"}
_COMPANY_SUFFIXES = COMPANY_SUFFIXES | {"jr"}
# The internal rule kinds, and spaCy's labels, in the LLM task's label set (None: dropped).
OUTPUT_LABELS: dict[str, str | None] = {
    "EMAIL": "OTHER", "URL": "OTHER", "PHONE": "OTHER", "PERCENT": "OTHER", "TIME": "DATE",
    "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "NORP": "OTHER", "EVENT": "OTHER",
    "WORK_OF_ART": "OTHER", "LAW": "OTHER", "LANGUAGE": "OTHER", "QUANTITY": "OTHER",
    "CARDINAL": None, "ORDINAL": None,
}  # fmt: skip
# fmt: off
_COMMON = frozenset({
    "a", "about", "after", "again", "all", "also", "an", "and", "any", "are", "as", "at", "be",
    "because", "before", "but", "by", "can", "could", "dear", "did", "do", "does", "during",
    "each", "every", "for", "from", "good", "great", "greetings", "had", "has", "have", "he",
    "hello", "her", "hey", "hi", "his", "how", "i", "if", "in", "is", "it", "its", "just",
    "kind", "let", "many", "may", "me", "more", "most", "my", "no", "not", "now", "of", "on",
    "once", "only", "or", "our", "out", "please", "regards", "she", "should", "since",
    "sincerely", "so", "some", "such", "thank", "thanks", "that", "the", "their", "then",
    "there", "these", "they", "this", "those", "though", "to", "today", "tomorrow",
    "unfortunately", "until", "we", "well", "what", "when", "where", "which", "while", "who",
    "why", "will", "with", "would", "yes", "yesterday", "yet", "you", "your", "best", "cheers",
    "morning", "afternoon", "evening", "team", "everyone", "hope", "sorry", "re", "fw", "fwd",
    "subject", "cc", "date", "sent", "attached", "per", "note", "meanwhile", "however",
    "finally", "first", "next", "last", "new", "ok", "okay", "perfect", "sounds"
})
# fmt: on
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*)$")
_SUBJECT_LINE = re.compile(r"^[ \t]*subject[ \t]*:.*$", re.IGNORECASE | re.MULTILINE)
_MONTHS_AND_DAYS = re.compile(rf"^(?:{_MONTH}|{_DAY})$")
_POSSESSIVE = re.compile(r"(?:['\u2019]s?|\.)$")


def _word(m: re.Match[str]) -> str:
    """The token without a possessive or a trailing dot: "Traders'" -> "Traders"."""
    return _POSSESSIVE.sub("", m.group())


def _weak(m: re.Match[str]) -> bool:
    """Connectors, common words and month/day names cannot start or end a name."""
    word = _word(m)
    lower = word.lower()
    return lower in _CONNECTORS or lower in _COMMON or bool(_MONTHS_AND_DAYS.match(word))


def _span(run: list[re.Match[str]]) -> tuple[int, int, list[str]] | None:
    """The name a run of capitalised tokens stands for (start, end, words), or None.

    Weak ends are trimmed ("The Northwind Traders" -> "Northwind Traders"); all-caps
    runs of two or more words ("VERY ANGRY NOW") are shouting.
    """
    start, end = 0, len(run)
    while start < end and _weak(run[start]):
        start += 1
    while end > start and _weak(run[end - 1]):
        end -= 1
    words = [m for m in run[start:end] if m.group() != "&"]
    if not words or (len(words) > 1 and all(m.group().isupper() for m in words)):
        return None
    last = run[end - 1]
    keep_dot = _word(last).lower() in _COMPANY_SUFFIXES and last.group().endswith(".")
    stop = last.end() if keep_dot else last.start() + len(_word(last))
    return run[start].start(), stop, [_word(m) for m in run[start:end]]


def _names(text: str) -> list[tuple[int, int, list[str]]]:
    """Runs of consecutive capitalised words on one line, as (start, end, words)."""
    spans: list[tuple[int, int, list[str]]] = []
    run: list[re.Match[str]] = []

    def flush() -> None:
        span = _span(run) if run else None
        if span:
            spans.append(span)
        run.clear()

    for match in _NAME_TOKEN.finditer(text):
        word = match.group()
        if run and text[run[-1].end() : match.start()] not in (" ", "  "):
            flush()  # a comma, a newline, a quote... ends the name
        capitalised = word == "&" or (word[:1].isupper() and not any(ch.isdigit() for ch in word))
        if capitalised or (run and word.lower() in _CONNECTORS):
            run.append(match)
            # A dot ends the name unless it marks a title or an initial ("Dr.", "J.").
            stem = _word(match).lower()
            if word.endswith(".") and stem not in _TITLES and len(stem) > 1:
                flush()
        else:
            flush()
    flush()
    return spans


def _people_spans(text: str, people: set[str]) -> list[tuple[int, int]]:
    """Where the people named in greetings and sign-offs occur (whole words)."""
    if not people:
        return []
    names = sorted(people, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")
    return [m.span() for m in pattern.finditer(text)]


def rule_entities(text: str, include_names: bool = True) -> list[tuple[int, int, str]]:
    """(start, end, label) spans found by the regex rules, overlaps resolved, in order."""
    found: list[tuple[int, int, int, str]] = []  # start, end, priority, label
    for priority, (label, pattern) in enumerate(_RULES):
        for match in pattern.finditer(text):
            start, end = match.span()
            value = match.group()
            if label == "PHONE":
                digits = sum(ch.isdigit() for ch in value)
                if not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
                    continue
            found.append((start, end, priority, label))
    if include_names:
        # Title-case subject lines ("Q3 Budget Review") are not names: blank them out.
        masked = _SUBJECT_LINE.sub(lambda m: " " * len(m.group()), text)
        people = context_people(text)
        for start, end, words in _names(masked):
            name = classify(words, people)
            if len(words) > 1 and _SENTENCE_START.search(text[max(0, start - 3) : start] or "\n"):
                # "Ask Lena", "Contact David Chen": a capitalised verb, then the name.
                rest = classify(words[1:], people)
                if rest in ("PERSON", "LOCATION") and name != "PERSON":
                    start, name = text.index(words[1], start), rest
            if name:
                found.append((start, end, len(_RULES), name))
    return _resolve(found)


def _resolve(found: list[tuple[int, int, int, str]]) -> list[tuple[int, int, str]]:
    """Keep the higher-priority, then longer, span wherever two overlap; sort by start."""
    taken: list[tuple[int, int, str]] = []  # kept sorted and non-overlapping
    for start, end, _, label in sorted(found, key=lambda f: (f[2], f[0] - f[1], f[0])):
        at = bisect.bisect_left(taken, (start,))
        if at > 0 and taken[at - 1][1] > start:
            continue  # overlaps the span that starts before it
        if at < len(taken) and taken[at][0] < end:
            continue  # overlaps the span that starts at or after it
        taken.insert(at, (start, end, label))
    return taken


def _dedupe(spans: list[tuple[int, int, str]], text: str) -> list[Entity]:
    """Entities in order of first appearance, in the task's labels, each (text, label) once."""
    seen: set[tuple[str, str]] = set()
    out: list[Entity] = []
    for start, end, kind in spans:
        label = OUTPUT_LABELS.get(kind, kind)
        if label is None:
            continue
        value = " ".join(text[start:end].split())
        key = (value.casefold(), label)
        if value and key not in seen:
            seen.add(key)
            out.append({"text": value, "label": label})
    # "Maria" next to "Maria Lopez" is the same person said twice.
    firsts = {e["text"].split()[0] for e in out if e["label"] == "PERSON" and " " in e["text"]}
    return [e for e in out if not (e["label"] == "PERSON" and e["text"] in firsts)]


_spacy_lock = threading.Lock()
_spacy_models: dict[str, Any] = {}  # model name -> loaded pipeline, or None if unavailable


def load_spacy(model: str) -> Any:
    """The spaCy pipeline `model`, loaded once per process; None when spaCy or it is missing.

    One debug line says why the rules are used instead; no warning on every request.
    """
    with _spacy_lock:
        if model in _spacy_models:
            return _spacy_models[model]
        nlp: Any = None
        try:
            import spacy

            nlp = spacy.load(model, disable=["lemmatizer", "textcat"])
        except Exception as exc:  # ImportError, OSError (model not installed), ...
            log.debug("spaCy NER unavailable (%s: %s); using rule-based entities", type(exc).__name__, exc)
        _spacy_models[model] = nlp
        return nlp


class EntityExtractor:
    """Rule-based entities, or spaCy NER merged with the MONEY/EMAIL/URL/PHONE/people rules.

    `nlp` may be passed in (tests pass a fake); otherwise `model` (default: env var
    the LOCAL_NER_MODEL setting, else "en_core_web_sm") is loaded lazily on first use.
    """

    _RULE_LABELS_KEPT_WITH_SPACY = frozenset({"MONEY", "EMAIL", "URL", "PHONE"})

    def __init__(self, model: str | None = None, nlp: Any = None) -> None:
        if model is None:
            model = DEFAULT_NER_MODEL
        self.model = "" if model.strip().lower() in {"", "none", "off"} else model.strip()
        self._nlp = nlp
        self._loaded = nlp is not None or not self.model

    def _pipeline(self) -> Any:
        if not self._loaded:
            self._nlp = load_spacy(self.model)
            self._loaded = True
        return self._nlp

    def extract(self, text: str) -> list[Entity]:
        """Entities of `text` in order of appearance, deduplicated."""
        text = text[:MAX_CHARS].replace("\x00", "")
        nlp = self._pipeline()
        if nlp is None:
            return _dedupe(rule_entities(text), text)
        found: list[tuple[int, int, int, str]] = [
            (s, e, 0, label)
            for s, e, label in rule_entities(text, include_names=False)
            if label in self._RULE_LABELS_KEPT_WITH_SPACY
        ]
        found.extend((s, e, 0, "PERSON") for s, e in _people_spans(text, context_people(text)))
        found.extend((ent.start_char, ent.end_char, 1, str(ent.label_)) for ent in nlp(text).ents)
        return _dedupe(_resolve(found), text)

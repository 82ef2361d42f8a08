"""A business-English layer for VADER: word valences, phrase cues and courtesy formulas.

Why: VADER was built on social media, where "increase" (+1.3), "please" (+1.3),
"support" (+1.7) and "value" (+1.4) are friendly words. In a business e-mail they are
functional: "we will increase our prices", "please find attached", "the support team",
"we value your business". So a polite price-rise notice came out positive (+0.44 in the
README example). This module corrects that without replacing VADER:

- WORDS: valences merged into a VADER instance's own lexicon (neutral function words
  removed, business words such as "overdue", "outage", "postponed" added).
- COURTESY: formulas that say nothing about the news ("thank you for your
  understanding", "I hope you are well", "feel free to") are removed before scoring.
- CUES: phrases whose sense needs two words ("prices will rise", "sales grew", "behind
  schedule", "won the tender") are replaced by one placeholder token that carries the
  valence in the lexicon. VADER then still applies its own rules around it: "we will
  *not* raise prices" is negated, "VERY late" is boosted.

The rules are about business language in general (price and metric directions,
schedule, payment, deals), not about any test sentence; tests/data holds the labelled
e-mails they are measured on (see scripts/bench_local.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words whose VADER valence is a social-media sense; in business text they are neutral
# ("gross margin", "PO number", "bank charges", "public holiday").
NEUTRAL_WORDS = (
    "please", "kindly", "dear", "increase", "value", "support", "agreement", "agreed", "credit",
    "share", "shared", "party", "interest", "urgent", "important", "fixed", "number", "po",
    "charges", "pay", "demand", "gross", "legal", "legally", "asset", "assets", "holiday",
    "hand",  # "on the other hand" (+2.2 in VADER)
    "alarm",  # "fire alarm test"
    "no",  # "no changes", "PO no. 12" (VADER still negates the word after "no")
    "promise", "promised",  # mostly in "the delivery promised for Monday ..."
)  # fmt: skip
# Business words VADER lacks or under-weights (VADER's scale: -4..+4, "bad" is -2.5).
WORDS: dict[str, float] = {
    "unfortunately": -2.0, "overdue": -2.0, "unpaid": -1.5, "postponed": -1.5,
    "postpone": -1.2, "delay": -1.5, "delays": -1.5, "delayed": -1.5, "late": -1.5,
    "stalled": -1.5, "surcharge": -1.5, "surcharges": -1.5, "overcharged": -2.0,
    "overcharge": -2.0, "outage": -2.0, "outages": -2.0, "downtime": -1.2, "defective": -2.0,
    "faulty": -2.0, "shortage": -1.5, "shortfall": -1.5, "backlog": -0.8, "backordered": -1.5,
    "penalties": -2.0, "churn": -1.5, "cancel": -1.2, "cancelled": -1.5, "canceled": -1.5,
    "cancellation": -1.5, "terminated": -1.5, "termination": -1.5, "escalated": -1.2,
    "escalation": -1.2, "bug": -1.2, "bugs": -1.2, "crashes": -1.7, "crashed": -1.7,
    "glitch": -1.2, "slip": -1.0, "slips": -1.0, "slipped": -1.0, "unresolved": -1.5,
    "breach": -1.8, "layoffs": -2.0, "downturn": -1.8, "slow": -1.0, "slower": -1.0, "sluggish": -1.2,
    "idle": -1.0, "unreliable": -1.8, "upgraded": 1.0, "renewed": 1.2,
    "exceeded": 1.5,
}  # fmt: skip

# Formulas that carry no news: courtesy, and dates of effect ("effective immediately").
_COURTESY: list[tuple[tuple[str, ...], str]] = [
    (
        ("thank",),
        r"\bthank(?:s|\s+you)(?:\s+(?:so|very)\s+much)?\s+(?:in\s+advance|for\s+(?:your\s+)?"
        r"(?:patience|understanding|cooperation|co-operation|attention|consideration|time|e-?mail"
        r"|message|reply|response|note|inquiry|enquiry|order|continued\s+\w+|reaching\s+out"
        r"|getting\s+back\s+to\s+(?:me|us)))\b",
    ),
    (
        ("value", "appreciate"),
        r"\b(?:we|i)\s+(?:truly\s+|really\s+|greatly\s+)?(?:value|appreciate)\s+your\s+"
        r"(?:continued\s+|ongoing\s+)?(?:business|partnership|custom|trust|loyalty|patience"
        r"|understanding|cooperation|support)\b",
    ),
    (
        ("hope",),
        r"\b(?:i|we)\s+hope\s+(?:you|this|that|all|everything)\b[^.!?\n]{0,40}",
    ),
    (
        ("hesitate",),
        r"\b(?:do\s+not|don't|don’t)\s+hesitate\s+to\b",
    ),
    (
        ("free",),
        r"\bfeel\s+free\s+to\b",
    ),
    (
        ("like",),
        r"(?:\bwould|'d|’d)\s+like\s+to\b",
    ),
    (
        ("sure",),
        r"\bmake\s+sure\b",
    ),
    (
        ("forward",),
        r"\blook(?:ing)?\s+forward\s+to\s+(?:hearing\s+from\s+you|your\s+(?:reply|response|feedback|call))\b",
    ),
    (
        ("sorry",),
        r"\bsorry\s+for\s+the\s+(?:late|delayed|slow)\s+(?:reply|response)\b",
    ),
    (
        ("effective",),
        r"\beffective\s+(?:immediately|from|as\s+of|on|date|today)\b",
    ),
    (
        ("later",),
        r"\bno\s+later\s+than\b",
    ),
    (
        ("late",),
        r"\b(?:in|by|until|from|since|around)\s+(?:the\s+)?late\s+(?:january|february|march|april|may|june|july"
        r"|august|september|october|november|december|spring|summer|autumn|fall|winter|\d{4}s?)\b",
    ),
    (
        ("fire",),
        r"\bfire\s+(?:drills?|alarms?|exits?|safety|doors?|marshals?|evacuation)\b",
    ),
]
COURTESY = [(anchors, re.compile(pattern, re.IGNORECASE)) for anchors, pattern in _COURTESY]
# A sentence that is only a thank-you ("Thanks!", "Many thanks again."): a sign-off.
THANKS_ONLY = re.compile(
    r"^\W*(?:many\s+)?(?:thanks|thank\s+you|thx|cheers)"
    r"(?:\s+(?:so\s+much|very\s+much|a\s+lot|again|in\s+advance|all|everyone|team))*\W*$",
    re.IGNORECASE,
)

# --- metric directions: "prices rise" is bad, "sales rise" is good, "costs fall" is good.
_GOOD_METRIC = (
    r"sales|revenues?|profits?|margins?|turnover|bookings|orders|sign-?ups|subscribers"
    r"|attendance|satisfaction|income|earnings|leads|conversions?|budgets?|market\s+share|jobs?|headcount"
)
_BAD_METRIC = (
    r"prices?|pricing|rates?|fees?|costs?|rents?|tariffs?|surcharges?|charges|expenses|spend"
    r"|spending|overheads|tickets|complaints|errors|defects|churn|returns|delays|downtime|backlog"
)
_UP = (
    r"increase[sd]?|increasing|rise[sn]?|rose|rising|raise[sd]?|raising|go(?:es|ing)?\s+up"
    r"|went\s+up|gone\s+up|put(?:s|ting)?\s+up|adjust(?:s|ed|ing)?\s+upwards?|jump(?:s|ed)?|grow(?:s|n)?|grew|growing|climb(?:s|ed)?|higher"
    r"|hikes?|hiked|doubled?|soar(?:s|ed)?|up"
)
_DOWN = (
    r"decrease[sd]?|decreasing|fall(?:s|en)?|fell|falling|drop(?:s|ped)?|declin(?:e[sd]?|ing)"
    r"|lower(?:ed)?|cut(?:s|ting)?|shr[iau]nk|reduced?|reducing|slash(?:ed)?|down"
)
_GAP = r"(?:\s+[\w'’%$€£.,-]*\w[%]?){0,4}?"  # up to four words, no sentence punctuation
# "prices will rise", "sales grew", "costs are up"
_METRIC_FIRST = re.compile(
    rf"\b(?P<metric>{_GOOD_METRIC}|{_BAD_METRIC})\b{_GAP}\s+(?P<dir>{_UP}|{_DOWN})\b", re.IGNORECASE
)
# "raise prices", "higher freight costs", "fewer leads" ("up"/"down" excluded: "follow up on
# the pricing", "break down the costs" are not directions)
_DIR_FIRST = re.compile(
    rf"\b(?P<dir>(?!up\b|down\b)(?:{_UP}|{_DOWN}|more|fewer|less))\b{_GAP}\s+(?P<metric>{_GOOD_METRIC}|{_BAD_METRIC})\b",
    re.IGNORECASE,
)
_GOOD_RE = re.compile(rf"^(?:{_GOOD_METRIC})$", re.IGNORECASE)
_UP_RE = re.compile(rf"^(?:{_UP}|more)$", re.IGNORECASE)

# Placeholder tokens for cues and their valences (merged into VADER's lexicon).
METRIC_TOKENS = {"zzgoodup": 2.0, "zzgooddown": -2.0, "zzbadup": -2.0, "zzbaddown": 1.5}

# (token, valence, anchors, pattern): a pattern only runs when one of its anchors occurs in
# the lower-cased sentence (a substring test, much cheaper than the regex).
_CUES: list[tuple[str, float, tuple[str, ...], str]] = [
    ("zzoutofstock", -1.8, ("stock",), r"\bout\s+of\s+stock\b"),
    ("zzonhold", -1.2, ("hold",), r"\bon\s+hold\b"),
    (
        "zzbehind",
        -1.8,
        ("behind", "over", "off"),
        r"\bbehind\s+(?:schedule|plan)\b|\bover\s+(?:budget|plan)\b|\boff\s+track\b",
    ),
    (
        "zzpastdue",
        -1.8,
        ("due", "late"),
        r"\bpast\s+due\b|\blate\s+(?:fees?|payments?|deliver(?:y|ies)|charges?)\b",
    ),
    (
        "zzoutstanding",
        -1.8,
        ("outstanding",),
        r"\b(?:is|are|remains?|still)\s+outstanding\b"
        r"|\boutstanding\s+(?:balance|payments?|invoices?|amounts?|debts?|fees?)\b",
    ),
    (
        "zzstillnot",
        -1.5,
        ("still",),
        r"\bstill\s+(?:waiting|not|no|haven't|hasn't|have\s+not|has\s+not|pending|missing)\b",
    ),
    (
        "zznotdone",
        -1.5,
        ("not", "never", "n't", "n’t"),
        r"(?:\b(?:not|never)|n['’]t)\s+(?:yet\s+|been\s+|be\s+|have\s+|has\s+){0,2}(?:arrived|delivered"
        r"|received|shipped|ship|paid|resolved|fixed|working|responded|replied|answered|processed)\b",
    ),
    ("zzregret", -2.0, ("regret",), r"\bregret\s+to\s+(?:inform|announce|tell|say|let)\b"),
    ("zzcostus", -1.5, ("cost",), r"\bcost(?:s|ing)?\s+(?:us|me|them|the\s+company)\b"),
    (
        "zzmissed",
        -1.8,
        ("miss",),
        r"\bmiss(?:ed|es|ing)?\s+(?:the\s+|our\s+|another\s+|a\s+)?(?:deadline|target|forecast|milestone)s?\b",
    ),
    (
        "zznolonger",
        -1.2,
        ("longer",),
        r"\bno\s+longer\s+(?:offer|provid|support|includ|availab|accept|cover|stock|carr)\w*",
    ),
    ("zznotice", -1.5, ("notice",), r"\b(?:given|give|gave)\s+(?:us\s+)?notice\b"),
    (
        "zzcompetitor",
        -2.0,
        ("competitor", "rival"),
        r"\b(?:mov|switch|tak|go|went|gone|lost|los|chose|choos|award)\w*\s+(?:[\w-]+\s+){0,3}?"
        r"(?:to|with)\s+(?:a\s+|another\s+|our\s+)?(?:competitors?|rivals?)\b",
    ),
    (
        "zzdealwon",
        2.0,
        ("won", "win", "signed", "closed", "secured", "landed", "clinched"),
        r"(?<!\bthe\s)(?<!\ba\s)(?<!\ban\s)\b(?:won|win|wins|signed|closed|secured|landed|clinched)\s+(?:[\w-]+\s+){0,3}?"
        r"(?:deal|contract|tender|renewal|order|bid|agreement|business)s?\b",
    ),
    (
        "zztargethit",
        2.0,
        ("target", "goal", "forecast", "plan", "expectations", "quota", "milestone"),
        r"\b(?:beat|beats|exceeded|exceeds|surpassed|smashed|hit|met|reached|achieved)\s+(?:[\w-]+\s+){0,2}?"
        r"(?:targets?|goals?|forecast|plan|expectations|quota|milestones?)\b",
    ),
    ("zzahead", 1.8, ("ahead",), r"\bahead\s+of\s+(?:schedule|plan|time)\b"),
    (
        "zzontime",
        1.0,
        ("time", "schedule", "track", "budget"),
        r"\bon\s+(?:time|schedule|track|budget)\b|\b(?:under|within)\s+budget\b",
    ),
    (
        "zzresolved",
        1.5,
        ("resolved", "fixed", "solved", "sorted", "addressed"),
        r"\b(?:resolved|fixed|solved|sorted\s+out|addressed)\s+(?:[\w-]+\s+){0,3}?"
        r"(?:problem|issue|bug|error|fault|complaint|outage|glitch)s?\b",
    ),
    (
        "zznoissues",
        1.0,
        ("no ", "zero", "without"),
        r"\b(?:no|zero|without(?:\s+any)?)\s+(?:[\w-]+\s+)?(?:issues|problems|errors|downtime"
        r"|complaints|delays|defects|bugs|incidents|outages)\b",
    ),
    (
        "zzrecord",
        1.8,
        ("record",),
        r"\brecord\s+(?:quarter|year|month|week|sales|revenue|results|attendance|profits?|high)\b",
    ),
]
CUES = [(token, anchors, re.compile(pattern, re.IGNORECASE)) for token, _, anchors, pattern in _CUES]
TOKENS: dict[str, float] = {token: valence for token, valence, _, _ in _CUES} | METRIC_TOKENS
# Stems of every metric word: the direction rules only run when one occurs.
_METRIC_ANCHORS = (
    "sale", "revenue", "profit", "margin", "turnover", "booking", "order", "sign", "subscriber",
    "attendance", "satisfaction", "income", "earning", "lead", "conversion", "budget", "market",
    "job", "headcount", "pric", "rate", "fee", "cost", "rent", "tariff", "surcharge", "charge",
    "expense", "spend", "overhead", "ticket", "complaint", "error", "defect", "churn", "return",
    "delay", "downtime", "backlog",
)  # fmt: skip


def _metric(match: re.Match[str]) -> str:
    good = bool(_GOOD_RE.match(" ".join(match.group("metric").split())))
    up = bool(_UP_RE.match(" ".join(match.group("dir").split())))
    return f" zz{'good' if good else 'bad'}{'up' if up else 'down'} "


def _replace(token: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: f" {token} "


def prepare(sentence: str) -> str:
    """`sentence` as VADER should read it: courtesy removed, business cues as tokens."""
    if THANKS_ONLY.match(sentence):
        return ""
    text = sentence
    lower = text.lower()
    for anchors, pattern in COURTESY:
        if any(a in lower for a in anchors):
            text = pattern.sub(" ", text)
    for token, anchors, pattern in CUES:
        if any(a in lower for a in anchors):
            text = pattern.sub(_replace(token), text)
    if any(a in lower for a in _METRIC_ANCHORS):
        text = _METRIC_FIRST.sub(_metric, text)
        text = _DIR_FIRST.sub(_metric, text)
    return text


def adapt_lexicon(lexicon: dict[str, float]) -> None:
    """Merge the business valences and cue tokens into a VADER instance's lexicon."""
    for word in NEUTRAL_WORDS:
        lexicon.pop(word, None)
    lexicon.update(WORDS)
    lexicon.update(TOKENS)

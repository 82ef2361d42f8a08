"""Who or what a capitalised name is, for the rule-based entities (no model, no download).

Why: the LLM `entities` task labels PERSON, ORG, LOCATION, DATE, MONEY, PRODUCT or OTHER
(backend/templates.toml), and the offline provider must answer in the same terms, so a
sheet's column means the same whatever the provider. A run of capitalised words alone
cannot say "person or company", so the rules use the evidence an e-mail offers:

- context: the name after a greeting ("Hi Sarah,", "Dear Mr Patel"), in a sign-off
  ("Best, Tom", "Regards,\\nSarah Lee"), in a From:/To: header, or as a transcript's
  speaker (two turns or more) is a PERSON wherever it appears in the text;
- shape: a title ("Dr.", "Ms") makes a PERSON; a company suffix ("Corp.", "GmbH") or an
  organisation word ("Bank", "Traders", "University") an ORG; a street word or a known
  place a LOCATION; a common first name ("David Chen") a PERSON;
- anything else capitalised is OTHER (a name, but we cannot tell what kind), and job
  titles ("Finance Manager") or departments ("Customer Service") are no entity at all.

The word lists are short on purpose: common cases, not an encyclopaedia.
"""

from __future__ import annotations

import re
from collections import Counter

# fmt: off
FIRST_NAMES = frozenset("""
aaron adam adrian ahmed aisha alan albert alex alexander alexandra ali alice alicia alison amanda amir
amy ana andrea andreas andrew angela anita ann anna anne annie anthony antonio arjun ashley barbara
beatrice ben benjamin bernard beth bob brian bruce carl carla carlos carmen carol caroline catherine
charles charlie charlotte chen chris christian christina christine claire clara colin craig dan
daniel david deborah denise dennis diana diego dmitri dominic donald dorothy douglas edward elena
elizabeth ella emily emma eric erik eva fatima felix fernando fiona francesca francis frederik
gabriel gary george georgia gerald giulia grace greg gregory hannah hans hassan heather helen
henry hiroshi holly hugo ian igor irene isabel isabella ivan jack jacob james jamie jan jane janet
jason javier jean jeff jennifer jessica jim joanna joe johan john jonas jonathan jorge jose joseph
josh joshua juan julia julian julie justin karen karl kate katherine kathy keith kelly ken kenji
kevin kim klaus kumar laura lauren lena leo li lin linda lisa liam lucas lucy luis luke lukas
magnus manuel marco marcus margaret maria marie mario marion mark martin mary matthew max maya meg
megan mehmet melissa michael michelle miguel mike ming mohammed monica nadia natalie nathan neil
nicholas nicola nicole nina noah nora olga oliver olivia omar oscar pablo patricia patrick paul
paula pedro peter philip pierre priya rachel rafael raj rajesh ravi rebecca richard rita rob
robert roberto robin roger ryan sam samantha samuel sandra sara sarah scott sean sergei simon
sofia sophia sophie stefan stephanie stephen steve steven sue susan tanya thomas tim timothy tom
tony tyler valentina vanessa victor victoria vincent wei william yuki yusuf zoe
""".split())
# First names that are also ordinary words or months: only taken as names with context.
AMBIGUOUS_NAMES = frozenset({"will", "may", "mark", "bill", "grace", "june", "april", "frank", "rose",
                             "max", "jack", "sue", "rob", "art", "pat", "hope", "faith", "kim", "li"})
PLACES = frozenset("""
africa america amsterdam argentina asia athens atlanta australia austria bangalore bangkok barcelona
beijing belgium berlin bogota boston brazil brussels budapest buenos cairo california canada
chicago chile china cologne copenhagen dallas delhi denmark dubai dublin edinburgh egypt england
europe finland florence france frankfurt geneva germany glasgow greece hamburg helsinki
hong india indonesia ireland israel istanbul italy jakarta japan kenya korea lagos leeds lisbon
london los lyon madrid malaysia manchester marseille melbourne mexico miami milan montreal moscow
mumbai munich nairobi netherlands nigeria norway oslo ottawa paris philippines poland portugal
prague rome rotterdam russia scotland seattle seoul shanghai shenzhen singapore spain stockholm
stuttgart sweden switzerland sydney taiwan texas thailand tokyo toronto turkey ukraine vancouver
vienna vietnam wales warsaw washington zurich
""".split())
# Found by a pattern of their own: "New" is too common a word to start a name.
MULTI_WORD_PLACES = frozenset({"new york", "san francisco", "hong kong", "los angeles", "united states",
                               "united kingdom", "south africa", "new zealand", "buenos aires",
                               "sao paulo", "tel aviv", "abu dhabi", "kuala lumpur", "mexico city"})
STREET_WORDS = frozenset({"street", "st", "road", "rd", "avenue", "ave", "lane", "square", "boulevard",
                          "blvd", "drive", "way", "park", "place", "plaza"})
COMPANY_SUFFIXES = frozenset({"inc", "ltd", "co", "corp", "llc", "plc", "gmbh", "ag", "sa", "bv", "nv",
                              "llp", "pty", "srl", "spa", "kg", "ab", "oy", "limited", "corporation",
                              "incorporated", "company"})
ORG_WORDS = frozenset({"bank", "group", "holdings", "traders", "trading", "partners", "solutions",
                       "systems", "technologies", "technology", "software", "labs", "university",
                       "college", "institute", "council", "ministry", "agency", "association",
                       "foundation", "industries", "consulting", "logistics", "airlines", "airways",
                       "motors", "pharma", "pharmaceuticals", "insurance", "capital", "ventures",
                       "media", "energy", "electric", "foods", "networks", "services", "enterprises",
                       "communications", "telecom", "hospital", "clinic", "school", "authority",
                       "commission", "committee", "board", "office", "department", "federation"})
ROLE_WORDS = frozenset({"manager", "director", "officer", "head", "lead", "engineer", "assistant",
                        "president", "chair", "chairman", "analyst", "coordinator", "specialist",
                        "consultant", "administrator", "executive", "vp", "ceo", "cfo", "cto", "coo",
                        "supervisor", "representative", "associate", "intern", "secretary"})
# A sign-off "name" that is a team, not a person: "Regards,\nProcurement".
GROUP_WORDS = frozenset({"team", "all", "everyone", "everybody", "there", "folks", "guys", "colleagues",
                         "sir", "madam", "procurement", "facilities", "hr", "finance", "accounts",
                         "billing", "support", "sales", "marketing", "operations", "logistics", "legal",
                         "service", "services", "desk", "management", "it", "admin", "reception",
                         "security", "payroll", "customer", "customers", "department", "receivable",
                         "payable", "helpdesk", "partners", "friends", "ladies", "gentlemen", "the"})
TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "dame", "mx"})
# fmt: on

_NAME = r"[A-Z][\w'\u2019-]*\.?"
_PERSON = rf"(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof|Mx)\.?[ \t]+)?{_NAME}(?:[ \t]+{_NAME}){{0,2}}"
_GREETING = re.compile(
    rf"^[ \t]*(?i:hi|hello|hey|hiya|dear|morning|good\s+(?:morning|afternoon|evening))[ \t]+"
    rf"(?P<names>{_PERSON}(?:[ \t]*(?:,|and|&)[ \t]*{_PERSON})*)(?=[ \t]*(?:[,:!.]|$))",
    re.MULTILINE,
)
# One character class per gap (never "[ \t]*[,.!]*[ \t]*"): a line of 4,000 spaces must not
# make the regex try every way of sharing them out.
_SIGN_OFF = re.compile(
    r"^[ \t]*(?i:best(?:\s+regards|\s+wishes)?|kind\s+regards|warm(?:est)?\s+regards|regards|cheers"
    r"|thanks(?:\s+again|\s+a\s+lot)?|thank\s+you|many\s+thanks|sincerely|yours(?:\s+sincerely"
    r"|\s+truly|\s+faithfully)?|all\s+the\s+best|take\s+care|talk\s+soon)[ \t,.!]*"
    rf"(?:(?:[-\u2013\u2014][ \t]*)?(?P<inline>{_PERSON})[ \t,.!]*)?$"
    rf"(?:\n(?:[ \t]*\n)*[ \t]*(?P<below>{_PERSON})[ \t]*$)?",
    re.MULTILINE,
)
_HEADER = re.compile(rf"^[ \t]*(?i:from|to|cc)[ \t]*:[ \t]*(?P<names>{_PERSON})[ \t]*<", re.MULTILINE)
_SPEAKER = re.compile(
    r"^[ \t]*(?P<names>[A-Z][\w'\u2019-]*(?:[ \t]+[A-Z][\w'\u2019-]*)?)[ \t]*:[ \t]+\S", re.MULTILINE
)
_HEADER_WORDS = frozenset({"subject", "from", "to", "cc", "bcc", "date", "sent", "re", "fw", "fwd", "note"})
_SPLIT_NAMES = re.compile(r"\s*(?:,|\band\b|&)\s*")


def _is_person_name(name: str) -> bool:
    """A plausible person's name: no team words, not all caps ("HR"), at most 3 words."""
    words = [w.rstrip(".").lower() for w in name.split()]
    banned = GROUP_WORDS | ROLE_WORDS | ORG_WORDS | COMPANY_SUFFIXES
    if not words or any(w in banned for w in words):
        return False
    return not (len(name) > 1 and name.replace(" ", "").replace(".", "").isupper())


def context_people(text: str) -> set[str]:
    """Names the e-mail itself marks as people: greetings, sign-offs, headers, speakers.

    Returned as written and, for full names, also the first name ("Sarah Lee", "Sarah"),
    so a later "Sarah will call" is found too. Titles are kept off the first name.
    """
    found: list[str] = []
    for match in _GREETING.finditer(text):
        found.extend(_SPLIT_NAMES.split(match.group("names")))
    for match in _SIGN_OFF.finditer(text):
        found.extend(n for n in (match.group("inline"), match.group("below")) if n)
    for match in _HEADER.finditer(text):
        found.append(match.group("names"))
    speakers = Counter(m.group("names") for m in _SPEAKER.finditer(text))
    found.extend(s for s, n in speakers.items() if n >= 2 and s.lower() not in _HEADER_WORDS)
    people: set[str] = set()
    for raw in found:
        name = " ".join(raw.split()).rstrip(",.!")
        if not name or not _is_person_name(name):
            continue
        people.add(name)
        words = name.split()
        if words[0].rstrip(".").lower() in TITLES:
            words = words[1:]
        if words and len(words[0].rstrip(".")) > 1:
            people.add(words[0])
    return people


def classify(words: list[str], people: set[str]) -> str | None:
    """The label of a name (its words as written), or None when it is not an entity."""
    lower = [w.rstrip(".").lower() for w in words]
    name = " ".join(words)
    if name in people or name.rstrip(".") in people:
        return "PERSON"
    if lower[-1] in COMPANY_SUFFIXES or any(w in ORG_WORDS for w in lower[1:]):
        return "ORG"
    if any(w in ROLE_WORDS or w in GROUP_WORDS for w in lower):
        return None  # "Finance Manager", "Customer Service"
    if lower[0] in TITLES and len(words) > 1:
        return "PERSON"
    if " ".join(lower) in MULTI_WORD_PLACES or (len(words) > 1 and lower[-1] in STREET_WORDS):
        return "LOCATION"
    if len(words) == 1:
        if lower[0] in PLACES:
            return "LOCATION"
        if lower[0] in FIRST_NAMES and lower[0] not in AMBIGUOUS_NAMES:
            return "PERSON"
        return None  # one capitalised word is usually a sentence start
    if words[0] in people or (lower[0] in FIRST_NAMES and len(words) <= 3):
        return "PERSON"
    if all(w in PLACES for w in lower):
        return "LOCATION"
    return "OTHER"

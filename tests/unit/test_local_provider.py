"""The offline `local` provider: what each task returns, what it refuses, what it survives."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from backend.errors import UnsupportedByProvider
from backend.providers.base import Job
from backend.providers.emailtext import clean_email, split_sentences
from backend.providers.entities import EntityExtractor
from backend.providers.local import LocalProvider
from backend.providers.sentiment import WHOLE_TEXT_CHARS, BusinessSentiment
from backend.providers.textrank import candidate_sentences, summarize

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = (DATA / "sample_email.txt").read_text(encoding="utf-8")
ANGRY = (DATA / "angry_email.txt").read_text(encoding="utf-8")
TRANSCRIPT = (DATA / "meeting_transcript.txt").read_text(encoding="utf-8")

THANK_YOU = (
    "Dear Priya,\n\nThank you so much for organising the workshop last week. "
    "The sessions were excellent and the whole team loved the hands-on exercises. "
    "We really appreciate the effort you put into it.\n\nKind regards,\nSam"
)
MIXED = (
    "I absolutely love the new dashboard, it is fantastic and so easy to use. "
    "But the export feature is broken, and the awful crashes are driving me crazy."
)


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider(ner_model="none")


def run(provider: LocalProvider, task: str, text: str) -> Any:
    return provider.complete(Job(task=task, text=text), timeout=5).result


# --- summary ----------------------------------------------------------------------------


def test_summary_copies_sentences_and_drops_email_noise(provider: LocalProvider) -> None:
    completion = provider.complete(Job(task="summary", text=SAMPLE), timeout=5)
    summary = completion.result
    assert completion.text == summary
    parts = split_sentences(summary)
    assert 1 <= len(parts) <= 2
    for part in parts:
        assert part in SAMPLE
    body_words = len(clean_email(SAMPLE).text.split())
    assert len(summary.split()) <= 0.35 * body_words
    for noise in ("Subject", "From:", "Hi team", "Best regards", "Maria Lopez", "555-0198"):
        assert noise not in summary
    # The renewal is what the mail is about (the subject says so): it must be picked.
    assert "Northwind Traders renewal is the biggest open item" in summary


def test_summary_sentences_come_back_in_input_order(provider: LocalProvider) -> None:
    parts = split_sentences(run(provider, "summary", SAMPLE))
    positions = [SAMPLE.index(part) for part in parts]
    assert positions == sorted(positions)


def test_summary_of_meeting_transcript_keeps_speaker_lines(provider: LocalProvider) -> None:
    summary = run(provider, "summary", TRANSCRIPT)
    lines = TRANSCRIPT.splitlines()
    picked = re.findall(r"(?:Alice|Bob|Carol|Dave): .+?(?= (?:Alice|Bob|Carol|Dave): |$)", summary)
    assert len(picked) == 2
    assert all(utterance in lines for utterance in picked)
    assert "15 April" in summary


def test_a_lone_label_line_in_an_email_is_still_split() -> None:
    text = (
        "Update: We shipped the release on time. The team fixed every open bug before launch. "
        "Support tickets dropped by half. Marketing starts the campaign on Monday."
    )
    sentences = [s.text for s in candidate_sentences(clean_email(text))]
    assert sentences[:2] == [
        "Update: We shipped the release on time.",
        "The team fixed every open bug before launch.",
    ]
    assert summarize(text) in sentences  # 35 % of 26 words leaves room for one sentence


def test_summary_respects_max_sentences() -> None:
    assert (
        len(
            split_sentences(
                LocalProvider(max_summary_sentences=1)
                .complete(Job(task="summary", text=SAMPLE), timeout=5)
                .text
            )
        )
        == 1
    )


def test_fragments_lose_to_real_sentences() -> None:
    # "Budget review." overlaps with everything, so bare TextRank would pick it.
    text = (
        "Budget review. The budget review for marketing is late. "
        "The sales budget review is done. Lunch will be served at noon in the cafeteria."
    )
    assert summarize(text, max_sentences=1) == "The budget review for marketing is late."


def test_short_text_comes_back_cleaned_whole(provider: LocalProvider) -> None:
    text = "Hi Anna,\n\nThe invoice is attached. Payment is due Friday.\n\nThanks,\nBob"
    assert run(provider, "summary", text) == "The invoice is attached. Payment is due Friday."


def test_reply_thread_and_signature_are_cut() -> None:
    text = (
        "Hello,\nWe approve the budget for the new office furniture.\n"
        "The order can go out this week.\n\nCheers, Bob\n\n"
        "On Mon, 4 Mar 2024 at 10:00, Ann <ann@example.com> wrote:\n"
        "> Can we order the furniture?\n> Ann\n"
    )
    cleaned = clean_email(text).text
    assert cleaned == ("We approve the budget for the new office furniture.\nThe order can go out this week.")


def test_inline_quoted_lines_are_dropped() -> None:
    text = "> Can we move the launch?\nYes, the launch moves to May.\n> And the budget?\nUnchanged."
    assert clean_email(text).text == "Yes, the launch moves to May.\nUnchanged."


def test_wrapped_lines_become_one_sentence() -> None:
    text = (
        "The quarterly report shows that revenue from the enterprise segment grew\n"
        "faster than expected. Costs stayed flat. Hiring is paused. Travel is frozen."
    )
    first = candidate_sentences(clean_email(text))[0].text
    assert first == (
        "The quarterly report shows that revenue from the enterprise segment grew faster than expected."
    )


# --- keywords ---------------------------------------------------------------------------


def test_keywords_are_relevant_and_unique(provider: LocalProvider) -> None:
    completion = provider.complete(Job(task="keywords", text=SAMPLE), timeout=5)
    keywords = completion.result
    assert isinstance(keywords, list) and 1 <= len(keywords) <= 8
    assert completion.text == ", ".join(keywords)
    joined = " ".join(keywords).lower()
    assert "northwind" in joined and "budget" in joined and "renewal" in joined
    assert len({k.casefold() for k in keywords}) == len(keywords)
    assert not any("regards" in k.lower() or "maria" in k.lower() for k in keywords)


def test_transcript_keywords_ignore_speaker_names(provider: LocalProvider) -> None:
    keywords = [k.lower() for k in run(provider, "keywords", TRANSCRIPT)]
    assert "refund" in " ".join(keywords)
    assert not {"alice", "bob", "carol", "dave"} & set(keywords)


def test_keywords_do_not_repeat_better_ranked_ones(provider: LocalProvider) -> None:
    seen: set[str] = set()
    for keyword in run(provider, "keywords", SAMPLE):
        words = set(keyword.casefold().split())
        assert not words <= seen, f"{keyword!r} only repeats earlier keywords"
        seen |= words


def test_keyword_count_is_honoured() -> None:
    assert (
        len(LocalProvider(keyword_count=3).complete(Job(task="keywords", text=SAMPLE), timeout=5).result) == 3
    )


# --- sentiment --------------------------------------------------------------------------


def test_angry_email_is_negative(provider: LocalProvider) -> None:
    completion = provider.complete(Job(task="sentiment", text=ANGRY), timeout=5)
    assert completion.result["label"] == "negative"
    assert completion.result["score"] <= -0.5
    assert completion.text == f"negative ({completion.result['score']:.2f})"


def test_thank_you_note_is_positive(provider: LocalProvider) -> None:
    result = run(provider, "sentiment", THANK_YOU)
    assert result["label"] == "positive" and result["score"] >= 0.5


def test_strong_praise_and_strong_complaint_is_mixed(provider: LocalProvider) -> None:
    assert run(provider, "sentiment", MIXED)["label"] == "mixed"
    two_praises_one_complaint = (
        "I love this product, it is wonderful. The support team was great and helpful. "
        "But the delivery was a terrible disaster."
    )
    assert run(provider, "sentiment", two_praises_one_complaint)["label"] == "mixed"


def test_one_fond_sentence_does_not_make_an_angry_mail_mixed(provider: LocalProvider) -> None:
    fond = "I loved your shop for years and it was wonderful. "
    text = ANGRY.replace("This is completely", fond + "This is completely")
    assert run(provider, "sentiment", text)["label"] == "negative"


def test_polite_sign_off_does_not_make_a_mail_positive(provider: LocalProvider) -> None:
    text = "Hi,\nThe meeting moved to room 4B on the second floor.\n\nThanks a lot,\nBest wishes\nAnn"
    assert run(provider, "sentiment", text)["label"] == "neutral"


def test_plain_statement_is_neutral(provider: LocalProvider) -> None:
    assert run(provider, "sentiment", "The meeting is on the third floor at 3pm.") == {
        "label": "neutral",
        "score": 0.0,
    }


def test_long_text_sentiment_matches_whole_text_scoring(provider: LocalProvider) -> None:
    """Over WHOLE_TEXT_CHARS the text is scored in pieces; the total must match one whole pass."""
    filler = (
        "The report covers the second quarter. The warehouse is in the north district. "
        "Shipments leave on Tuesdays and Thursdays. The new forklift arrived last month. "
    )
    mild = [
        "The delay was a bit annoying.",
        "The staff were helpful.",
        "Some boxes were damaged.",
        "Overall the process is okay.",
    ]
    text = " ".join(filler + mild[i % 4] for i in range(12))
    assert len(text) > WHOLE_TEXT_CHARS
    expected = BusinessSentiment().score(text, whole_text_chars=10 * len(text))
    result = run(provider, "sentiment", text)
    assert abs(result["score"] - expected["score"]) < 0.01
    assert result["score"] < 0 and result["label"] == expected["label"]


# --- entities ---------------------------------------------------------------------------


def test_entities_find_money_dates_email_and_names(provider: LocalProvider) -> None:
    completion = provider.complete(Job(task="entities", text=SAMPLE), timeout=5)
    found = {(e["text"], e["label"]) for e in completion.result}
    expected = {
        ("$48,250.00", "MONEY"),
        ("€14,300", "MONEY"),
        ("$1.2 million", "MONEY"),
        ("31 March 2024", "DATE"),
        ("2024-03-07", "DATE"),
        ("next Tuesday", "DATE"),
        ("2pm", "DATE"),
        ("12%", "OTHER"),
        ("maria.lopez@contoso.com", "OTHER"),
        ("https://www.contoso.com", "OTHER"),
        ("+1 (425) 555-0198", "OTHER"),
        ("Maria Lopez", "PERSON"),
        ("David Chen", "PERSON"),
        ("Northwind Traders", "ORG"),
        ("Contoso Ltd", "ORG"),
        ("Berlin", "LOCATION"),
    }
    assert expected <= found
    texts = {e["text"] for e in completion.result}
    assert "Budget Review" not in texts and "Finance Manager" not in texts
    assert "Maria" not in texts  # the first name of Maria Lopez, already listed
    assert "David Chen (PERSON)" in completion.text.split("; ")


def test_entity_labels_are_the_llm_tasks_labels(provider: LocalProvider) -> None:
    """Every label is one the LLM `entities` template asks for, whatever the input."""
    allowed = {"PERSON", "ORG", "LOCATION", "DATE", "MONEY", "PRODUCT", "OTHER"}
    for text in (SAMPLE, ANGRY, TRANSCRIPT, THANK_YOU, *AWKWARD.values()):
        assert {e["label"] for e in run(provider, "entities", text)} <= allowed


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Pay €300 now.", ("€300", "MONEY")),
        ("A deal of 1.2 million USD.", ("1.2 million USD", "MONEY")),
        ("Fees are 300 EUR.", ("300 EUR", "MONEY")),
        ("Due 5 March 2024.", ("5 March 2024", "DATE")),
        ("Due March 5th.", ("March 5th", "DATE")),
        ("Due 03/05/2024.", ("03/05/2024", "DATE")),
        ("See you Monday.", ("Monday", "DATE")),
        ("Call at 14:30 today.", ("14:30", "DATE")),
        ("Growth was 4.5 percent.", ("4.5 percent", "OTHER")),
        ("Talk to Dr. Jane Smith soon.", ("Dr. Jane Smith", "PERSON")),
        ("We signed with Acme Corp. last week.", ("Acme Corp.", "ORG")),
        ("Globex GmbH and Initech LLC bid.", ("Globex GmbH", "ORG")),
        ("Globex GmbH and Initech LLC bid.", ("Initech LLC", "ORG")),
        ("Our office in New York opens.", ("New York", "LOCATION")),
        ("Ask Lena about it.", ("Lena", "PERSON")),
    ],
)
def test_entity_rules(provider: LocalProvider, text: str, entity: tuple[str, str]) -> None:
    assert entity in {(e["text"], e["label"]) for e in run(provider, "entities", text)}


def test_entities_skip_greeting_words_shouting_and_sentence_starts(provider: LocalProvider) -> None:
    text = "Hi Team,\nThe Board met. I AM VERY ANGRY ABOUT THIS.\nBest Regards,\nAnna"
    assert run(provider, "entities", text) == [{"text": "Anna", "label": "PERSON"}]


@pytest.mark.parametrize(
    ("text", "people"),
    [
        ("Hi Sarah,\nThe report is late.\nBest, Tom", ["Sarah", "Tom"]),
        ("Dear Tom\nPlease call me.\nRegards,\nSarah Lee", ["Tom", "Sarah Lee"]),
        ("Hi Sarah and Tom, the plan is ready. Cheers, Ravi", ["Sarah", "Tom", "Ravi"]),
        ("Dear Mr Patel,\nYour order is ready.\nSincerely,\nCustomer Service", ["Mr Patel"]),
        ("Hello Kwame,\nOlu will bring the slides.\nThanks,\nOlu", ["Kwame", "Olu"]),
        ("Kind regards,\nProcurement", []),
    ],
)
def test_names_in_greetings_and_sign_offs_are_people(
    provider: LocalProvider, text: str, people: list[str]
) -> None:
    found = run(provider, "entities", text)
    assert [e["text"] for e in found if e["label"] == "PERSON"] == people
    assert all(e["label"] != "PERSON" or e["text"] in people for e in found)


def test_title_case_subject_is_not_a_name(provider: LocalProvider) -> None:
    text = "Subject: Quarterly Budget Review\n\nPlease read the Budget Review before Friday."
    names = [e for e in run(provider, "entities", text) if e["label"] == "OTHER"]
    assert names == [{"text": "Budget Review", "label": "OTHER"}]  # body only


def test_entities_are_deduplicated_in_order(provider: LocalProvider) -> None:
    text = "Email bob@example.com or BOB@example.com; pay $5 then $5 again."
    assert run(provider, "entities", text) == [
        {"text": "bob@example.com", "label": "OTHER"},
        {"text": "$5", "label": "MONEY"},
    ]


def test_spacy_entities_merge_with_money_and_email_rules() -> None:
    """With a (fake) spaCy pipeline its labels are used (in the task's set); rules keep money."""
    text = "Hi Sarah,\nAnn Lee of Acme paid €300 to ann@acme.com on Friday morning in Paris."

    def fake_nlp(doc_text: str) -> SimpleNamespace:
        def ent(value: str, label: str) -> SimpleNamespace:
            start = doc_text.index(value)
            return SimpleNamespace(start_char=start, end_char=start + len(value), label_=label)

        # The small model tends to split money and to call "300" a CARDINAL.
        return SimpleNamespace(
            ents=[
                ent("Ann Lee", "PERSON"),
                ent("Acme", "ORG"),
                ent("Sarah", "ORG"),  # the small model often gets greetings wrong
                ent("300", "CARDINAL"),
                ent("Friday morning", "TIME"),  # spaCy, not the DATE rule, decides here
                ent("Paris", "GPE"),
            ]
        )

    found = EntityExtractor(nlp=fake_nlp).extract(text)
    assert found == [
        {"text": "Sarah", "label": "PERSON"},
        {"text": "Ann Lee", "label": "PERSON"},
        {"text": "Acme", "label": "ORG"},
        {"text": "€300", "label": "MONEY"},
        {"text": "ann@acme.com", "label": "OTHER"},
        {"text": "Friday morning", "label": "DATE"},
        {"text": "Paris", "label": "LOCATION"},
    ]


def test_missing_spacy_model_falls_back_to_rules() -> None:
    extractor = EntityExtractor(model="no_such_model_xyz")
    assert {"text": "$5", "label": "MONEY"} in extractor.extract("It costs $5.")


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["translation", "custom", "poem"])
def test_llm_only_tasks_are_refused_with_400(provider: LocalProvider, task: str) -> None:
    with pytest.raises(UnsupportedByProvider) as caught:
        provider.complete(Job(task=task, text="Bonjour", language="en"), timeout=5)
    assert caught.value.status == 400
    assert caught.value.code == "unsupported_by_provider"
    message = caught.value.message
    assert task in message
    assert "OPENAI_API_KEY" in message and "ANTHROPIC_API_KEY" in message
    assert "LLM_PROVIDER" in message


def test_identity_and_capabilities(provider: LocalProvider) -> None:
    assert LocalProvider.name == "local"
    assert provider.model == "local-extractive"
    assert set(LocalProvider.supported_tasks or ()) == {"summary", "keywords", "sentiment", "entities"}
    assert provider.complete(Job(task="summary", text=SAMPLE), timeout=5).model == ("local-extractive")


# --- usage ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["summary", "keywords", "sentiment", "entities"])
def test_usage_counts_words(provider: LocalProvider, task: str) -> None:
    completion = provider.complete(Job(task=task, text=SAMPLE), timeout=5)
    assert completion.usage.input_tokens == len(SAMPLE.split())
    assert completion.usage.output_tokens == len(completion.text.split())
    assert completion.usage.output_tokens > 0


# --- robustness -------------------------------------------------------------------------

AWKWARD = {
    "empty": "",
    "whitespace": "  \n\t \n",
    "greeting only": "Hello",
    "single word": "invoice",
    "no punctuation": " ".join(["budget review for the northwind account"] * 40),
    "emoji": "😀🎉👍 great job team 🚀🚀🚀",
    "only emoji": "😡" * 3000,
    "rtl": "مرحبا بكم في الاجتماع. شكرا لكم على الحضور. سنناقش الميزانية غدا.",
    "nul bytes": "Budget\x00 review\x00 on Friday.\x00\x00 Please\x00 confirm.",
    "cjk": "今日は会議があります。明日は休みです。来週は出張です。再来週は休暇です。",
    "punctuation": "!!! ??? ... --- >>>",
    "only headers": "Subject: hi\nFrom: a@b.com\nTo: c@d.com",
    "long": SAMPLE * 40,
    "dots": "." * 5000 + "x",
    "newlines": "\n" * 20000,
}


@pytest.mark.parametrize("name", AWKWARD)
@pytest.mark.parametrize("task", ["summary", "keywords", "sentiment", "entities"])
def test_awkward_input_never_raises(provider: LocalProvider, name: str, task: str) -> None:
    completion = provider.complete(Job(task=task, text=AWKWARD[name]), timeout=5)
    result = completion.result
    if task == "summary":
        assert isinstance(result, str)
        assert bool(result) == bool(AWKWARD[name].replace("\x00", "").strip())
    elif task == "keywords":
        assert isinstance(result, list) and all(isinstance(k, str) and k for k in result)
    elif task == "sentiment":
        assert result["label"] in {"positive", "negative", "neutral", "mixed"}
        assert -1.0 <= result["score"] <= 1.0
    else:
        assert all(set(e) == {"text", "label"} for e in result)


def test_awkward_inputs_get_sensible_values(provider: LocalProvider) -> None:
    assert run(provider, "summary", "Hello") == "Hello"  # fallback: nothing left after cleanup
    assert run(provider, "summary", "Subject: hi\nFrom: a@b.com") == "Subject: hi\nFrom: a@b.com"
    assert run(provider, "keywords", "") == []
    assert run(provider, "sentiment", "") == {"label": "neutral", "score": 0.0}
    assert run(provider, "entities", "") == []
    assert "\x00" not in run(provider, "summary", AWKWARD["nul bytes"])
    no_punctuation = run(provider, "summary", AWKWARD["no punctuation"])
    assert no_punctuation.startswith("Budget review")  # capitalised, otherwise copied
    assert no_punctuation[0].lower() + no_punctuation[1:] in AWKWARD["no punctuation"]
    assert len(no_punctuation.split()) <= 3 * 40  # three windows of at most 40 words


def test_fallback_summary_is_capped_at_300_characters(provider: LocalProvider) -> None:
    assert run(provider, "summary", "😀" * 3000) == "😀" * 300


def test_a_shorter_keyword_list_is_the_head_of_the_default_one() -> None:
    provider = LocalProvider()
    text = "Sarah from Acme Corp asked about invoice 1042 for the Berlin warehouse expansion. Thanks, Tom"
    full = provider.keywords(text)
    assert provider.keywords(text, 3) == full[:3]
    assert len(provider.keywords(text, 12)) >= len(full)

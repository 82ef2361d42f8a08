"""Task templates (built-in and PROMPT_TEMPLATES) and tolerant parsing of model answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.errors import ProviderError
from backend.schemas import BUILTIN_TASKS
from backend.tasks import TemplateError, load_templates, parse_answer, text_form


def write(tmp_path: Path, text: str, name: str = "templates.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ loading


def test_builtin_templates_cover_every_builtin_task() -> None:
    templates = load_templates()
    assert set(BUILTIN_TASKS) <= set(templates)
    assert templates["summary"].result == "text"
    assert templates["keywords"].result == "string_list"
    assert templates["sentiment"].result == "sentiment"
    assert templates["entities"].result == "entity_list"
    assert templates["translation"].result == "text"
    assert all(t.version >= 1 for t in templates.values())


def test_render_fills_placeholders() -> None:
    template = load_templates()["translation"]
    job = template.render("Guten Tag {not a placeholder}", "fr", "email", 256)
    assert "fr" in job.system
    assert job.user == "Guten Tag {not a placeholder}"  # user text is never formatted
    assert job.task == "translation"
    assert job.language == "fr"
    assert job.max_output_tokens == 256
    summary = load_templates()["summary"].render("text", None, None, 100)
    assert "other" in summary.system  # default source


def test_override_replaces_a_builtin_task_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, '[summary]\nversion = 2\nsystem = "Summarise in one line for {source}."\n')
    templates = load_templates(path)
    assert templates["summary"].version == 2
    assert templates["summary"].system == "Summarise in one line for {source}."
    assert templates["summary"].user == "{text}"  # inherited from the built-in
    assert templates["summary"].result == "text"
    assert templates["keywords"] == load_templates()["keywords"]


def test_override_adds_a_task(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[tone]\nresult = "string_list"\nsystem = "List the tones."\nuser = "Text: {text}"\n',
    )
    templates = load_templates(path)
    assert templates["tone"].result == "string_list"
    assert templates["tone"].version == 1
    assert templates["tone"].render("hi", None, None, 10).user == "Text: hi"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("this is = not [ toml", "cannot read"),
        ("[tone]\nsystem = 5\n", "string"),
        ('[tone]\nsystem = "x"\nuser = "no placeholder"\n', "{text}"),
        ('[tone]\nsystem = "x"\nresult = "html"\n', "result"),
        ('[tone]\nsystem = "x"\nversion = "two"\n', "version"),
        ('[tone]\nsystem = "Hello {unknown}"\n', "placeholder"),
        ('[tone]\nsystem = "Hello {"\n', "placeholder"),
        ('["Bad Name"]\nsystem = "x"\n', "template name"),
        ('tone = "not a table"\n', "table"),
        ("[tone]\n", "string"),  # a new task needs a system prompt
    ],
)
def test_bad_template_files_are_refused(tmp_path: Path, content: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        load_templates(write(tmp_path, content))
    assert fragment in str(info.value)


def test_missing_template_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(tmp_path / "nope.toml")


def test_binary_template_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(TemplateError):
        load_templates(path)


def test_app_refuses_to_start_with_a_bad_template_file(tmp_path: Path) -> None:
    from backend import create_app
    from tests.conftest import make_settings

    with pytest.raises(TemplateError):
        create_app(make_settings(prompt_templates=write(tmp_path, "[summary]\nresult = 'nope'\n")))


def test_added_task_is_accepted_by_the_api(tmp_path: Path) -> None:
    from backend import create_app
    from tests.conftest import TOKEN, make_settings

    path = write(tmp_path, '[tone]\nsystem = "Describe the tone."\n')
    client = create_app(make_settings(prompt_templates=path)).test_client()
    resp = client.post(
        "/api/v1/webhook", json={"prompt": "Hi.", "type": "tone"}, headers={"X-API-Token": TOKEN}
    )
    # the offline provider refuses tasks it does not know, but the type itself validated
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "unsupported_by_provider"
    bad = client.post(
        "/api/v1/webhook", json={"prompt": "Hi.", "type": "mood"}, headers={"X-API-Token": TOKEN}
    )
    assert bad.get_json()["error"]["code"] == "invalid_input"
    assert "tone" in bad.get_json()["error"]["message"]


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "answer",
    [
        '["alpha", "beta", "gamma"]',
        '```json\n["alpha", "beta", "gamma"]\n```',
        '```\n["alpha", "beta", "gamma"]\n```',
        'Here are the keywords:\n["alpha", "beta", "gamma"]\nHope this helps.',
        '{"keywords": ["alpha", "beta", "gamma"]}',
        "- alpha\n- beta\n- gamma",
        "1. alpha\n2) beta\n* gamma",
        "alpha, beta, gamma",
        '"alpha"\n"beta"\n"gamma"',
        '["alpha", " ", "beta", "gamma"]',
    ],
)
def test_string_list_answers(answer: str) -> None:
    assert parse_answer("string_list", answer) == ["alpha", "beta", "gamma"]


def test_string_list_numbers_become_strings() -> None:
    assert parse_answer("string_list", '[2024, 3.5, "q3"]') == ["2024", "3.5", "q3"]


@pytest.mark.parametrize(
    ("answer", "label", "score"),
    [
        ('{"label": "negative", "score": -0.7}', "negative", -0.7),
        ('```json\n{"label": "Positive", "score": 0.9}\n```', "positive", 0.9),
        ('Sure! {"label": "mixed", "score": 0.1} is my answer.', "mixed", 0.1),
        ('{"label": "positive", "score": 7}', "positive", 1.0),  # clamped
        ('{"label": "negative", "score": "very"}', "negative", 0.0),
        ("positive", "positive", 0.5),
        ("Negative.", "negative", -0.5),
        ("neutral (score 0.05)", "neutral", 0.05),
        ("The sentiment is negative, -0.8", "negative", -0.8),
    ],
)
def test_sentiment_answers(answer: str, label: str, score: float) -> None:
    result = parse_answer("sentiment", answer)
    assert result == {"label": label, "score": pytest.approx(score)}
    assert -1 <= result["score"] <= 1


@pytest.mark.parametrize(
    "answer",
    ["", "I cannot tell.", "positive or negative, hard to say", '{"label": "angry", "score": -1}'],
)
def test_unreadable_sentiment_is_a_provider_error(answer: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_answer("sentiment", answer)
    assert info.value.status == 502


@pytest.mark.parametrize(
    "answer",
    [
        '[{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "person"}]',
        '```json\n[{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "PERSON"}]\n```',
        '{"entities": [{"text": "Acme Corp", "label": "ORG"}, {"text": "Alice", "label": "PERSON"}]}',
        "- Acme Corp (ORG)\n- Alice (PERSON)",
        "Acme Corp: ORG\nAlice - PERSON",
    ],
)
def test_entity_answers(answer: str) -> None:
    assert parse_answer("entity_list", answer) == [
        {"text": "Acme Corp", "label": "ORG"},
        {"text": "Alice", "label": "PERSON"},
    ]


def test_entity_without_label_is_other_and_empty_text_dropped() -> None:
    assert parse_answer("entity_list", '[{"text": "Bob"}, {"text": " ", "label": "X"}]') == [
        {"text": "Bob", "label": "OTHER"}
    ]


@pytest.mark.parametrize("answer", ["[]", "", "none"])
def test_no_entities_is_an_empty_list(answer: str) -> None:
    assert parse_answer("entity_list", answer) == []


def test_unreadable_entities_are_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        parse_answer("entity_list", "I found some interesting names in there!")


@pytest.mark.parametrize("answer", ["", "   \n  "])
def test_empty_text_is_a_provider_error(answer: str) -> None:
    with pytest.raises(ProviderError):
        parse_answer("text", answer)


def test_text_is_stripped() -> None:
    assert parse_answer("text", "  A summary.\n") == "A summary."


def test_unknown_kind_is_a_provider_error() -> None:
    with pytest.raises(ProviderError):
        parse_answer("html", "<p>")


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain", "plain"),
        (["a", "b"], "a, b"),
        ({"label": "negative", "score": -0.5}, "negative (-0.50)"),
        ([{"text": "Acme", "label": "ORG"}, {"text": "Bob", "label": "PERSON"}], "Acme (ORG); Bob (PERSON)"),
        ([], ""),
    ],
)
def test_text_form_is_always_a_string(result: Any, text: str) -> None:
    assert text_form(result) == text

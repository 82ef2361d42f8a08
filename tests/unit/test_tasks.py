"""Task templates (built-in and PROMPT_TEMPLATES) and tolerant parsing of model answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.schemas import BUILTIN_TASKS
from backend.tasks import TemplateError, load_templates


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

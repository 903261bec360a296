"""html_error_template_file's templates: Gorouter's actions rendered, html/template's escaping,
and every other action refused at load with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.error_template import TemplateError, escape, load, parse

HEADERS = [("X-Cf-RouterError", "unknown_route"), ("Cache-Control", "no-cache, no-store")]


def render(text: str, message: str = "Requested route ('a.example.com') does not exist.") -> str:
    return parse(text).render(404, "Not Found", message, HEADERS).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain page", "plain page"),
        ("{{.Status}} {{ .StatusText }}", "404 Not Found"),
        (
            "<p>{{ .Message }}</p>",
            "<p>Requested route (&#39;a.example.com&#39;) does not exist.</p>",
        ),
        ('{{ .Header.Get "x-cf-routererror" }}', "unknown_route"),
        ("{{ .Header.Get `Cache-Control` }}", "no-cache, no-store"),
        ('[{{ .Header.Get "Absent" }}]', "[]"),
        ("a {{/* a comment */}} b", "a  b"),
        ("a  \n {{- .Status -}} \n  b", "a404b"),
        ("{{.Status}}}", "404}"),
    ],
)
def test_gorouters_actions_render(text: str, expected: str) -> None:
    assert render(text) == expected


def test_values_are_escaped_as_html_template_escapes_text() -> None:
    assert escape('<a href="x">&\'+\0') == "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&#43;\ufffd"
    assert render("{{ .Message }}", "<script>") == "&lt;script&gt;"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{{ if .Status }}x{{ end }}", "line 1: {{if .Status}}"),
        ("ok\n\n{{ .Request }}", "line 3: {{.Request}}"),
        ("{{ .Message | html }}", "line 1: {{.Message | html}}"),
        ('{{ printf "%d" .Status }}', "line 1"),
    ],
)
def test_other_actions_are_refused_with_their_line(text: str, where: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse(text)
    assert str(raised.value).startswith(where)
    assert "(it renders .Status, .StatusText, .Message and .Header.Get" in str(raised.value)


def test_an_unclosed_action_is_refused() -> None:
    with pytest.raises(TemplateError, match=r"^line 2: unclosed action"):
        parse("<html>\n{{ .Status")


def test_load_names_the_file_and_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "missing.html"
    with pytest.raises(TemplateError, match=rf"^cannot read {missing}: No such file"):
        load(str(missing))
    binary = tmp_path / "binary.html"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(TemplateError, match="is not UTF-8 text"):
        load(str(binary))
    page = tmp_path / "page.html"
    page.write_text("<b>{{ .Status }}</b>")
    assert load(str(page)).render(503, "Service Unavailable", "", []) == b"<b>503</b>"

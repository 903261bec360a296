"""The operator's HTML page for the router's own error answers (`html_error_template_file`).

Gorouter renders the file as a Go `html/template` with the answer's status code (`.Status`),
its text (`.StatusText`), the error message (`.Message`) and the response's headers
(`.Header`, read with `.Header.Get "Name"`). routerd renders those same actions, with
`{{/* comments */}}` and Go's `{{-`/`-}}` whitespace trimming; values are escaped as
html/template escapes text. Any other action (`if`, `range`, functions, pipelines) is refused
when the file is loaded, naming its line, rather than rendered differently from Gorouter.

Parsing and rendering do no I/O but `load`, which reads the file once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NamedTuple

# html/template's escaping of text: what it replaces, and with what.
_ESCAPES: Final = {
    "\0": "\ufffd",
    '"': "&#34;",
    "&": "&amp;",
    "'": "&#39;",
    "+": "&#43;",
    "<": "&lt;",
    ">": "&gt;",
}
_ESCAPED: Final = re.compile("[\0\"&'+<>]")
_FIELD: Final = re.compile(r"\.(Status|StatusText|Message)")
_HEADER_GET: Final = re.compile(r"\.Header\.Get\s+(\"(?:[^\"\\]|\\.)*\"|`[^`]*`)")
_COMMENT: Final = re.compile(r"/\*.*?\*/", re.DOTALL)
_SUPPORTED: Final = '.Status, .StatusText, .Message and .Header.Get "Name"'


class TemplateError(Exception):
    """A template routerd cannot render as Gorouter would; one line saying where and why."""


class Value(NamedTuple):
    """One action: a field of the answer, or one of its headers (`header` set)."""

    field: str
    header: str = ""


class ErrorTemplate:
    """A parsed template: literal text and values, in order."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str | Value, ...]) -> None:
        self.parts = parts

    def __repr__(self) -> str:
        values = sum(isinstance(part, Value) for part in self.parts)
        return f"ErrorTemplate({len(self.parts)} parts, {values} values)"

    def render(
        self, status: int, status_text: str, message: str, headers: Iterable[tuple[str, str]]
    ) -> bytes:
        """The page for one answer."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.header:
                out.append(escape(_header_get(headers, part.header)))
            elif part.field == "Status":
                out.append(str(status))
            elif part.field == "StatusText":
                out.append(escape(status_text))
            else:
                out.append(escape(message))
        return "".join(out).encode()


def escape(text: str) -> str:
    return _ESCAPED.sub(lambda match: _ESCAPES[match[0]], text)


def _header_get(headers: Iterable[tuple[str, str]], name: str) -> str:
    """Go's Header.Get: the first value of that name, compared without case; "" if none."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return ""


def parse(text: str) -> ErrorTemplate:
    """Parse template text; TemplateError names the first action routerd does not render."""
    parts: list[str | Value] = []
    position = 0
    trim_next = False
    while True:
        start = text.find("{{", position)
        literal = text[position:] if start == -1 else text[position:start]
        if trim_next:
            literal = literal.lstrip(" \t\r\n")
        if start == -1:
            if literal:
                parts.append(literal)
            return ErrorTemplate(tuple(parts))
        end = text.find("}}", start + 2)
        if end == -1:
            raise TemplateError(f"line {_line(text, start)}: unclosed action (no }}}})")
        inner = text[start + 2 : end]
        if inner.startswith("- ") or inner.startswith("-\t") or inner.startswith("-\n"):
            literal = literal.rstrip(" \t\r\n")
            inner = inner[2:]
        trim_next = inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-")
        if trim_next:
            inner = inner[:-2]
        if literal:
            parts.append(literal)
        value = _action(inner.strip(), text, start)
        if value is not None:
            parts.append(value)
        position = end + 2


def _action(inner: str, text: str, start: int) -> Value | None:
    if _COMMENT.fullmatch(inner):
        return None
    field = _FIELD.fullmatch(inner)
    if field is not None:
        return Value(field[1])
    header = _HEADER_GET.fullmatch(inner)
    if header is not None:
        quoted = header[1]
        name = quoted[1:-1]
        if quoted[0] == '"':
            name = bytes(name, "utf-8").decode("unicode_escape")
        return Value("Header", name)
    raise TemplateError(
        f"line {_line(text, start)}: {{{{{inner}}}}} is not rendered by routerd "
        f"(it renders {_SUPPORTED})"
    )


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def load(path: str) -> ErrorTemplate:
    """Read and parse the template file; TemplateError says what is wrong with it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"{path} is not UTF-8 text") from None
    try:
        return parse(text)
    except TemplateError as exc:
        raise TemplateError(f"{path}: {exc}") from None


__all__ = ["ErrorTemplate", "TemplateError", "Value", "escape", "load", "parse"]

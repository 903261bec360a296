"""`http_rewrite.responses`: header changes every response to a client gets, as in Gorouter.

Gorouter applies them when a response's head is written, whoever wrote it: a backend's relayed
response, a 1xx interim one, and the router's own answers (errors, health checks). Removals
first (every line of that name), then each header to add is added when the response has no
line of that name left (all configured values of that name, in order). Date, Content-Length
and the framing lines are the router's own and are written after, out of reach, as Go's server
writes them after Gorouter's rewriters (removing Date drops the backend's; the router's own
is then added, as Go's server adds one).

Pure logic on header lines (`b"Name: value\\r\\n"`) and pairs; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from runtime.config_model import HttpRewriteConfig

_NAME_END: Final = ord(":")
# The router's own framing of a response: never removed, or the client could not read it.
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding", b"connection"})


class ResponseRewrite:
    """The configured changes, compiled once per config."""

    __slots__ = ("add", "add_names", "remove")

    def __init__(self, remove: Iterable[str], add: Iterable[tuple[str, str]]) -> None:
        self.remove = frozenset(name.lower().encode() for name in remove) - _FRAMING
        pairs = [(name.encode(), value.encode("utf-8")) for name, value in add]
        # Grouped by name (first appearance), as Go's Header map holds them.
        order: dict[bytes, list[bytes]] = {}
        for name, value in pairs:
            order.setdefault(name.lower(), []).append(b"%s: %s\r\n" % (name, value))
        self.add: tuple[tuple[bytes, tuple[bytes, ...]], ...] = tuple(
            (lower, tuple(lines)) for lower, lines in order.items()
        )
        self.add_names = frozenset(order)

    def __repr__(self) -> str:
        return f"ResponseRewrite(remove={sorted(self.remove)}, add={sorted(self.add_names)})"

    def lines(self, lines: list[bytes]) -> list[bytes]:
        """Header lines (each `Name: value\\r\\n`) with the changes applied."""
        remove = self.remove
        if remove:
            lines = [line for line in lines if _name(line) not in remove]
        if self.add:
            present = {_name(line) for line in lines}
            for lower, added in self.add:
                if lower not in present:
                    lines = [*lines, *added]
        return lines

    def head(self, head: bytes) -> bytes:
        """A status line and its header lines (each ending CRLF, no blank line), rewritten."""
        status_end = head.find(b"\r\n") + 2
        fields = head[status_end:]
        lines = [line + b"\r\n" for line in fields[:-2].split(b"\r\n")] if fields else []
        return head[:status_end] + b"".join(self.lines(lines))

    def pairs(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(name, value) headers, as the router's own answers hold them, rewritten."""
        remove = self.remove
        if remove:
            headers = [pair for pair in headers if pair[0].lower().encode() not in remove]
        if self.add:
            present = {name.lower().encode() for name, _ in headers}
            for lower, added in self.add:
                if lower not in present:
                    for line in added:
                        name, _, value = line[:-2].partition(b": ")
                        headers = [*headers, (name.decode(), value.decode("utf-8"))]
        return headers


def _name(line: bytes) -> bytes:
    end = line.find(_NAME_END)
    return line[:end].strip().lower()


def response_rewrite(config: HttpRewriteConfig) -> ResponseRewrite | None:
    """The compiled rewrite, or None when nothing is configured (the usual case: no cost)."""
    responses = config.responses
    if not responses.add_headers_if_not_present and not responses.remove_headers:
        return None
    return ResponseRewrite(
        (header.name for header in responses.remove_headers),
        ((header.name, header.value) for header in responses.add_headers_if_not_present),
    )


__all__ = ["ResponseRewrite", "response_rewrite"]

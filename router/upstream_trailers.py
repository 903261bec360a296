"""A chunked response's trailer fields, collected beside the connection's own parser."""

from __future__ import annotations

import httptools


class TrailerFields:
    """A chunked response's trailer fields, from a second parser fed the same bytes.

    httptools calls a protocol's `on_header` for every header line, two bytes objects and a
    call each: about 4 % of a worker's CPU samples, for responses that carry no trailers. So
    the connection's own parser has no `on_header`; only a chunked response, the one kind that
    can carry trailers, gets this one beside it, fed from its head on. llhttp says which
    responses are chunked (their first chunk header; searching the head costs more than a
    microsecond), so the connection keeps the reads from the head on until the body's first
    byte or chunk header."""

    def __init__(self, head_on: bytes) -> None:
        """`head_on`: the response's bytes so far, from the start of its (final) head."""
        self.fields: list[tuple[bytes, bytes]] = []
        self._in_body = False  # the head's fields are not trailers
        self._done = False  # bytes after the response are not either
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.feed(head_on)

    def __repr__(self) -> str:
        return f"TrailerFields({len(self.fields)})"

    def feed(self, data: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # The connection's own parser has the same bytes, and reports what they are.
            self._parser = None

    # -- httptools callbacks -----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._in_body = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_body and not self._done:
            self.fields.append((name, value))

    def on_message_complete(self) -> None:
        self._done = True


__all__ = ["TrailerFields"]

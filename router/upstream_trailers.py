"""A chunked response's trailer fields, collected beside the connection's own parser."""

from __future__ import annotations


class TrailerFields:
    """A chunked response's trailer fields, from a second parser fed the same bytes.

    httptools calls a protocol's `on_header` for every header line, two bytes objects and a
    call each, about a twentieth of a worker's CPU for responses that carry no trailers. So the
    connection's own parser has no `on_header`; only a chunked response, the one kind that can
    carry trailers, gets this one beside it, fed from its head on. llhttp says which responses
    are chunked (their first chunk header; searching the head costs more than a microsecond),
    so the reads from the head on are kept until the body's first byte or chunk header."""

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self._in_body = False  # the head's fields are not trailers
        self._done = False  # bytes after the response are not either

    def __repr__(self) -> str:
        return f"TrailerFields({len(self.fields)})"

    def on_headers_complete(self) -> None:
        self._in_body = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_body and not self._done:
            self.fields.append((name, value))

    def on_message_complete(self) -> None:
        self._done = True


__all__ = ["TrailerFields"]

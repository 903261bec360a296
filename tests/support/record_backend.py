"""The `record` backend mode: exactly what reached the backend, byte by byte and request by request.

Every read is logged as `{"conn": N, "bytes": "<latin-1>"}`; every request llhttp (strict) finds
in a connection's bytes as `{"conn": N, "request": {...}}`, and anything it cannot parse as
`{"conn": N, "parse_error": "..."}` (the connection is then closed). Requests are answered
`200 ok`, except `/reply/<name>`, answered with `CANNED[name]` or `FAITHFUL[name]` as raw bytes
in one write, or `PACED[name]` in parts, PACE seconds apart.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any, Protocol

import httptools

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

# Responses a router must not relay as they are (each ends what it sends in one write).
CANNED: dict[str, bytes] = {
    "cr-in-header": b"HTTP/1.1 200 OK\r\nX-Evil: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "lf-in-header": b"HTTP/1.1 200 OK\r\nX-Evil: a\nX-Injected: b\r\nContent-Length: 2\r\n\r\nok",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nX-Evil: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "nul-in-reason": b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok",
    "cr-in-reason": b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok",
    "lf-in-reason": b"HTTP/1.1 200 O\nX-Injected: b\r\nContent-Length: 2\r\n\r\nok",
    "duplicate-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    ),
    "conflicting-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok"
    ),
    "listed-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 7\r\n\r\nok",
    "content-length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    ),
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Evil: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    # More than Content-Length: a whole second response, or the start of one.
    "extra-response": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
    ),
    "extra-partial-head": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
    "extra-garbage": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\noksmuggled",
}
# Well-formed responses whose details a router must carry over, or fix, on the way.
FAITHFUL: dict[str, bytes] = {
    "connection-named": (
        b"HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: backend-only\r\n"
        b"X-Kept: yes\r\nContent-Length: 2\r\n\r\nok"
    ),
    "dated": (
        b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\nok"
    ),
    "trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Status\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Checksum: abc123\r\nX-Status: done\r\n\r\n"
    ),
    # A response head with more header lines, or more bytes, than a limit allows.
    "many-headers": (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-E: 5\r\n"
        b"Content-Length: 2\r\n\r\nok"
    ),
    "big-head": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 3000 + b"\r\nContent-Length: 2\r\n\r\nok",
    # Headers an operator's http_rewrite removes, or has to leave alone.
    "powered": (
        b"HTTP/1.1 200 OK\r\nX-Powered-By: php\r\nServer: app\r\nContent-Length: 2\r\n\r\nok"
    ),
    "own-hsts": (
        b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\nContent-Length: 2\r\n\r\nok"
    ),
    # A 100 Continue the backend sends on its own before its response.
    "continue-then-ok": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    ),
}
# Responses written in parts, PACE seconds apart: what a client must see before the rest.
PACE = 0.3
PACED: dict[str, list[bytes]] = {
    "early-hints": [
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok",
    ],
    # A head and its body in separate writes, as nginx serving a file sends them.
    "lagging-body": [b"HTTP/1.1 200 OK\r\nX-Lag: yes\r\nContent-Length: 5\r\n\r\n", b"he", b"llo"],
    # A body that stops short of its Content-Length: the connection then stays silent.
    "stalled-body": [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", b"part"],
    # A body larger than the router holds for (router/relay.py HOLD_LIMIT): streamed.
    "large-lagging-body": [
        b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n",
        b"x" * 70000,
    ],
}


class Recorder(Protocol):
    def record(self, **fields: Any) -> None: ...


class _Request:
    """httptools callbacks collecting one request at a time."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.method = ""
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.done: list[dict[str, Any]] = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.method = self.parser.get_method().decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append(
            {
                "method": self.method,
                "url": self.url.decode("latin-1"),
                "headers": self.headers,
                "body": self.body.decode("latin-1"),
            }
        )
        self.url, self.headers, self.body = b"", [], b""


async def serve_recording(args: Any, sock: socket.socket, recorder: Recorder) -> None:
    numbers = itertools.count(1)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(numbers)
        request = _Request()
        parser = httptools.HttpRequestParser(request)
        request.parser = parser
        try:
            while data := await reader.read(65536):
                recorder.record(conn=conn, bytes=data.decode("latin-1"))
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    pass
                except httptools.HttpParserError as exc:
                    recorder.record(conn=conn, parse_error=str(exc))
                    break
                for seen in request.done:
                    recorder.record(conn=conn, request=seen)
                    name = seen["url"].removeprefix("/reply/")
                    for part in PACED.get(name, [])[:-1]:
                        writer.write(part)
                        await writer.drain()
                        await asyncio.sleep(PACE)
                    if name in PACED:
                        writer.write(PACED[name][-1])
                        continue
                    canned = CANNED.get(name) or FAITHFUL.get(name, OK)
                    writer.write(canned if seen["url"].startswith("/reply/") else OK)
                request.done.clear()
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, sock=sock)
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def seen(log: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The requests a record backend parsed (each with its `conn`) and its parse errors."""
    requests = [{**line["request"], "conn": line["conn"]} for line in log if "request" in line]
    errors = [line["parse_error"] for line in log if "parse_error" in line]
    return requests, errors


def raw_bytes(log: list[dict[str, Any]]) -> bytes:
    """Every byte the backend received, in arrival order (all connections)."""
    return b"".join(line["bytes"].encode("latin-1") for line in log if "bytes" in line)

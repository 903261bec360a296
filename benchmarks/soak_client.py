"""A plain HTTP/1.1 client for the soak: one keep-alive connection, one request at a time, and
no retries.

General-purpose clients retry an idempotent request once when a reused connection turns out to
be closed (aiohttp does, browsers do); that would hide exactly what the soak looks for, a
router process dying under its clients. Here a request that gets no complete response is a
failure, and the next request opens a new connection. Bodies are read by Content-Length,
chunked coding, or to the end of the connection, so the connection is always left clean.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

HEAD_LIMIT = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class Reply(NamedTuple):
    status: int | None  # None: no complete response
    headers: dict[str, str]  # lower-case names
    body: bytes
    error: str  # why there was no response, else ""

    @property
    def router_error(self) -> str:
        return self.headers.get("x-cf-routererror", "")


class Connection:
    """A keep-alive connection to 127.0.0.1:`port`, opened on first use and after a failure."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __repr__(self) -> str:
        return f"Connection(127.0.0.1:{self.port}, {'open' if self._writer else 'closed'})"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, host: str, path: str = "/", headers: dict[str, str] | None = None
    ) -> Reply:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that lands as the request completes, and the caller would outlive its stop.
            async with asyncio.timeout(self.timeout):
                return await self._exchange(host, path, headers or {})
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.close()
            return Reply(None, {}, b"", f"{type(exc).__name__}: {exc}"[:200])
        except TimeoutError:
            self.close()
            return Reply(None, {}, b"", f"TimeoutError: no response within {self.timeout:g} s")
        except ValueError as exc:
            self.close()
            return Reply(None, {}, b"", f"malformed response: {exc}"[:200])

    async def _exchange(self, host: str, path: str, headers: dict[str, str]) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self.port, limit=HEAD_LIMIT
            )
        reader, writer = self._reader, self._writer
        assert reader is not None
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"status line {status_line[:80]!r}")
        status = int(rest[:3])
        fields: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        body = await self._read_body(reader, status, fields)
        if fields.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            self.close()
        return Reply(status, fields, body, "")

    async def _read_body(
        self, reader: asyncio.StreamReader, status: int, fields: dict[str, str]
    ) -> bytes:
        if status in NO_BODY_STATUSES or 100 <= status < 200:
            return b""
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailer fields
                    return b"".join(chunks)
                chunks.append((await reader.readexactly(size + 2))[:size])
        if "content-length" in fields:
            return await reader.readexactly(int(fields["content-length"]))
        body = await reader.read()
        self.close()
        return body

"""What passes through an HTTP/1 exchange besides heads: the client's request body as the
proxy core reads it, and a tunnel's client bytes on their way to the backend."""

from __future__ import annotations

from typing import Any

from router.upstream import UpstreamConnection


class StreamBody:
    """The client's body as the proxy reads it: once, counting bytes."""

    __slots__ = ("bytes_read", "consumed", "payload")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.consumed = False
        self.bytes_read = 0

    def __repr__(self) -> str:
        return f"StreamBody(read={self.bytes_read})"

    async def read(self) -> bytes:
        self.consumed = True
        data: bytes = await self.payload.readany()
        self.bytes_read += len(data)
        return data


class TunnelSink:
    """Where a tunnel's client bytes go: the backend connection, counted."""

    __slots__ = ("bytes", "upstream")

    def __init__(self, upstream: UpstreamConnection) -> None:
        self.upstream = upstream
        self.bytes = 0

    def __repr__(self) -> str:
        return f"TunnelSink({self.upstream!r}, bytes={self.bytes})"

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.upstream.closed:
            self.upstream.write(data)

    def close(self) -> None:
        self.upstream.close()


__all__ = ["StreamBody", "TunnelSink"]

"""The TLS listener's protocol choice: after the handshake, by ALPN (RFC 7301), a connection
that agreed on `h2` is served by the HTTP/2 front end, any other by the HTTP/1 one.

asyncio builds a connection's protocol before the handshake and calls `connection_made` after
it; so the listener's protocol is this chooser, which hands the transport over to the protocol
the handshake chose, before any request byte is read.
"""

from __future__ import annotations

import asyncio
from typing import Final

from router.http1.connection import ClientConnection
from router.http1.server import Http1Server
from router.http2.connection import H2ClientConnection

H2: Final = "h2"


class AlpnChoice(asyncio.Protocol):
    """A TLS connection's protocol until its handshake is done (see the module docstring)."""

    __slots__ = ("peer", "server")

    def __init__(self, server: Http1Server) -> None:
        self.server = server
        self.peer: tuple[str, int] | None = None  # from a PROXY header, else the socket's

    def __repr__(self) -> str:
        return f"AlpnChoice({self.peer})"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        served: asyncio.BaseProtocol
        if chosen == H2:
            served = H2ClientConnection(self.server, peer=self.peer)
        else:
            served = ClientConnection(self.server, tls=True, peer=self.peer)
        transport.set_protocol(served)
        served.connection_made(transport)


def tls_connection(server: Http1Server) -> AlpnChoice:
    """A connection on the TLS listener."""
    return AlpnChoice(server)


__all__ = ["H2", "AlpnChoice", "tls_connection"]

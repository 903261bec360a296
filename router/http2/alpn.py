"""The TLS listener's protocol choice: after the handshake, by ALPN (RFC 7301), a connection
that agreed on `h2` is served by the HTTP/2 front end, any other by the HTTP/1 one.

asyncio builds a connection's protocol before the handshake and calls `connection_made` after
it; so the listener's protocol is this chooser, which hands the transport over to the protocol
the handshake chose, before any request byte is read.

It is also the one place, for both protocols, where the client certificate the handshake
verified meets Gorouter's metadata rules (runtime/client_cert_metadata.py): a refused client's
connection is cut before any request is read. Gorouter refuses it inside the handshake with a
bad_certificate alert; Python's ssl has no hook there, so this is the earliest point.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

from registry.shm.counters import Stat
from router.http1.connection import ClientConnection
from router.http1.server import Http1Server
from router.http2.connection import H2ClientConnection
from runtime.client_cert_metadata import ClientCertRules
from runtime.logs import EventLog

H2: Final = "h2"
log = EventLog("vcap.gorouter.router")


class AlpnChoice(asyncio.Protocol):
    """A TLS connection's protocol until its handshake is done (see the module docstring)."""

    __slots__ = ("client_cert_rules", "peer", "server")

    def __init__(self, server: Http1Server, client_cert_rules: ClientCertRules | None) -> None:
        self.server = server
        self.client_cert_rules = client_cert_rules
        self.peer: tuple[str, int] | None = None  # from a PROXY header, else the socket's

    def __repr__(self) -> str:
        return f"AlpnChoice({self.peer})"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and self.is_refused(ssl_object, transport):
            # No TLS alert can be sent now; cut at once, so a refused client holds nothing.
            assert isinstance(transport, asyncio.Transport)
            transport.abort()
            return
        chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        served: asyncio.BaseProtocol
        if chosen == H2:
            served = H2ClientConnection(self.server, peer=self.peer)
        else:
            served = ClientConnection(self.server, tls=True, peer=self.peer)
        transport.set_protocol(served)
        served.connection_made(transport)

    def is_refused(self, ssl_object: ssl.SSLObject, transport: asyncio.BaseTransport) -> bool:
        """True (logged and counted) when the metadata rules refuse the client certificate."""
        if self.client_cert_rules is None:
            return False
        der = ssl_object.getpeercert(binary_form=True)
        if der is None:
            return False  # none sent: client_cert_validation decided, as in Gorouter
        refusal = self.client_cert_rules.refusal(der)
        if refusal is None:
            return False
        self.server.stats[Stat.client_cert_refused] += 1
        peer = self.peer or transport.get_extra_info("peername")
        fields: dict[str, object] = {"issuer": refusal.issuer, "subject": refusal.subject}
        if refusal.allowed:
            fields["allowed"] = list(refusal.allowed)
        source = f"{peer[0]}:{peer[1]}" if peer else ""
        log.warn(refusal.event, source=source, **fields)
        return True


def tls_connection(server: Http1Server, client_cert_rules: ClientCertRules | None) -> AlpnChoice:
    """A connection on the TLS listener."""
    return AlpnChoice(server, client_cert_rules)


__all__ = ["H2", "AlpnChoice", "tls_connection"]

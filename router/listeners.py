"""The worker's listeners: plain HTTP on `port` (unless `disable_http`), TLS on `ssl_port` when
`enable_ssl`, each reading a PROXY header first when `enable_proxy`.

What differs between them is decided per listener and per connection, never per request: a
plain-HTTP connection without PROXY is served exactly as before; a TLS connection records its
forwarding rules (forwarded.py) once, after the handshake, from the client certificate.

Connections reach a listener's intake two ways: accepted by the worker itself (acceptor.py), or
accepted by the supervisor while another worker was down and handed over on the handoff channel
(runtime/handoff.py). Both are served the same way.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl

from router.acceptor import Acceptor, DirectIntake, Intake, ResourceShortage
from router.http1.connection import ClientConnection
from router.http1.server import Http1Server
from router.http2.alpn import tls_connection
from router.proxy_listener import ProxyProtocolIntake
from runtime import handoff
from runtime.config_model import Config
from runtime.logs import EventLog
from runtime.tls_listener import client_cert_rules, server_context

log = EventLog("vcap.gorouter.router")


class Listeners:
    """The worker's intakes by kind, the acceptors feeding them, and the handoff channel."""

    def __init__(self, shortage: ResourceShortage) -> None:
        self.shortage = shortage
        self.intakes: dict[bytes, Intake] = {}
        self.acceptors: list[Acceptor] = []
        self.handed_over = 0
        self._channel: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Listeners({self.acceptors!r}, handed_over={self.handed_over})"

    def add(self, kind: bytes, sock: socket.socket, intake: Intake) -> None:
        self.intakes[kind] = intake
        acceptor = Acceptor(sock, intake, self.shortage, "tls" if kind == handoff.TLS else "http")
        self.acceptors.append(acceptor)
        acceptor.start()

    def receive_handoffs(self, channel: socket.socket) -> None:
        """Serve the connections the supervisor hands over on `channel`."""
        self._channel = channel
        channel.setblocking(False)
        asyncio.get_running_loop().add_reader(channel.fileno(), self._on_handoff)

    def close(self) -> None:
        """Stop taking connections; those being served go on."""
        if self._channel is not None:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
            self._channel.close()
            self._channel = None
        for acceptor in self.acceptors:
            acceptor.close()
        for intake in self.intakes.values():
            intake.close()

    def _on_handoff(self) -> None:
        assert self._channel is not None
        while True:
            try:
                message = handoff.receive_connections(self._channel)
            except (EOFError, OSError):
                # The supervisor is gone; the control channel says so and stops the worker.
                asyncio.get_running_loop().remove_reader(self._channel.fileno())
                return
            if message is None:
                return
            kind, conns, truncated = message
            if truncated:
                self.shortage.failed("handoff", OSError(errno.EMFILE, os.strerror(errno.EMFILE)))
            intake = self.intakes.get(kind)
            for conn in conns:
                if intake is None:
                    log.error("handoff-kind-unknown", kind=kind.decode(errors="replace"))
                    conn.close()
                    continue
                self.handed_over += 1
                intake.adopt(conn)


def open_listeners(
    server: Http1Server,
    config: Config,
    http_fd: int | None,
    tls_fd: int | None,
    stats: memoryview,
) -> Listeners:
    """Serve the sockets the supervisor bound (no HTTP one under disable_http); returns what
    to close to stop accepting."""
    listeners = Listeners(ResourceShortage(stats, float(config.logging.error_sample_interval)))
    plain_factory = functools.partial(ClientConnection, server)
    if http_fd is not None:
        http_sock = socket.socket(fileno=http_fd)
        plain: Intake
        if config.enable_proxy:
            plain = ProxyProtocolIntake(
                plain_factory,
                float(config.proxy_protocol_timeout),
                required=config.proxy_protocol_required,
            )
        else:
            plain = DirectIntake(plain_factory)
        listeners.add(handoff.HTTP, http_sock, plain)
    if tls_fd is None:
        return listeners
    tls_sock = socket.socket(fileno=tls_fd)
    context: ssl.SSLContext = server_context(config)
    tls_factory = functools.partial(tls_connection, server, client_cert_rules(config, context))
    handshake_timeout = float(config.tls_handshake_timeout)
    secure: Intake
    if config.enable_proxy:
        secure = ProxyProtocolIntake(
            tls_factory,
            float(config.proxy_protocol_timeout),
            required=config.proxy_protocol_required,
            tls=context,
            tls_handshake_timeout=handshake_timeout,
        )
    else:
        secure = DirectIntake(tls_factory, tls=context, tls_handshake_timeout=handshake_timeout)
    listeners.add(handoff.TLS, tls_sock, secure)
    return listeners

"""The worker's listeners: plain HTTP on `port`, TLS on `ssl_port` when `enable_ssl`, each
reading a PROXY header first when `enable_proxy`.

What differs between them is decided per listener and per connection, never per request: a
plain-HTTP connection without PROXY is served exactly as before; a TLS connection records its
forwarding rules (forwarded.py) once, after the handshake, from the client certificate.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol

from router.forwarded import forwarding_for
from router.frontend import GorouterRequestHandler, GorouterServer
from router.proxy_listener import ProxyProtocolListener
from supervisor.config import Config
from supervisor.tls_listener import server_context
from supervisor.workers import LISTEN_BACKLOG


class Listener(Protocol):
    def close(self) -> None: ...


class TlsRequestHandler(GorouterRequestHandler):
    """A TLS connection: its requests forward the client certificate per forwarded_client_cert."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if not isinstance(manager, GorouterServer):
            return
        proxy = manager.frontend.proxy
        ssl_object = transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if cert:
            self.forwarding = forwarding_for(proxy.config, tls=True, client_cert_der=cert)
        else:
            self.forwarding = proxy.tls_forwarding


async def open_listeners(
    server: GorouterServer, config: Config, http_fd: int, tls_fd: int | None
) -> list[Listener]:
    """Serve the sockets the supervisor bound; returns what to close to stop accepting."""
    loop = asyncio.get_running_loop()
    http_sock = socket.socket(fileno=http_fd)
    listeners: list[Listener] = []
    if config.enable_proxy:
        plain = ProxyProtocolListener(
            http_sock,
            lambda: server.handler(GorouterRequestHandler),
            float(config.proxy_protocol_timeout),
        )
        plain.start()
        listeners.append(plain)
    else:
        listeners.append(await loop.create_server(server, sock=http_sock, backlog=LISTEN_BACKLOG))
    if tls_fd is None:
        return listeners
    tls_sock = socket.socket(fileno=tls_fd)
    context: ssl.SSLContext = server_context(config)
    handshake_timeout = float(config.tls_handshake_timeout)

    def tls_handler() -> GorouterRequestHandler:
        return server.handler(TlsRequestHandler)

    if config.enable_proxy:
        secure = ProxyProtocolListener(
            tls_sock,
            tls_handler,
            float(config.proxy_protocol_timeout),
            tls=context,
            tls_handshake_timeout=handshake_timeout,
        )
        secure.start()
        listeners.append(secure)
    else:
        listeners.append(
            await loop.create_server(
                tls_handler,
                sock=tls_sock,
                backlog=LISTEN_BACKLOG,
                ssl=context,
                ssl_handshake_timeout=handshake_timeout,
            )
        )
    return listeners

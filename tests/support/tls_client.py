"""Clients for the router's own listeners: TLS with a chosen SNI and client certificate, and
connections that open with a PROXY header (before TLS, when there is TLS)."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.support.certs import Issued
from tests.support.routerd import Response


@dataclass
class TlsResult:
    response: Response
    version: str | None
    cipher: str | None
    server_cert_der: bytes | None


def client_context(
    ca_pem: str | None = None,
    client: tuple[Path, Path] | None = None,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """Verifies the router against `ca_pem` (host names included), or verifies nothing."""
    if ca_pem:
        context = ssl.create_default_context(cadata=ca_pem)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client is not None:
        context.load_cert_chain(*client)
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def get(
    port: int,
    host: str,
    path: str = "/",
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
    proxy_header: bytes = b"",
    timeout: float = 10,
) -> TlsResult:
    """One GET on a fresh connection; raises what the client would see (ssl.SSLError, ...)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock: socket.socket = raw
    try:
        raw.sendall(proxy_header)
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname=server_name, do_handshake_on_connect=False)
            sock.do_handshake()  # here, so that `finally` closes the socket when it fails
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        response = Response(reply.status, reply.headers, reply.read())
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            return TlsResult(
                response,
                sock.version(),
                cipher[0] if cipher else None,
                sock.getpeercert(binary_form=True),
            )
        return TlsResult(response, None, None, None)
    finally:
        sock.close()
        raw.close()


def der_of(issued: Issued) -> bytes:
    """The certificate's DER: what a TLS peer sees."""
    return ssl.PEM_cert_to_DER_cert(issued.cert_pem)


def pem_body(issued: Issued) -> str:
    """The PEM's base64 lines joined: the value Gorouter puts in X-Forwarded-Client-Cert."""
    lines = issued.cert_pem.strip().splitlines()
    return "".join(lines[1:-1])

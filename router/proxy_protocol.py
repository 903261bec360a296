"""PROXY protocol v1 and v2 headers, parsed from bytes with no I/O.

A load balancer in front of the router opens each connection with one header naming the client
(HAProxy's spec, proxy-protocol.txt). v1 is one text line of at most 107 bytes ending in CRLF:
`PROXY TCP4|TCP6 <src> <dst> <sport> <dport>` or `PROXY UNKNOWN ...`. v2 is a 16-byte binary
prefix (12-byte signature, version/command, family/transport, big-endian length) followed by
that many bytes of addresses and TLVs.

`ProxyHeader.source` is None when the header carries no client address (v1 UNKNOWN, v2 LOCAL,
v2 with an unspecified or UNIX family): the connection's own peer stands then.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

from registry.rejection import Rejection

V1_PREFIX: Final = b"PROXY "
V1_MAX_LENGTH: Final = 107  # the spec's worst case, CRLF included
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_PREFIX_LENGTH: Final = 16
# The first bytes tell v1 from v2 (and from a client that sent no header at all).
DISCRIMINATOR_LENGTH: Final = 6
# `version_of`'s answer for first bytes that open a signature but are too few to tell.
PENDING: Final = 0

_V2_LOCAL: Final = 0x20
_V2_PROXY: Final = 0x21
_AF_INET: Final = 0x1
_AF_INET6: Final = 0x2
_INET_ADDRESSES: Final = struct.Struct("!4s4sHH")
_INET6_ADDRESSES: Final = struct.Struct("!16s16sHH")


class ProxyHeader:
    __slots__ = ("source",)

    def __init__(self, source: tuple[str, int] | None) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"ProxyHeader(source={self.source!r})"


def version_of(first: bytes) -> int | None:
    """1 or 2 from the first DISCRIMINATOR_LENGTH bytes, None when they cannot open a PROXY
    header, PENDING when fewer bytes than that open one of the signatures so far."""
    for version, signature in ((1, V1_PREFIX), (2, V2_SIGNATURE[:DISCRIMINATOR_LENGTH])):
        seen = first[:DISCRIMINATOR_LENGTH]
        if signature.startswith(seen):
            return version if len(seen) == DISCRIMINATOR_LENGTH else PENDING
    return None


def parse_v1(line: bytes) -> ProxyHeader | Rejection:
    """A whole v1 line, CRLF included."""
    if len(line) > V1_MAX_LENGTH or not line.startswith(V1_PREFIX) or not line.endswith(b"\r\n"):
        return Rejection("malformed PROXY v1 header")
    try:
        text = line[:-2].decode("ascii")
    except UnicodeDecodeError:
        return Rejection("PROXY v1 header is not ASCII")
    parts = text.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        return Rejection("malformed PROXY v1 header")
    _, family, source, destination, source_port, destination_port = parts
    version = 4 if family == "TCP4" else 6
    try:
        for address in (source, destination):
            if ipaddress.ip_address(address).version != version:
                return Rejection(f"PROXY v1 {family} header with a non-IPv{version} address")
    except ValueError:
        return Rejection("PROXY v1 header with a malformed address")
    ports = (_port(source_port), _port(destination_port))
    if ports[0] is None or ports[1] is None:
        return Rejection("PROXY v1 header with a malformed port")
    return ProxyHeader((source, ports[0]))


def _port(text: str) -> int | None:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0"):
        return None
    port = int(text)
    return port if port <= 65535 else None


def v2_body_length(prefix: bytes) -> int | Rejection:
    """How many bytes follow the 16-byte v2 prefix."""
    if len(prefix) != V2_PREFIX_LENGTH or not prefix.startswith(V2_SIGNATURE):
        return Rejection("malformed PROXY v2 header")
    if prefix[12] not in (_V2_LOCAL, _V2_PROXY):
        return Rejection("PROXY v2 header with an unknown version or command")
    length: int = struct.unpack_from("!H", prefix, 14)[0]
    return length


def parse_v2(prefix: bytes, body: bytes) -> ProxyHeader | Rejection:
    """The 16-byte prefix and the `v2_body_length(prefix)` bytes after it."""
    length = v2_body_length(prefix)
    if isinstance(length, Rejection):
        return length
    if len(body) != length:
        return Rejection("truncated PROXY v2 header")
    if prefix[12] == _V2_LOCAL:  # the balancer's own health check: no client to name
        return ProxyHeader(None)
    family = prefix[13] >> 4
    if family == _AF_INET:
        if length < _INET_ADDRESSES.size:
            return Rejection("PROXY v2 header too short for IPv4 addresses")
        source, _, port, _ = _INET_ADDRESSES.unpack_from(body)
        return ProxyHeader((str(ipaddress.IPv4Address(source)), port))
    if family == _AF_INET6:
        if length < _INET6_ADDRESSES.size:
            return Rejection("PROXY v2 header too short for IPv6 addresses")
        source, _, port, _ = _INET6_ADDRESSES.unpack_from(body)
        return ProxyHeader((str(ipaddress.IPv6Address(source)), port))
    return ProxyHeader(None)  # AF_UNSPEC or AF_UNIX: nothing the router can use

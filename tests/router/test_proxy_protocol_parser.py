"""PROXY protocol v1/v2 headers parsed from bytes (no sockets)."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from registry.rejection import Rejection
from router.proxy_protocol import (
    DISCRIMINATOR_LENGTH,
    PENDING,
    V2_PREFIX_LENGTH,
    parse_v1,
    parse_v2,
    v2_body_length,
    version_of,
)

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command: int, family: int, body: bytes) -> tuple[bytes, bytes]:
    """Written from the spec: signature, version 2 + command, family + transport, length."""
    prefix = SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body))
    return prefix, body


def inet(source: str, destination: str, sport: int, dport: int) -> bytes:
    src = ipaddress.ip_address(source).packed
    dst = ipaddress.ip_address(destination).packed
    return src + dst + struct.pack("!HH", sport, dport)


@pytest.mark.parametrize(
    ("line", "source"),
    [
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", ("203.0.113.7", 51234)),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 80\r\n", ("2001:db8::7", 65535)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
    ],
)
def test_v1_headers_name_the_client(line, source):
    header = parse_v1(line)
    assert not isinstance(header, Rejection)
    assert header.source == source


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n",  # no CR
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n",  # a field short
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",  # IPv6 under TCP4
        b"PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",  # IPv4 under TCP6
        b"PROXY TCP4 203.0.113.300 10.0.0.1 1 2\r\n",  # not an address
        b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n",  # port out of range
        b"PROXY TCP4 203.0.113.7 10.0.0.1 0123 2\r\n",  # leading zero
        b"PROXY TCP4  203.0.113.7 10.0.0.1 1 2\r\n",  # double space
        b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2" + b" " * 80 + b"\r\n",  # over 107 bytes
    ],
)
def test_malformed_v1_headers_are_rejected(line):
    assert isinstance(parse_v1(line), Rejection)


def test_v2_tcp4_and_tcp6_name_the_client():
    four = parse_v2(*v2(1, 0x11, inet("198.51.100.4", "10.0.0.1", 40000, 443)))
    six = parse_v2(*v2(1, 0x21, inet("2001:db8::4", "2001:db8::1", 40001, 443)))
    assert not isinstance(four, Rejection) and four.source == ("198.51.100.4", 40000)
    assert not isinstance(six, Rejection) and six.source == ("2001:db8::4", 40001)


def test_v2_tlvs_after_the_addresses_are_ignored():
    body = inet("198.51.100.4", "10.0.0.1", 40000, 443) + b"\x04\x00\x03abc"
    header = parse_v2(*v2(1, 0x11, body))
    assert not isinstance(header, Rejection) and header.source == ("198.51.100.4", 40000)


def test_v2_local_and_unspecified_keep_the_connections_own_peer():
    local = parse_v2(*v2(0, 0x00, b""))
    unspecified = parse_v2(*v2(1, 0x00, b""))
    assert not isinstance(local, Rejection) and local.source is None
    assert not isinstance(unspecified, Rejection) and unspecified.source is None


@pytest.mark.parametrize(
    ("prefix", "body"),
    [
        v2(1, 0x11, b"\x00" * 11),  # too short for IPv4
        v2(1, 0x21, b"\x00" * 35),  # too short for IPv6
        (SIGNATURE + b"\x12\x11\x00\x0c", b"\x00" * 12),  # version 1 in a v2 header
        (SIGNATURE + b"\x22\x11\x00\x0c", b"\x00" * 12),  # unknown command
        (SIGNATURE[:-1] + b"X\x21\x11\x00\x0c", b"\x00" * 12),  # bad signature
    ],
)
def test_malformed_v2_headers_are_rejected(prefix, body):
    assert isinstance(parse_v2(prefix, body), Rejection)


def test_v2_length_is_read_from_the_prefix():
    prefix, body = v2(1, 0x11, inet("198.51.100.4", "10.0.0.1", 1, 2))
    assert len(prefix) == V2_PREFIX_LENGTH
    assert v2_body_length(prefix) == len(body) == 12


@pytest.mark.parametrize(
    ("first", "version"),
    [
        (b"PROXY ", 1),
        (SIGNATURE[:DISCRIMINATOR_LENGTH], 2),
        (b"GET / ", None),
        (b"\x16\x03\x01\x02\x00\x01", None),
        (b"PRO", PENDING),
        (SIGNATURE[:2], PENDING),
        (b"PRI", None),
        (b"G", None),
        (b"", PENDING),
    ],
    ids=["v1", "v2", "plain HTTP", "TLS ClientHello", "v1-so-far", "v2-so-far", "h2", "G", "none"],
)
def test_the_first_bytes_tell_the_version(first, version):
    assert version_of(first) == version

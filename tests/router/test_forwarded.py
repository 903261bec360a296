"""The per-connection rules for X-Forwarded-Proto and X-Forwarded-Client-Cert, as tables."""

from __future__ import annotations

import base64

import pytest

from router.forwarded import forwarding_for
from router.headers import build_common_headers, header_rules
from router.tracing import tracing_for
from runtime.config_model import Config

CERT = b"\x30\x82\x01\x0a fake DER"
CLIENT_XFCC = (b"X-Forwarded-Client-Cert", b"from-client")
PLAIN_RULES = header_rules(tracing_for(False, False, ""), ())


def sent(
    config: Config, tls: bool, cert: bytes | None, raw=(CLIENT_XFCC,)
) -> dict[bytes, list[bytes]]:
    """What the backend would receive, as {lower-case name: values}."""
    lines, _, _ = build_common_headers(
        list(raw), "192.0.2.1", forwarding_for(config, tls, cert), PLAIN_RULES, False
    )
    got: dict[bytes, list[bytes]] = {}
    for line in b"".join(lines).split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            got.setdefault(name.lower(), []).append(value)
    return got


@pytest.mark.parametrize(
    ("mode", "tls", "cert", "expected"),
    [
        ("always_forward", False, None, [b"from-client"]),
        ("always_forward", True, CERT, [b"from-client"]),
        ("forward", False, None, None),
        ("forward", True, None, None),
        ("forward", True, CERT, [b"from-client"]),
        ("sanitize_set", False, None, None),
        ("sanitize_set", True, None, None),
        ("sanitize_set", True, CERT, [base64.b64encode(CERT)]),
        # A certificate only counts on TLS (a plain connection cannot have one).
        ("sanitize_set", False, CERT, None),
    ],
)
def test_client_cert_header_by_mode(mode, tls, cert, expected):
    got = sent(Config(forwarded_client_cert=mode), tls, cert)
    assert got.get(b"x-forwarded-client-cert") == expected


@pytest.mark.parametrize(
    ("force", "sanitize", "tls", "client", "expected"),
    [
        (False, False, False, None, b"http"),
        (False, False, True, None, b"https"),
        (False, False, False, b"https", b"https"),
        (False, False, True, b"http", b"http"),
        (False, True, False, b"https", b"http"),
        (False, True, True, b"http", b"https"),
        (True, False, False, b"http", b"https"),
        (True, True, False, None, b"https"),
    ],
)
def test_forwarded_proto(force, sanitize, tls, client, expected):
    config = Config(force_forwarded_proto_https=force, sanitize_forwarded_proto=sanitize)
    raw = [(b"X-Forwarded-Proto", client)] if client else []
    assert sent(config, tls, None, raw)[b"x-forwarded-proto"] == [expected]


@pytest.mark.parametrize(
    ("mode", "tls", "keeps"),
    [
        ("always_forward", False, True),
        ("forward", True, False),
        ("sanitize_set", True, True),
        ("sanitize_set", False, False),
    ],
)
def test_back_from_a_route_service(mode, tls, keeps):
    rules = forwarding_for(Config(forwarded_client_cert=mode, sanitize_forwarded_proto=True), tls)
    back = rules.from_route_service
    assert back.keep_client_xfcc is keeps
    assert back.xfcc == b""
    assert back.fixed_proto == b""  # the service's X-Forwarded-Proto stands

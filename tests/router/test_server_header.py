"""No Server header of the router's own: Gorouter (Go's net/http) sends none, and aiohttp's
would name its version and Python's on every answer. A backend's own Server header passes."""

from __future__ import annotations

import pytest

from tests.support.nats import NatsClient
from tests.support.rawhttp import header_of, raw_request, status_of
from tests.support.routes import register, routed_routerd, wait_routed

pytestmark = pytest.mark.integration
PLAIN = "plain.server.example.com"  # a backend that sends no Server header
NAMED = "named.server.example.com"  # an aiohttp backend, which names itself


@pytest.fixture(scope="module")
def router(module_nats, module_backends):
    plain = module_backends("--mode", "record", name="server-plain")
    named = module_backends(name="server-named")
    with routed_routerd(module_nats.port, plain.port, PLAIN, {"workers": 1}) as router:
        with NatsClient(module_nats.port) as nats:
            register(nats, named.port, [NAMED])
        wait_routed(router, NAMED)
        yield router


REQUESTS = {
    "keep-alive GET": b"GET /a HTTP/1.1\r\nHost: %s\r\n\r\n",
    "HTTP/1.0 GET": b"GET /a HTTP/1.0\r\nHost: %s\r\n\r\n",
    "closing GET": b"GET /a HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
    "POST with a body": b"POST /a HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n\r\nabc",
    "chunked POST": (
        b"POST /a HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", REQUESTS.values(), ids=REQUESTS.keys())
def test_proxied_response_without_server_gets_none(router, request_bytes):
    response = raw_request(router.port, request_bytes % PLAIN.encode())
    assert status_of(response) == 200
    assert header_of(response, "Server") is None


@pytest.mark.parametrize("request_bytes", REQUESTS.values(), ids=REQUESTS.keys())
def test_backend_server_header_passes(router, request_bytes):
    response = raw_request(router.port, request_bytes % NAMED.encode())
    assert status_of(response) == 200
    assert (header_of(response, "Server") or "").startswith("Python/")


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET / HTTP/1.1\r\nHost: nowhere.example.com\r\n\r\n", 404),
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Cf-App-Instance: nope\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
    ids=["unknown route", "empty host", "bad app instance", "two hosts", "bad", "HTTP/2.0"],
)
def test_router_answers_have_no_server_header(router, request_bytes, status):
    response = raw_request(router.port, request_bytes)
    assert status_of(response) == status
    assert header_of(response, "Server") is None

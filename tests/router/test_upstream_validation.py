"""Malformed backend responses give the client a 502 and are never relayed; bytes a backend sends
after its response never answer a later request on a pooled connection."""

from __future__ import annotations

import http.client

import pytest

from router.errors import BAD_GATEWAY_BODY
from tests.support.record_backend import seen
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration
HOST = "upstream.example.com"

MALFORMED = [
    "cr-in-header",
    "lf-in-header",
    "nul-in-header",
    "nul-in-reason",
    "cr-in-reason",
    "lf-in-reason",
    "duplicate-content-length",
    "conflicting-content-length",
    "listed-content-length",
    "content-length-and-chunked",
    "obs-fold",
]
EXTRA = ["extra-response", "extra-partial-head", "extra-garbage"]


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="upstream")
    # One worker, so consecutive requests share its pool of backend connections.
    with routed_routerd(module_nats.port, backend.port, HOST, {"workers": 1}) as router:
        yield router, backend


def connection_of(backend, path: str) -> int:
    requests, _ = seen(backend.requests_seen())
    conns = [request["conn"] for request in requests if request["url"] == path]
    assert len(conns) == 1, (path, conns)
    return int(conns[0])


def two_requests(port: int, first: str, second: str) -> list[tuple[int, bytes]]:
    """Both on one client connection, as a browser would send them."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    answers = []
    try:
        for path in (first, second):
            client.request("GET", path, headers={"Host": HOST})
            response = client.getresponse()
            answers.append((response.status, response.read()))
    finally:
        client.close()
    return answers


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_response_is_502_and_its_connection_is_dropped(setup, name):
    router, backend = setup
    response = router.get(f"/reply/{name}", host=HOST)
    assert response.status == 502
    assert response.text == BAD_GATEWAY_BODY + "\n"
    assert (response.header("X-Cf-RouterError") or "").startswith("endpoint_failure")
    assert response.header("X-Evil") is None and response.header("X-Injected") is None
    after = router.get(f"/after-{name}", host=HOST)
    assert after.status == 200 and after.body == b"ok"
    assert connection_of(backend, f"/after-{name}") != connection_of(backend, f"/reply/{name}")


@pytest.mark.parametrize("name", EXTRA)
def test_bytes_after_a_response_never_answer_the_next_request(setup, name):
    router, backend = setup
    answers = two_requests(router.port, f"/reply/{name}", f"/next-{name}")
    # The response itself was whole; what came after it answers nothing.
    assert answers == [(200, b"ok"), (200, b"ok")]
    assert connection_of(backend, f"/next-{name}") != connection_of(backend, f"/reply/{name}")


def test_bad_responses_are_counted(setup):
    router, _ = setup
    before = router.status_json("/varz")["bad_gateways_by_cause"]["bad_response"]
    assert router.get("/reply/nul-in-reason", host=HOST).status == 502
    assert router.status_json("/varz")["bad_gateways_by_cause"]["bad_response"] == before + 1

"""Gorouter's response rules hold for HTTP/2 clients as for HTTP/1.1 ones: http_rewrite on
relayed heads, whole or streamed, and a backend's 1xx (103 Early Hints) passed on before the
final response as an informational HEADERS frame."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.router.http2.conftest import RECORD_HOST, ssl_port
from tests.support.h2_client import H2Client
from tests.support.routerd import Routerd

pytestmark = pytest.mark.integration
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module")
def rewriting_router(start_tls_router: Callable[..., Routerd]) -> Routerd:
    rewrite = {
        "responses": {
            "add_headers_if_not_present": [{"name": "Strict-Transport-Security", "value": HSTS}],
            "remove_headers": [{"name": "X-Powered-By"}, {"name": "server"}],
        }
    }
    return start_tls_router(http_rewrite=rewrite)


def test_relayed_responses_are_rewritten(rewriting_router: Routerd) -> None:
    with H2Client(ssl_port(rewriting_router)) as client:
        response = client.request("GET", "/reply/powered", RECORD_HOST)
        own = client.request("GET", "/reply/own-hsts", RECORD_HOST)
    assert (response.status, response.body) == (200, b"ok")
    assert "x-powered-by" not in response.headers and "server" not in response.headers
    assert response.headers["strict-transport-security"] == HSTS
    # A backend's own header of that name is left as it is.
    assert own.headers["strict-transport-security"] == "max-age=1"


def test_early_hints_reach_the_client_before_the_response(rewriting_router: Routerd) -> None:
    with H2Client(ssl_port(rewriting_router)) as client:
        response = client.request("GET", "/reply/early-hints", RECORD_HOST)
    [(status, fields)] = response.interim
    assert status == 103
    assert fields["link"] == "</style.css>; rel=preload"
    assert fields["strict-transport-security"] == HSTS  # Gorouter rewrites 103s too
    assert (response.status, response.body, response.headers["x-final"]) == (200, b"ok", "yes")

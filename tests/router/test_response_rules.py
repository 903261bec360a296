"""What a client gets of a backend's response, by Gorouter's rules: http_rewrite on every head
(relayed, 1xx, the router's own), the operator's HTML error page, response head limits (a 502
as any backend failure), 1xx interim responses passed on, and `Expect: 100-continue` requests
kept off reused backend connections (keep_alive_100_continue_requests)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.rawhttp import header_of, raw_request, read_response, status_of
from tests.support.record_backend import PACE, seen
from tests.support.routes import register, routed_routerd, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "rules.example.com"
DEAD = "dead.example.com"
HSTS = "max-age=31536000; includeSubDomains"
TEMPLATE = (
    "<html><!-- {{/* not rendered */}} -->\n"
    "<h1>{{ .Status }} {{ .StatusText }}</h1>\n"
    '<p>{{- .Message -}}</p> <i>{{ .Header.Get "X-Cf-RouterError" }}</i></html>\n'
)


@pytest.fixture(scope="module")
def setup(module_nats, module_backends, tmp_path_factory):
    backend = module_backends("--mode", "record", name="rules")
    workdir: Path = tmp_path_factory.mktemp("rules")
    template = workdir / "error.html"
    template.write_text(TEMPLATE)
    access_log = workdir / "access.log"
    overrides = {
        "workers": 1,
        "access_log": {"file": str(access_log)},
        "html_error_template_file": str(template),
        "max_response_headers": 5,
        "max_response_header_bytes": 2048,
        "http_rewrite": {
            "responses": {
                "add_headers_if_not_present": [
                    {"name": "Strict-Transport-Security", "value": HSTS}
                ],
                "remove_headers": [{"name": "X-Powered-By"}, {"name": "server"}],
            }
        },
    }
    with routed_routerd(module_nats.port, backend.port, HOST, overrides) as router:
        with NatsClient(module_nats.port) as nats:
            register(nats, free_port(), [DEAD])  # nothing listens there
        wait_routed(router, DEAD)
        yield router, backend, access_log


def access_line(access_log: Path, path: str) -> str:
    def logged() -> str | None:
        lines = [line for line in access_log.read_text().splitlines() if f" {path} " in line]
        return lines[-1] if lines else None

    return wait_until(logged, timeout=5, what=f"an access log line for {path}")


def test_relayed_responses_are_rewritten(setup):
    router, _, _ = setup
    response = router.get("/reply/powered", host=HOST)
    assert response.status == 200 and response.body == b"ok"
    assert response.header("X-Powered-By") is None and response.header("Server") is None
    assert response.header("Strict-Transport-Security") == HSTS
    # A backend's own header of that name is left as it is.
    own = router.get("/reply/own-hsts", host=HOST)
    assert own.headers.get_all("Strict-Transport-Security") == ["max-age=1"]


def test_streamed_responses_are_rewritten_too(setup):
    router, _, _ = setup
    response = router.get("/reply/trailers", host=HOST)  # chunked: the streaming path
    assert response.status == 200 and response.body == b"ok"
    assert response.header("Strict-Transport-Security") == HSTS


def test_the_routers_own_errors_use_the_operators_page(setup):
    router, _, _ = setup
    response = router.get("/", host="nowhere.example.com")
    assert response.status == 404
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    assert response.header("X-Cf-RouterError") == "unknown_route"
    assert response.header("Strict-Transport-Security") == HSTS
    assert response.text == (
        "<html><!--  -->\n<h1>404 Not Found</h1>\n"
        "<p>Requested route (&#39;nowhere.example.com&#39;) does not exist.</p> "
        "<i>unknown_route</i></html>\n"
    )
    head = router.request("HEAD", "/", host="nowhere.example.com")
    assert head.status == 404 and head.body == b""
    assert head.header("Content-Length") == str(len(response.body))


def test_refusals_from_gorouters_handlers_are_rewritten_and_gos_are_not(setup):
    router, _, _ = setup
    many = "".join(f"X-{index}: v\r\n" for index in range(600))  # over max_request_headers
    too_many = raw_request(router.port, f"GET / HTTP/1.1\r\nHost: {HOST}\r\n{many}\r\n".encode())
    assert status_of(too_many) == 431
    assert header_of(too_many, "Strict-Transport-Security") == HSTS
    hostless = raw_request(router.port, b"GET / HTTP/1.1\r\n\r\n")
    assert status_of(hostless) == 400
    assert header_of(hostless, "Content-Type") == "text/html; charset=utf-8"
    assert b"<p>Request had empty Host header</p> <i>empty_host</i>" in hostless
    malformed = raw_request(router.port, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    assert status_of(malformed) == 400
    assert header_of(malformed, "Strict-Transport-Security") is None


def test_backend_failures_stay_plain_text_as_in_gorouter(setup):
    router, _, _ = setup
    response = router.get("/", host=DEAD)
    assert response.status == 502
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.text == "502 Bad Gateway: Registered endpoint failed to handle the request.\n"
    assert response.header("Strict-Transport-Security") == HSTS


def test_more_response_headers_than_allowed_is_a_502(setup):
    router, _, access_log = setup
    before = router.varz()["bad_gateways_by_cause"]["bad_response"]
    response = router.get("/reply/many-headers", host=HOST)
    assert response.status == 502
    error = "endpoint_failure (too many response headers: 6 > 5)"
    assert response.header("X-Cf-RouterError") == error
    assert response.text == "502 Bad Gateway: Registered endpoint failed to handle the request.\n"
    assert f'x_cf_routererror:"{error}"' in access_line(access_log, "/reply/many-headers")
    assert router.varz()["bad_gateways_by_cause"]["bad_response"] == before + 1


def test_a_larger_response_head_than_allowed_is_a_502(setup):
    router, _, access_log = setup
    response = router.get("/reply/big-head", host=HOST)
    assert response.status == 502
    error = (
        "endpoint_failure (net/http: HTTP/1.x transport connection broken: net/http: server "
        "response headers exceeded 2048 bytes; aborted)"
    )
    assert response.header("X-Cf-RouterError") == error
    assert " 502 " in access_line(access_log, "/reply/big-head")
    # The connection that carried it is not reused: the next request is served.
    assert router.get("/after-big-head", host=HOST).status == 200


def test_early_hints_reach_the_client_before_the_response(setup):
    router, _, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /reply/early-hints HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        started = time.monotonic()
        hints = read_response(sock)
        hints_at = time.monotonic() - started
        final = read_response(sock)
    assert status_of(hints) == 103, hints
    assert header_of(hints, "Link") == "</style.css>; rel=preload"
    assert header_of(hints, "Strict-Transport-Security") == HSTS
    assert hints_at < PACE  # passed on at once, not held until the final response
    assert status_of(final) == 200 and header_of(final, "X-Final") == "yes"
    assert final.endswith(b"\r\n\r\nok")


def test_a_backends_own_100_continue_is_passed_on_once(setup):
    router, _, _ = setup
    plain = raw_request(
        router.port,
        f"POST /reply/continue-then-ok HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3\r\n"
        "Connection: close\r\n\r\nabc".encode(),
    )
    assert plain.startswith(b"HTTP/1.1 100 Continue\r\n"), plain
    # The client asked for a 100 and the router gave it: the backend's is not repeated.
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            f"POST /reply/continue-then-ok HTTP/1.1\r\nHost: {HOST}\r\n"
            "Content-Length: 70000\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert status_of(read_response(sock)) == 100
        sock.sendall(b"x" * 70000)
        final = read_response(sock)
    assert status_of(final) == 200 and final.endswith(b"\r\n\r\nok"), final


def test_expect_continue_requests_do_not_keep_their_backend_connection(setup):
    router, backend, _ = setup
    request = (
        f"POST /expecting HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3\r\n"
        "Expect: 100-continue\r\n\r\nabc"
    )
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(request.encode())
        first = read_response(sock)
        if status_of(first) == 100:
            first = read_response(sock)
        assert status_of(first) == 200
        sock.sendall(f"GET /after-expecting HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200  # the client's connection stays open
    requests, _ = seen(backend.requests_seen())
    by_path = {request["url"]: request for request in requests}
    expecting = by_path["/expecting"]
    assert ["Connection", "close"] in expecting["headers"]
    assert by_path["/after-expecting"]["conn"] != expecting["conn"]

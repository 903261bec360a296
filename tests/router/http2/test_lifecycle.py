"""An HTTP/2 connection's life around its streams: a client's RST_STREAM (a 499, as a lost
HTTP/1 client), backend failures answered as Gorouter answers them, client deadlines, and a
drain (SIGUSR1) that sends GOAWAY and lets the streams in flight finish."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable

import h2.errors
import pytest

from tests.router.http2.conftest import HOST, ssl_port
from tests.support.backends import Backend
from tests.support.h2_client import H2Client
from tests.support.nats import NatsClient, NatsServer
from tests.support.ports import free_port
from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def access_lines(router: Routerd) -> list[str]:
    try:
        with open(router.config["access_log"]["file"]) as handle:
            return handle.read().splitlines()
    except OSError:
        return []


@pytest.fixture(scope="module")
def router(start_tls_router: Callable[..., Routerd]) -> Routerd:
    return start_tls_router()


def test_a_client_reset_cancels_the_exchange_as_a_499(
    router: Routerd, backends: dict[str, Backend]
) -> None:
    app = backends["app"]
    with H2Client(ssl_port(router)) as client:
        stream = client.start("GET", "/slow?seconds=5&reset=1", HOST)
        wait_until(
            lambda: any("reset=1" in seen["path"] for seen in app.requests_seen()),
            what="the backend to get the request",
        )
        client.h2.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
        client.send_pending()
        wait_until(
            lambda: any(
                '"GET /slow?seconds=5&reset=1 HTTP/2.0" 499' in line
                for line in access_lines(router)
            ),
            timeout=4,  # well before the backend would have answered
            what="a 499 access log line",
        )
        # The connection goes on serving.
        assert client.request("GET", "/next", HOST).status == 200


def test_a_dead_backend_gets_gorouters_502(router: Routerd, module_nats: NatsServer) -> None:
    with NatsClient(module_nats.port) as nats:
        register(nats, free_port(), ["dead.example.com"])
        wait_routed(router, "dead.example.com")
    with H2Client(ssl_port(router)) as client:
        response = client.request("GET", "/", "dead.example.com")
    assert response.status == 502
    assert response.headers["x-cf-routererror"].startswith("endpoint_failure (")
    assert response.text == "502 Bad Gateway: Registered endpoint failed to handle the request.\n"


def test_a_client_that_sends_no_request_is_closed_after_read_header_timeout(
    start_tls_router: Callable[..., Routerd],
) -> None:
    router = start_tls_router(read_header_timeout=1, frontend_idle_timeout=1)
    with H2Client(ssl_port(router)) as client:
        started = time.monotonic()
        client.read_until_closed(timeout=6)
        assert time.monotonic() - started < 4
        assert client.goaway is not None
        assert client.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert router.events_named("request-header-timeout")
    # An idle connection after its requests is closed after frontend_idle_timeout.
    with H2Client(ssl_port(router)) as client:
        assert client.request("GET", "/", HOST).status == 200
        started = time.monotonic()
        client.read_until_closed(timeout=6)
        assert 0.5 < time.monotonic() - started < 4
        assert client.goaway is not None


def test_drain_sends_goaway_and_the_streams_in_flight_finish(
    start_tls_router: Callable[..., Routerd], backends: dict[str, Backend]
) -> None:
    """nghttp, as a real client that keeps reading after GOAWAY (the h2 package's own client
    state machine stops at a GOAWAY, so it cannot see the streams finish)."""
    router = start_tls_router(drain_wait=0, drain_timeout=10)
    port = ssl_port(router)
    client = subprocess.Popen(
        [
            "nghttp",
            "-v",
            "-H",
            f":authority: {HOST}",
            f"https://127.0.0.1:{port}/slow?seconds=2&drain=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: any("drain=1" in seen["path"] for seen in backends["app"].requests_seen()),
            what="the backend to get the request",
        )
        router.signal(signal.SIGUSR1)
        output, _ = client.communicate(timeout=15)
    finally:
        client.kill()
    text = output.decode(errors="replace")
    assert client.returncode == 0, text
    assert "recv GOAWAY frame" in text, text
    goaway = re.search(r"recv GOAWAY frame .*\n\s+\(last_stream_id=(\d+), error_code=(\w+)", text)
    assert goaway is not None, text
    served = re.search(r"recv \(stream_id=(\d+)\) :status: 200", text)
    assert served is not None, text
    # The GOAWAY names the stream in flight as one the router still serves.
    assert (goaway[1], goaway[2]) == (served[1], "NO_ERROR"), text
    assert '"path": "/slow?seconds=2&drain=1"' in text, text
    # The GOAWAY came before the response: the stream finished after it.
    assert text.index("recv GOAWAY frame") < text.index(":status: 200"), text
    assert router.wait_exit(timeout=15) == 0


def test_a_body_that_stops_arriving_is_cancelled_after_request_body_timeout(
    start_tls_router: Callable[..., Routerd],
) -> None:
    router = start_tls_router(request_body_timeout=1)
    with H2Client(ssl_port(router)) as client:
        stream = client.start(
            "POST", "/stalled-body", HOST, headers=[("content-length", "200000")], end=False
        )
        client.send_body(stream, b"x" * 1000, end=False)
        started = time.monotonic()
        response = client.wait(stream, timeout=8)
        assert response.reset == h2.errors.ErrorCodes.CANCEL
        assert time.monotonic() - started < 5
        # The connection goes on serving.
        assert client.request("GET", "/", HOST).status == 200
    assert router.events_named("request-body-timeout")
    wait_until(
        lambda: any('"POST /stalled-body HTTP/2.0" 499' in line for line in access_lines(router)),
        what="a 499 access log line",
    )

"""Slow clients: read_header_timeout, request_body_timeout, frontend_idle_timeout.

The client here paces itself by waiting (up to PACE) for the router to close the connection;
each test asserts what the client and the backend saw and what /varz counted, never how long it
took.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.rawhttp import read_response, status_of
from tests.support.record_backend import seen
from tests.support.routerd import Routerd
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration
HOST = "slow.example.com"
PACE = 0.2  # how long the client waits for a close before sending its next byte
GIVE_UP = 150  # paced steps (30 s) after which a connection the router left open fails the test


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="slow")
    with routed_routerd(
        module_nats.port,
        backend.port,
        HOST,
        {
            "workers": 1,
            "read_header_timeout": "1s",
            "request_body_timeout": "1s",
            "frontend_idle_timeout": "3s",
        },
    ) as router:
        yield router, backend


def timeouts(router: Routerd) -> dict[str, int]:
    counts: dict[str, int] = router.status_json("/varz")["client_timeouts"]
    return counts


def paced(sock: socket.socket, data: bytes) -> Iterator[bytes]:
    """Send `data` a byte at a time, then nothing; yield what the router sends (b"" once it
    closed), waiting up to PACE for it before each next byte."""
    sock.settimeout(PACE)
    for step in range(GIVE_UP):
        if step < len(data):
            sock.send(data[step : step + 1])
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            chunk = b""
        yield chunk
        if not chunk:
            return
    raise AssertionError("the router never closed the connection")


def closed_silently(sock: socket.socket, data: bytes) -> bool:
    """True when the router closed the connection without sending a byte."""
    return list(paced(sock, data)) == [b""]


def test_slow_head_is_closed_and_other_clients_are_served(setup):
    router, backend = setup
    before = timeouts(router)
    slow = socket.create_connection(("127.0.0.1", router.port))
    head = f"GET /slowloris HTTP/1.1\r\nHost: {HOST}\r\nX-Pad: {'p' * 400}\r\n\r\n".encode()
    served = 0
    received = []
    for chunk in paced(slow, head):
        received.append(chunk)
        # Meanwhile another client gets its answers as usual.
        served += router.get("/other", host=HOST).status == 200
    slow.close()
    assert received == [b""], "closed without an answer, as Go's ReadHeaderTimeout does"
    assert served > 0
    assert timeouts(router)["header"] == before["header"] + 1
    assert router.events_named("request-header-timeout")
    requests, _ = seen(backend.requests_seen())
    assert not any(r["url"] == "/slowloris" for r in requests)


def test_slow_head_after_a_request_on_the_same_connection_is_closed(setup):
    router, _ = setup
    before = timeouts(router)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /first HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200
        assert closed_silently(sock, f"GET /second HTTP/1.1\r\nHost: {HOST}\r\n".encode() * 20)
    assert timeouts(router)["header"] == before["header"] + 1


def test_head_begun_in_the_same_write_as_a_request_is_timed_out(setup):
    router, _ = setup
    before = timeouts(router)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /whole HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /part".encode())
        answers = list(paced(sock, b""))
    assert status_of(answers[0]) == 200 and answers[-1] == b""
    # Closed for the unfinished head, not for idleness.
    assert timeouts(router)["header"] == before["header"] + 1


def test_idle_client_is_closed_after_frontend_idle_timeout(setup):
    router, _ = setup
    before = timeouts(router)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        assert closed_silently(sock, b"")
    # Sending nothing is idleness, not a slow head.
    assert timeouts(router) == before


def test_idle_keep_alive_connection_is_closed(setup):
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /once HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200
        assert closed_silently(sock, b"")


def test_stalled_body_is_abandoned(setup):
    router, backend = setup
    before = timeouts(router)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            f"POST /stalled HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n".encode()
            + b"x" * 10
        )
        received = list(paced(sock, b""))
    assert received[-1] == b""
    assert timeouts(router)["body"] == before["body"] + 1
    assert router.events_named("request-body-timeout")
    requests, _ = seen(backend.requests_seen())
    assert not any(r["url"] == "/stalled" for r in requests)


def test_body_trickling_slower_than_its_timeout_overall_still_arrives(setup):
    router, backend = setup
    body = b"0123456789"  # one byte per PACE: ten paces, longer than the 1 s timeout in all
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        head = f"POST /trickled HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode())
        answer = b""
        for chunk in paced(sock, body):
            answer += chunk
            if answer.endswith(b"\r\n\r\nok"):
                break
        assert status_of(answer) == 200
    requests, _ = seen(backend.requests_seen())
    assert [r["body"] for r in requests if r["url"] == "/trickled"] == [body.decode()]

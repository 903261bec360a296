"""Request head limits (Gorouter's max_request_header_bytes, max_request_headers) and pipelining."""

from __future__ import annotations

import asyncio
import select
import socket
import time

import pytest

from tests.support.rawhttp import body_of, header_of, read_response, status_of
from tests.support.record_backend import seen
from tests.support.routerd import Routerd
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration
HOST = "limits.example.com"
LIMIT = 16384
MAX_HEADERS = 32


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="limits")
    with routed_routerd(
        module_nats.port,
        backend.port,
        HOST,
        {"workers": 1, "max_request_header_bytes": LIMIT, "max_request_headers": MAX_HEADERS},
    ) as router:
        yield router, backend


def head_of_size(size: int, path: str = "/sized") -> bytes:
    """A GET whose head is `size` bytes as Gorouter counts them (request line and header
    lines, each with its CRLF; not the blank line)."""
    line = f"GET {path} HTTP/1.1\r\n"
    host = f"Host: {HOST}\r\n"
    filler = size - len(line) - len(host) - len("X-Fill: \r\n")
    assert filler >= 0
    return f"{line}{host}X-Fill: {'f' * filler}\r\n\r\n".encode()


def send(router: Routerd, data: bytes, refused: bool = True) -> tuple[bytes, bool]:
    """Send a request; the answer, and (for a refused one) whether the router then closed the
    connection."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=15) as sock:
        sock.sendall(data)
        response = read_response(sock)
        try:
            closed = refused and sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return response, closed


def forwarded(backend, path: str) -> int:
    requests, _ = seen(backend.requests_seen())
    return sum(1 for request in requests if request["url"] == path)


def test_head_at_the_limit_is_431_and_never_forwarded(setup):
    router, backend = setup
    response, closed = send(router, head_of_size(LIMIT, "/at-limit"))
    assert status_of(response) == 431
    assert header_of(response, "X-Cf-RouterError") == "max-request-size-exceeded"
    assert body_of(response) == b""
    assert header_of(response, "Connection") == "close"
    assert closed
    assert forwarded(backend, "/at-limit") == 0


def test_head_just_under_the_limit_is_forwarded(setup):
    router, backend = setup
    response, _ = send(router, head_of_size(LIMIT - 1, "/under-limit"), refused=False)
    assert status_of(response) == 200
    assert forwarded(backend, "/under-limit") == 1


def test_too_many_headers_is_431(setup):
    router, backend = setup
    lines = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS))
    response, closed = send(router, f"GET /many HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode())
    assert status_of(response) == 431
    assert header_of(response, "X-Cf-RouterError") == "max-request-size-exceeded"
    assert closed
    assert forwarded(backend, "/many") == 0


def test_headers_up_to_the_count_limit_are_forwarded(setup):
    router, backend = setup
    lines = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS - 1))
    request = f"GET /enough HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode()
    response, _ = send(router, request, refused=False)
    assert status_of(response) == 200
    assert forwarded(backend, "/enough") == 1


def test_refusals_are_counted(setup):
    router, _ = setup
    before = router.status_json("/varz")["router_errors"]["max-request-size-exceeded"]
    send(router, head_of_size(LIMIT + 100))
    varz = router.status_json("/varz")
    assert varz["router_errors"]["max-request-size-exceeded"] == before + 1
    metrics = router.status_request("GET", "/metrics").text
    assert f'router_errors_total{{error="max-request-size-exceeded"}} {before + 1}' in metrics
    refused = router.events_named("request-refused")
    assert refused and refused[-1]["data"]["status"] == 431


def trickle(router: Routerd, data: bytes) -> tuple[bytes, int]:
    """Send one byte per TCP segment (Nagle off) until the router answers; the answer and how
    many bytes were sent by then."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=15) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        for sent in range(1, len(data) + 1):
            try:
                sock.send(data[sent - 1 : sent])
            except (BrokenPipeError, ConnectionResetError):
                break
            if sent % 64 == 0 and select.select([sock], [], [], 0)[0]:
                break  # the router answered before the request was complete
        return read_response(sock), sent


def many_lines(path: str) -> bytes:
    """A head over LIMIT made of lines each well under it, fewer than MAX_HEADERS."""
    lines = "".join(f"X-Line-{i}: {'l' * 1000}\r\n" for i in range(MAX_HEADERS - 2))
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode()


@pytest.mark.parametrize("shape", ["one-long-line", "many-lines"])
def test_head_over_the_limit_one_byte_at_a_time_is_refused_before_it_ends(setup, shape):
    router, backend = setup
    if shape == "one-long-line":
        data = head_of_size(4 * LIMIT, "/trickled-large")
    else:
        data = many_lines("/trickled-large")
    response, sent = trickle(router, data)
    assert status_of(response) == 431
    assert header_of(response, "X-Cf-RouterError") == "max-request-size-exceeded"
    assert sent < len(data), "the router should answer before the head ends"
    assert forwarded(backend, "/trickled-large") == 0


def test_head_under_the_limit_one_byte_at_a_time_is_forwarded(setup):
    router, backend = setup
    response, _ = trickle(router, head_of_size(LIMIT // 2, "/trickled-small"))
    assert status_of(response) == 200
    assert forwarded(backend, "/trickled-small") == 1


def test_head_at_the_limit_one_byte_at_a_time_is_431(setup):
    router, backend = setup
    response, _ = trickle(router, head_of_size(LIMIT, "/trickled-at-limit"))
    assert status_of(response) == 431
    assert forwarded(backend, "/trickled-at-limit") == 0


def test_request_line_over_the_limit_one_byte_at_a_time_is_refused(setup):
    router, backend = setup
    target = "/" + "a" * (LIMIT + 10)
    response, _ = trickle(router, f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    # Over the whole head's limit too: Gorouter's 431 (414 when only the line limit is hit).
    assert status_of(response) in (414, 431)
    assert header_of(response, "X-Cf-RouterError") == "max-request-size-exceeded"
    assert forwarded(backend, target) == 0


def worker_rss_kib(router: Routerd) -> int:
    total = 0
    for worker in router.status_json("/varz")["workers"]:
        with open(f"/proc/{worker['pid']}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def test_ten_thousand_pipelined_requests_in_one_write(setup):
    router, backend = setup
    count = 10_000
    request = f"GET /pipelined HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    rss_before = worker_rss_kib(router)

    async def run() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
        writer.write(request * count)
        answered = 0
        pending = b""
        deadline = time.monotonic() + 90
        while answered < count and time.monotonic() < deadline:
            chunk = await asyncio.wait_for(reader.read(1 << 16), timeout=30)
            if not chunk:
                break
            pending += chunk
            answered += pending.count(b"HTTP/1.1 200 ")
            # Keep a possibly split status line for the next read.
            pending = pending[-16:] if b"HTTP/1.1 200 " not in pending[-16:] else b""
        writer.close()
        return answered

    answered = asyncio.run(run())
    assert answered == count
    assert router.health().status == 200
    # aiohttp stops reading after a few queued requests, so memory does not grow with them.
    assert worker_rss_kib(router) - rss_before < 64 * 1024
    assert forwarded(backend, "/pipelined") == count

"""Flow control end to end: a request body goes to the backend only as fast as the backend
takes it (the client's window is opened again as the router passes the body on), and a
response comes only as fast as the client's window lets it."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.router.http2.conftest import HOST, ssl_port
from tests.support.h2_client import H2Client
from tests.support.nats import NatsClient, NatsServer
from tests.support.routerd import Routerd
from tests.support.routes import register, route_addresses
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

STALL_HOST = "stall.example.com"
OFFERED = 64 << 20


@pytest.fixture(scope="module")
def router(start_tls_router: Callable[..., Routerd]) -> Routerd:
    return start_tls_router()


@pytest.fixture
def stalled_backend(router: Routerd, module_nats: NatsServer) -> Iterator[socket.socket]:
    """A backend that accepts connections (the kernel does) and never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    with NatsClient(module_nats.port) as nats:
        register(nats, sock.getsockname()[1], [STALL_HOST])
    wait_until(lambda: route_addresses(router, STALL_HOST), what="the stalled route")
    yield sock
    sock.close()


def worker_rss(router: Routerd) -> int:
    (pid,) = router.worker_pids()
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match
    return int(match[1]) * 1024


def test_a_body_the_backend_does_not_read_stops_the_client(
    router: Routerd, stalled_backend: socket.socket
) -> None:
    before = worker_rss(router)
    with H2Client(ssl_port(router)) as client:
        stream = client.start("POST", "/upload", STALL_HOST, end=False)
        sent = 0
        block = b"x" * 16384
        client.sock.settimeout(2.0)
        while sent < OFFERED:
            room = min(client.h2.local_flow_control_window(stream), len(block))
            if room > 0:
                client.h2.send_data(stream, block[:room])
                client.send_pending()
                sent += room
                continue
            try:
                # The window is shut: wait for the router to open it again. Two seconds
                # without a WINDOW_UPDATE means the router has stopped taking the body.
                if not client.read_once():
                    break
            except TimeoutError:
                break
        # Far less than offered: at most the router's windows and the sockets' buffers.
        assert sent < 16 << 20, f"the router took {sent} bytes from a stalled upload"
        assert worker_rss(router) - before < 20 << 20
    # The router serves others meanwhile.
    with H2Client(ssl_port(router)) as other:
        assert other.request("GET", "/", HOST).status == 200

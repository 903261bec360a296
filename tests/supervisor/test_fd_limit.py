"""File descriptors: routerd raises its soft limit; running out on accept is seen and survived."""

from __future__ import annotations

import re
import resource
import socket

import pytest

from supervisor.fd_limit import target_soft_limit
from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SOFT, HARD = 32, 64
HOLDERS = 80  # more connections than a worker can hold with 64 descriptors


def open_file_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as handle:
        for line in handle:
            if line.startswith("Max open files"):
                soft, hard = re.findall(r"\d+", line)[:2]
                return int(soft), int(hard)
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


def request_bytes(host: str) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def read_status_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data.split(b"\r\n", 1)[0]


def start_under_limits(routerd_factory) -> Routerd:
    return routerd_factory(
        {
            "workers": 1,
            "read_header_timeout": "60s",
            "logging": {"error_sample_interval": "1s"},
        },
        wrapper=["prlimit", f"--nofile={SOFT}:{HARD}", "--"],
    )


def test_soft_fd_limit_is_raised_to_the_hard_limit(routerd_factory):
    router = start_under_limits(routerd_factory)
    assert router.process is not None
    worker_pid = router.status_json("/varz")["workers"][0]["pid"]

    assert open_file_limits(router.process.pid) == (HARD, HARD)
    assert open_file_limits(worker_pid) == (HARD, HARD)
    (line,) = router.events_named("fd-limit")
    assert line["data"] == {"soft_before": SOFT, "hard_before": HARD, "soft": HARD, "hard": HARD}


def test_running_out_of_fds_on_accept_is_counted_logged_and_costs_no_connection(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = start_under_limits(routerd_factory)
    register(nats_client, backend.port, ["fds.example.com"])
    wait_routed(router, "fds.example.com")
    holders: list[socket.socket] = []
    waiting: socket.socket | None = None
    try:
        for _ in range(HOLDERS):
            holders.append(socket.create_connection(("127.0.0.1", router.port), timeout=10))
        (exhausted, *_) = wait_until(
            lambda: router.events_named("accept-fd-exhausted"),
            timeout=10,
            what="accept-fd-exhausted in the log",
        )
        assert exhausted["data"]["error"] == "Too many open files"
        assert exhausted["data"]["fd_limit"] == HARD
        # Queued behind the held ones, this request waits in the backlog instead of being reset.
        waiting = socket.create_connection(("127.0.0.1", router.port), timeout=20)
        waiting.sendall(request_bytes("fds.example.com"))
        failures = wait_until(
            lambda: (
                router.status_json("/varz")["accept_fd_exhausted"] >= 5
                and router.status_json("/varz")["accept_fd_exhausted"]
            ),
            timeout=10,
            what="/varz accept_fd_exhausted to count the failed accepts",
        )
        # Failed accepts are retried every 100 ms; the log has a line per interval, not each.
        assert len(router.events_named("accept-fd-exhausted")) < failures
        metrics = router.status_request("GET", "/metrics").text
        assert re.search(r"^routerd_accept_fd_exhausted_total [1-9]\d*$", metrics, re.M), metrics
    finally:
        for sock in holders:
            sock.close()
    assert waiting is not None
    with waiting:
        assert read_status_line(waiting) == b"HTTP/1.1 200 OK"
    # The end is logged once a whole interval (1 s here) has passed without a failure.
    ended = wait_until(
        lambda: router.events_named("accept-fd-exhaustion-ended"),
        timeout=10,
        what="accept-fd-exhaustion-ended in the log",
    )
    assert ended[0]["data"]["total"] >= failures
    for _ in range(5):
        assert router.get("/", host="fds.example.com").status == 200


INF = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    ("soft", "hard", "nr_open", "wanted"),
    [
        (1024, 524288, 1048576, 524288),  # a shell's soft limit under systemd's hard one
        (64, 64, 1048576, 64),  # nothing to raise
        (1024, INF, 1048576, 1048576),  # unlimited hard: the kernel's ceiling
        (1024, INF, None, 1024),  # and without /proc: leave it
        (INF, INF, 1048576, INF),  # already unlimited
    ],
)
def test_target_soft_limit(soft: int, hard: int, nr_open: int | None, wanted: int) -> None:
    assert target_soft_limit(soft, hard, nr_open) == wanted

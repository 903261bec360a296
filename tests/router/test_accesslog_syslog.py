"""Access log lines to syslog over a real UNIX datagram socket, in Go's log/syslog format."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.shm.counters import Stat
from router.accesslog_syslog import SyslogStream, SyslogUnreachable, connect, network_header
from tests.support.clock import ManualClock

LOCAL = re.compile(rb"^<6>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?P<tag>\S+)\[(?P<pid>\d+)\]: ")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "syslog.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_each_line_is_one_message_in_gos_local_format(daemon: tuple[socket.socket, str]) -> None:
    server, path = daemon
    stream = SyslogStream("unixgram", path, "vcap.gorouter", 0, 10.0)
    stream.send(
        [b'app.example.com - [2026-11-29T22:45:27.608509776Z] "GET / HTTP/1.1" 200', b"two"]
    )
    first, second = server.recv(65536), server.recv(65536)
    match = LOCAL.match(first)
    assert match, first
    assert (match["tag"], int(match["pid"])) == (b"vcap.gorouter", os.getpid())
    assert first[match.end() :] == (
        b'app.example.com - [2026-11-29T22:45:27.608509776Z] "GET / HTTP/1.1" 200\n'
    )
    assert second.endswith(b"]: two\n")
    stream.close()


def test_truncate_cuts_each_line(daemon: tuple[socket.socket, str]) -> None:
    server, path = daemon
    stream = SyslogStream("unixgram", path, "", 5, 10.0)
    stream.send([b"0123456789"])
    message = server.recv(65536)
    assert message.endswith(b"routerd[%d]: 01234\n" % os.getpid())  # no tag: the program's
    stream.close()


def test_a_missing_socket_loses_lines_counted_and_recovers(tmp_path: Path) -> None:
    path = str(tmp_path / "later.sock")
    stats = memoryview(bytearray(8 * (Stat.access_log_dropped_lines + 1))).cast("Q")
    clock = ManualClock(100.0)
    stream = SyslogStream("unixgram", path, "t", 0, 10.0, stats, clock)
    stream.send([b"a", b"b"])
    assert stats[Stat.access_log_dropped_lines] == 2
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        stream.send([b"c"])  # not retried before the interval is over
        assert stats[Stat.access_log_dropped_lines] == 3
        clock.now = 111.0
        stream.send([b"d"])
        assert server.recv(65536).endswith(b"]: d\n")
    finally:
        server.close()
        stream.close()


def test_the_local_socket_is_looked_for_where_go_looks() -> None:
    try:
        sock, local = connect("", "")
    except SyslogUnreachable as exc:
        assert str(exc).startswith("no local syslog socket (/dev/log: ")
    else:
        sock.close()
        assert local


def test_network_format_has_rfc3339_time_and_host() -> None:
    header = network_header("vcap.gorouter", 42, "router-0", 1_700_000_000.0)
    assert re.fullmatch(
        rb"<6>2023-11-1\dT\d\d:\d\d:20(Z|[+-]\d\d:\d\d) router-0 vcap.gorouter\[42\]: ", header
    )

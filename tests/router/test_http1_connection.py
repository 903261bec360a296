"""A client connection on its own: requests fed to it whole and byte by byte, without sockets,
served by stand-in exchanges (or, where a test says so, the real ones over an in-memory route
table). What the client is sent, and what reaches the exchanges, is what the tests look at."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from registry.lookup import RouteLookup
from registry.shm.counters import CounterTable, Stat, counters_size
from registry.shm.region import MemoryRegion, Region
from registry.shm.writer import initial_size
from router.client_deadlines import BODY, HEADER, NONE, ClientDeadlines
from router.health import WorkerHealth
from router.http1.connection import PIPELINE_DEPTH, ClientConnection
from router.http1.exchange import Http1Exchange
from router.http1.rules import HEAD_SLACK, Limits, head_size
from router.http1.server import Http1Server
from router.http1.states import IllegalTransition, State
from router.proxy import Proxy
from router.upstream_pool import UpstreamPool
from runtime import logs
from runtime.config import load_config_text
from tests.registry.tables import SharedTable

LIMIT = 4096


class _Transport:
    """Just enough of a transport: records what is written, paused and closed."""

    def __init__(self, events: list[tuple[str, Any]]) -> None:
        self.events = events
        self.closed = False
        self.paused = False
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written += data
        status = int(data[9:12])
        if status != 404:  # the stand-in proxy's own answer
            self.events.append(("refused", status))


def worker_proxy(lookup: RouteLookup | None = None) -> Proxy:
    """A worker's proxy core with the default config, its own counters in memory and no access
    log; routes from `lookup` (none by default). Its answers (no http_rewrite, no error page)
    go out as made."""
    counters = CounterTable.format(MemoryRegion(counters_size(1, 16)), 1, 16)
    upstream = UpstreamPool(
        dial_timeout=1.0,
        idle_timeout=1.0,
        max_idle_per_endpoint=1,
        keepalive_interval=0.0,
        tls_context=None,
    )
    return Proxy(
        load_config_text(""),
        lookup or SharedTable().lookup,
        counters.row(0),
        WorkerHealth(counters, 0, 1.0),
        upstream,
        None,
    )


class _Exchanges:
    """Stands in for the proxy's exchanges: each answers 404 at once (`hold`: stays in flight
    instead), recording what reached it and how it ended."""

    def __init__(self, events: list[tuple[str, Any]]) -> None:
        self.events = events
        self.hold = False
        self.finished: list[int] = []

    def __call__(self, conn: ClientConnection, msg: Any, payload: Any) -> _StandIn:
        return _StandIn(self, conn, msg)


class _StandIn:
    def __init__(self, exchanges: _Exchanges, conn: ClientConnection, msg: Any) -> None:
        self.exchanges = exchanges
        self.conn = conn
        self.msg = msg

    def start(self) -> None:
        self.exchanges.events.append(("request", self.msg.path))
        if self.exchanges.hold:
            return
        self.conn.write_soon(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        self.exchanges.finished.append(404)
        self.conn.exchange_done(self.conn.is_keep_alive(self.msg))

    def client_gone(self) -> None:
        self.exchanges.finished.append(499)


def serve(events: list[tuple[str, Any]], proxy: Proxy, exchanges: Any) -> ClientConnection:
    deadlines = ClientDeadlines(0.5, 0.5, proxy.row.stats)
    server = Http1Server(proxy, Limits(LIMIT, 16), deadlines, 5.0, exchanges)
    conn = ClientConnection(server)
    conn.connection_made(_Transport(events))  # type: ignore[arg-type]
    return conn


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[tuple[ClientConnection, _Exchanges, list[tuple[str, Any]]]]:
    events: list[tuple[str, Any]] = []
    exchanges = _Exchanges(events)
    conn = serve(events, worker_proxy(), exchanges)
    yield conn, exchanges, events
    if conn.state is not State.CLOSED:
        conn.connection_lost(None)
    conn.server.deadlines.close()


def feed(conn: ClientConnection, data: bytes, one_byte: bool) -> None:
    if one_byte:
        for index in range(len(data)):
            conn.data_received(data[index : index + 1])
    else:
        conn.data_received(data)


GOOD = b"GET /good HTTP/1.1\r\nHost: a.example.com\r\nX-A: b\r\n\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("one_byte", [False, True], ids=["whole", "byte-by-byte"])
async def test_a_good_request_is_served_once(setup, one_byte):
    conn, exchanges, events = setup
    feed(conn, GOOD, one_byte)
    assert events == [("request", "/good")]
    assert exchanges.finished == [404]
    assert conn.deadline_kind == NONE  # no deadline left armed once the head is complete
    assert conn.state is State.IDLE


@pytest.mark.asyncio
async def test_pipelined_requests_are_served_in_order(setup):
    conn, _, events = setup
    conn.data_received(b"".join(GOOD.replace(b"/good", b"/%d" % i) for i in range(5)))
    assert events == [("request", f"/{i}") for i in range(5)]


@pytest.mark.asyncio
async def test_a_full_pipeline_stops_reading_until_it_drains(setup):
    conn, exchanges, events = setup
    exchanges.hold = True  # the first request stays in flight; the rest queue behind it
    conn.data_received(GOOD * (PIPELINE_DEPTH + 2))
    transport = conn.transport
    assert transport.paused  # type: ignore[union-attr]
    assert events == [("request", "/good")]


@pytest.mark.asyncio
@pytest.mark.parametrize("one_byte", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # Whole, the next request's bytes are in the same read: llhttp refuses that read (400).
        (b"GET /v HTTP/2.0\r\nHost: a\r\n\r\n", (400, 505)),
        (b"GET /v HTTP/9.9\r\nHost: a\r\n\r\n", 400),  # llhttp's own refusal
        (b"GET /v HTTP/1.2\r\nHost: a\r\n\r\n", 400),
        (b"GET /v\r\nHost: a\r\n\r\n", 400),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400),
        (b"POST /t HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * LIMIT + b"\r\n\r\n", 431),
    ],
    ids=[
        "http-2.0",
        "http-9.9",
        "http-1.2",
        "http-0.9",
        "connect",
        "te-http10",
        "te-gzip-chunked",
        "too-large",
    ],
)
async def test_refused_requests_are_answered_in_their_place(setup, request_bytes, status, one_byte):
    conn, _, events = setup
    feed(conn, GOOD + request_bytes + GOOD, one_byte)
    # The refused request is answered and nothing after it is served. The good one before it is
    # served, unless it came in the same read as a request llhttp itself ends the connection
    # after (HTTP/1.0 and 0.9 ones): the parser then refuses the whole read.
    if isinstance(status, tuple):
        status = status[one_byte]
    assert events[-1] == ("refused", status)
    if one_byte:
        assert events[:-1] == [("request", "/good")]
    else:
        assert events[:-1] in ([("request", "/good")], [])
    assert conn.state is State.CLOSING  # what the client still sends is dropped, then closed


@pytest.mark.asyncio
async def test_an_endless_head_is_refused_while_it_is_still_arriving(setup):
    conn, _, events = setup
    # Lines under the parser's own per-line limit, fewer than max_headers when refused: only
    # the total counts against them.
    head = b"GET /endless HTTP/1.1\r\nHost: a\r\n" + (b"X-Pad: " + b"p" * 600 + b"\r\n") * 15
    fed = 0
    while not events and fed < len(head):
        conn.data_received(head[fed : fed + 1])
        fed += 1
    assert events == [("refused", 431)]
    # Refused once the bytes are past the limit and its slack, before the head ends.
    assert fed <= LIMIT + HEAD_SLACK + 1 < len(head)


@pytest.mark.asyncio
async def test_a_partial_head_arms_the_header_deadline(setup):
    conn, _, _ = setup
    conn.data_received(GOOD[:10])
    assert conn.deadline_kind == HEADER
    assert conn.state is State.READING
    conn.data_received(GOOD[10:])
    assert conn.deadline_kind == NONE


@pytest.mark.asyncio
async def test_a_head_begun_after_a_request_in_the_same_read_arms_the_header_deadline(setup):
    conn, _, events = setup
    conn.data_received(GOOD + GOOD[:10])
    assert events == [("request", "/good")]
    assert conn.deadline_kind == HEADER
    conn.data_received(GOOD[10:])
    assert events == [("request", "/good"), ("request", "/good")]
    assert conn.deadline_kind == NONE


@pytest.mark.asyncio
async def test_an_incomplete_body_arms_the_body_deadline(setup):
    conn, exchanges, _ = setup
    exchanges.hold = True
    conn.data_received(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n12345")
    assert conn.deadline_kind == BODY
    conn.data_received(b"6" * (100000 - 5))
    assert conn.deadline_kind == NONE


def test_head_size_counts_as_gorouter_does() -> None:
    class Message:
        method = "GET"
        path = "/abc"
        version = (1, 1)
        chunked = False
        raw_headers = ((b"Host", b"a.example.com"), (b"X-A", b"b"))

    # "GET /abc HTTP/1.1\r\n" + "Host: a.example.com\r\n" + "X-A: b\r\n"
    assert head_size(Message()) == 19 + 21 + 8


@pytest.mark.asyncio
async def test_slow_head_is_closed_by_the_deadline(setup):
    conn, _, _ = setup
    conn.data_received(GOOD[:10])
    transport = conn.transport
    for _ in range(200):  # bounded: the deadline is 0.5 s, checked every 0.05 s
        if transport.closed:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    assert transport.closed  # type: ignore[union-attr]


class _FailingRegion:
    """The route table's memory, failing in a way nobody expected once `failing` is set."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.failing = False

    @property
    def buffer(self) -> memoryview:
        if self.failing:
            raise RuntimeError("routing bug")
        return self.region.buffer

    def remap(self, size: int) -> None:
        self.region.remap(size)


@pytest.mark.asyncio
async def test_an_unexpected_error_settles_the_exchange_and_closes(monkeypatch):
    lines = io.BytesIO()
    monkeypatch.setattr(logs._sink, "stream", lines)
    events: list[tuple[str, Any]] = []
    region = MemoryRegion(initial_size(8))
    failing = _FailingRegion(region)
    table = SharedTable(8, region=region, reader_region=failing)
    table.register("a.example.com")
    table.publish()
    failing.failing = True  # the request's lookup reads the shard it is in
    proxy = worker_proxy(table.lookup)
    conn = serve(events, proxy, Http1Exchange)  # the real exchange and proxy core
    try:
        conn.data_received(GOOD)
        stats = proxy.row.stats
        assert (stats[Stat.requests], stats[Stat.responses_5xx], stats[Stat.in_flight]) == (1, 1, 0)
        assert conn.transport.closed  # type: ignore[union-attr]
        line = json.loads(lines.getvalue().splitlines()[-1])
        assert line["message"] == "exchange-failed"
        assert "routing bug" in line["data"]["error"]
    finally:
        conn.connection_lost(None)
        conn.server.deadlines.close()


@pytest.mark.asyncio
async def test_a_client_that_leaves_mid_exchange_is_a_499(setup):
    # The exchange's side of it (a 499 logged, the backend freed) is test_accesslog's.
    conn, exchanges, _ = setup
    exchanges.hold = True
    conn.data_received(GOOD)
    conn.connection_lost(None)
    assert exchanges.finished == [499]
    assert conn.state is State.CLOSED


@pytest.mark.asyncio
async def test_the_state_table_refuses_what_it_does_not_list(setup):
    conn, _, _ = setup
    conn.connection_lost(None)
    assert conn.state is State.CLOSED
    with pytest.raises(IllegalTransition):
        conn._to(State.EXCHANGE)

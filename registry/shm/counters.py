"""Per-worker counter rows in shared memory: single writer per row, readers sum the rows.

    [ header: 4 KiB ][ row 0 ][ row 1 ] ... [ row W-1 ][ supervisor row ]
    row = [ STAT_WORDS request/response counters ][ one in-flight counter per endpoint slot ]
          [ one routed-request counter per endpoint slot ]

The request/response counters are the `Stat` words, then one block of `COMPONENT_WORDS` per
component id (registry/components.py): what Gorouter reports per `component` tag.

Each worker writes only its own row (plain 8-byte stores, no atomics). The global in-flight count
of an endpoint is the sum of its slot over the worker rows; that is how `max_conns` and
least-connection hold across workers without locks. A worker checks the sum and then increments
its own cell with no await in between, so concurrent workers can overshoot a limit by at most one
request each: at most `max_conns + workers - 1` in flight.

The supervisor row reuses the slot area for each endpoint's last-seen time (Unix ms), so
`routerctl routes --from-shm` can show time-to-live without the supervisor. The per-slot
routed-request counters say which apps get the traffic (/varz `top10_app_requests`); a slot
reused by another endpoint keeps counting from where it was, so readers take differences.

The file is sparse: only touched pages take memory. A respawned worker's in-flight cells are
zeroed by the supervisor before the new process starts (its requests died with it); its request
counters are kept, so totals never go backwards.
"""

from __future__ import annotations

import bisect
import sys
import time
from array import array
from collections.abc import Sequence
from typing import Final, Protocol

from registry.shm import layout as L
from registry.shm.region import Region

COUNTER_MAGIC: Final = int.from_bytes(b"RTRCNT01", sys.byteorder)
COUNTER_VERSION: Final = 2

C_MAGIC, C_VERSION, C_ROWS, C_SLOTS, C_ROW_WORDS, C_CREATED_MS = range(6)


class Stat:
    """Indexes of the request/response counters in each worker row.

    Plain ints, not an Enum: workers index their row with these on every request, and an
    Enum member costs an attribute lookup through the metaclass plus __index__ each time.
    """

    requests: Final = 0
    responses_1xx: Final = 1
    responses_2xx: Final = 2
    responses_3xx: Final = 3
    responses_4xx: Final = 4
    responses_5xx: Final = 5
    responses_xxx: Final = 6
    bad_requests: Final = 7
    bad_gateways: Final = 8
    client_closed: Final = 9
    retries: Final = 10
    failed_attempts: Final = 11
    unknown_route: Final = 12
    no_endpoints: Final = 13
    connection_limit: Final = 14
    empty_host: Final = 15
    invalid_app_instance: Final = 16
    error_dial: Final = 17
    error_reset: Final = 18
    error_timeout: Final = 19
    error_closed: Final = 20
    error_bad_response: Final = 21
    error_tls_handshake: Final = 22
    error_tls_untrusted: Final = 23
    error_tls_hostname: Final = 24
    error_tls_client_cert: Final = 25
    websocket_upgrades: Final = 26
    upstream_connects: Final = 27
    upstream_reuses: Final = 28
    bytes_received: Final = 29
    bytes_sent: Final = 30
    response_time_us_total: Final = 31
    # Response-time histogram buckets (cumulative counts are derived when read).
    latency_le_1ms: Final = 32
    latency_le_5ms: Final = 33
    latency_le_10ms: Final = 34
    latency_le_25ms: Final = 35
    latency_le_50ms: Final = 36
    latency_le_100ms: Final = 37
    latency_le_250ms: Final = 38
    latency_le_500ms: Final = 39
    latency_le_1s: Final = 40
    latency_le_2500ms: Final = 41
    latency_le_5s: Final = 42
    latency_le_10s: Final = 43
    latency_inf: Final = 44
    error_other: Final = 45
    pruned_endpoints: Final = 46
    in_flight: Final = 47  # a gauge: requests being proxied by this worker now
    route_service_failures: Final = 48
    malformed_host: Final = 49  # 400: a Host header with bytes no host can hold
    # Client-side limits and timeouts (a block of their own, away from the indexes above).
    max_request_size_exceeded: Final = 64  # 431 (and 414 for an overlong request line)
    client_header_timeouts: Final = (
        65  # closed: no complete request head within read_header_timeout
    )
    client_body_timeouts: Final = 66  # closed: the request body stalled for request_body_timeout
    access_log_write_errors: Final = 67  # failed writes to the access log (calls, not lines)
    access_log_dropped_lines: Final = 68  # access log lines lost to those failures
    # accept() calls that failed with EMFILE/ENFILE; pending connections wait in the backlog.
    accept_fd_exhausted: Final = 69
    # Load balancers' health checks (`healthcheck_user_agent`) the router answered itself.
    lb_health_checks: Final = 70
    # Component log lines the worker wrote, by level (/varz `log_counts`, with the supervisor's).
    log_lines_debug: Final = 71
    log_lines_info: Final = 72
    log_lines_warn: Final = 73
    log_lines_error: Final = 74
    log_lines_fatal: Final = 75
    # TLS clients refused by verify_client_certificate_metadata, after the handshake.
    client_cert_refused: Final = 76


# The log_lines_* counters by level name (the names of `logging.level`).
LOG_LINE_STATS: Final = {
    "debug": Stat.log_lines_debug,
    "info": Stat.log_lines_info,
    "warn": Stat.log_lines_warn,
    "error": Stat.log_lines_error,
    "fatal": Stat.log_lines_fatal,
}


# Gorouter's Prometheus `latency` histogram, in ms: the bucket bounds of the sample scrape in
# routing-release's observability docs (docs/04-observability.md).
GOROUTER_LATENCY_BOUNDS_US: Final = (
    1_000, 2_000, 4_000, 6_000, 8_000, 10_000, 20_000, 40_000, 50_000,
    100_000, 500_000, 1_000_000,
)  # fmt: skip

# One block per component id: responses by Gorouter's status group (their sum is the routed
# requests: one word fewer to write per request), the latency histogram (counts per bucket, the
# last one past every bound) and its sum.
C_RESPONSES: Final = 0  # 2xx, 3xx, 4xx, 5xx, then xxx (everything else, 1xx included)
STATUS_GROUPS: Final = 5
C_LATENCY: Final = C_RESPONSES + STATUS_GROUPS
C_LATENCY_SUM_US: Final = C_LATENCY + len(GOROUTER_LATENCY_BOUNDS_US) + 1
COMPONENT_WORDS: Final = C_LATENCY_SUM_US + 1
MAX_COMPONENTS: Final = 32
COMPONENT_BASE: Final = 128  # after every Stat index
STAT_WORDS: Final = COMPONENT_BASE + MAX_COMPONENTS * COMPONENT_WORDS
# Status class (status // 100) → offset in a component block's responses.
_STATUS_GROUP: Final = (4, 4, 0, 1, 2, 3, 4, 4, 4, 4)

LATENCY_BOUNDS_US: Final = (
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
)  # fmt: skip


def row_words(slots: int) -> int:
    return L.round_up((STAT_WORDS + 2 * slots) * L.WORD, L.PAGE) // L.WORD


def counters_size(workers: int, slots: int) -> int:
    return L.PAGE + (workers + 1) * row_words(slots) * L.WORD


class CounterTable:
    """All rows; a worker takes its own with `row(index)`."""

    def __init__(self, region: Region) -> None:
        self._region = region
        words = region.buffer.cast("Q")
        if words[C_MAGIC] != COUNTER_MAGIC or words[C_VERSION] != COUNTER_VERSION:
            raise ValueError("not a counters file (bad magic or version)")
        self.workers = int(words[C_ROWS]) - 1
        self.slots = int(words[C_SLOTS])
        self._row_words = int(words[C_ROW_WORDS])
        self._words = words
        self._rows = [self._row_view(r) for r in range(self.workers + 1)]
        self._inflight = [row[STAT_WORDS : STAT_WORDS + self.slots] for row in self._rows]
        self._routed = [
            row[STAT_WORDS + self.slots : STAT_WORDS + 2 * self.slots] for row in self._rows
        ]

    def __repr__(self) -> str:
        return f"CounterTable(workers={self.workers}, slots={self.slots})"

    @classmethod
    def format(cls, region: Region, workers: int, slots: int) -> CounterTable:
        words = region.buffer.cast("Q")
        words[C_ROWS] = workers + 1
        words[C_SLOTS] = slots
        words[C_ROW_WORDS] = row_words(slots)
        words[C_CREATED_MS] = int(time.time() * 1000)
        words[C_VERSION] = COUNTER_VERSION
        words[C_MAGIC] = COUNTER_MAGIC
        return cls(region)

    def _row_view(self, row: int) -> memoryview:
        start = L.PAGE // L.WORD + row * self._row_words
        return self._words[start : start + self._row_words]

    def row(self, worker: int) -> CounterRow:
        return CounterRow(
            worker, self._rows[worker][:STAT_WORDS], self._inflight[worker], self._routed[worker]
        )

    @property
    def supervisor_row(self) -> memoryview:
        """The supervisor's row; its slot area holds last-seen times (Unix ms)."""
        return self._inflight[self.workers]

    def in_flight(self, slot: int) -> int:
        """Requests in flight to the endpoint in `slot`, summed over every worker."""
        total = 0
        for row in self._inflight[: self.workers]:
            total += row[slot]
        return total

    def routed_totals(self, limit: int) -> array[int]:
        """Requests ever routed to each slot below `limit`, summed over every worker."""
        limit = min(limit, self.slots)
        rows = [row[:limit] for row in self._routed[: self.workers]]
        if not rows:
            return array("Q", bytes(limit * L.WORD))
        return array("Q", map(sum, zip(*rows, strict=True)))

    def stat_totals(self) -> list[int]:
        totals = [0] * STAT_WORDS
        for row in self._rows[: self.workers]:
            for index, value in enumerate(row[:STAT_WORDS]):
                totals[index] += value
        return totals

    def stats_of(self, worker: int) -> list[int]:
        return list(self._rows[worker][:STAT_WORDS])

    def row_byte_range(self, worker: int) -> tuple[int, int]:
        """Byte offset and length of a worker's in-flight cells (page-aligned start)."""
        start = L.PAGE + worker * self._row_words * L.WORD
        return start, self._row_words * L.WORD

    def clear_in_flight(self, worker: int) -> None:
        """Zero a dead worker's in-flight cells before its replacement starts (its routed-request
        counts are kept, like its other request counters)."""
        cells = self._inflight[worker]
        punch = getattr(self._region, "punch_hole", None)
        row_start, _ = self.row_byte_range(worker)
        start = row_start + STAT_WORDS * L.WORD
        end = start + self.slots * L.WORD
        # Whole pages inside the cells go back to the kernel and read as zeros again.
        first_page = L.round_up(start, L.PAGE)
        last_page = end // L.PAGE * L.PAGE
        head, tail = len(cells), len(cells)
        if punch is not None and last_page > first_page:
            try:
                punch(first_page, last_page - first_page)
                head = (first_page - start) // L.WORD
                tail = (last_page - start) // L.WORD
            except OSError:
                pass  # no hole punching on this filesystem: zero by hand
        for slot in range(head):
            cells[slot] = 0
        for slot in range(tail, len(cells)):
            cells[slot] = 0


class CounterRow:
    """One worker's row: it is the only writer of these cells."""

    def __init__(
        self, worker: int, stats: memoryview, inflight: memoryview, routed: memoryview
    ) -> None:
        self.worker = worker
        self.stats = stats
        self.inflight = inflight
        self.routed = routed

    def __repr__(self) -> str:
        return f"CounterRow(worker={self.worker}, requests={self.stats[Stat.requests]})"

    def add(self, stat: int, amount: int = 1) -> None:
        self.stats[stat] += amount

    def count_routed(
        self, endpoint: RoutedEndpoint | None, failed: RoutedPool | None, status: int, micros: int
    ) -> None:
        """A settled request that reached a backend: its component's request, status group and
        latency, and its endpoint slot's count. `endpoint` is the one that answered; when every
        attempt failed it is None and `failed` is the pool tried, whose component the failure
        counts under (as Gorouter counts it under the last endpoint tried). Both None: the router
        answered the request itself, and Gorouter counts none of this."""
        if endpoint is None:
            if failed is None or not failed.endpoints:
                return
            component = failed.endpoints[0].component
        else:
            component = endpoint.component
            self.routed[endpoint.slot] += 1
        stats = self.stats
        base = COMPONENT_BASE + component * COMPONENT_WORDS
        stats[base + C_RESPONSES + _STATUS_GROUP[status // 100 % 10]] += 1
        stats[base + C_LATENCY + bisect.bisect_left(GOROUTER_LATENCY_BOUNDS_US, micros)] += 1
        stats[base + C_LATENCY_SUM_US] += micros


class RoutedEndpoint(Protocol):
    """What `count_routed` reads of an endpoint (registry/records.py's EndpointRecord)."""

    @property
    def slot(self) -> int: ...

    @property
    def component(self) -> int: ...


class RoutedPool(Protocol):
    """What `count_routed` reads of a pool (registry/records.py's PoolRecord)."""

    @property
    def endpoints(self) -> Sequence[RoutedEndpoint]: ...

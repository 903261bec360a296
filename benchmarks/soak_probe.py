"""The harness's own requests to routerd: probes of due routes, keep-alive rounds, status reads.

Probes walk the due routes in turn, a few lanes at `rate` per second, so every route the book
expects is asked for again and again while faults come and go; a probe that is not answered
2xx is a failure, recorded with its time. Keep-alive rounds target the backend that closes
idle keep-alive connections after `idle` seconds: each round sends `lanes` requests at once
(so routerd holds as many pooled connections to it), then waits `idle` plus an offset that
sweeps across ±OFFSET_SPREAD, so routerd reuses a pooled connection just before, at and just
after the moment the backend closes it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from benchmarks.soak_client import Connection, Reply
from benchmarks.soak_routes import Route, RouteBook
from benchmarks.soak_verdict import Failure, classify

REQUEST_TIMEOUT = 10.0
STATUS_TIMEOUT = 5.0
OFFSET_SPREAD = 0.03
OFFSET_STEPS = 25
SWEEP_CONCURRENCY = 16


class Prober:
    def __init__(self, port: int, status_port: int, auth: tuple[str, str]) -> None:
        self.port = port
        self.status_port = status_port
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.authorization = {"Authorization": f"Basic {token}"}
        self.failures: list[Failure] = []
        self.counts = {"probe": 0, "keepalive": 0, "final": 0}
        self.failed = dict.fromkeys(self.counts, 0)

    def __repr__(self) -> str:
        return f"Prober(127.0.0.1:{self.port}, {self.counts}, {len(self.failures)} failures)"

    def connection(self) -> Connection:
        return Connection(self.port, REQUEST_TIMEOUT)

    def record(self, source: str, host: str, reply: Reply, at: float) -> bool:
        """Count one request; keep it as a failure unless it was 2xx. True when it was."""
        self.counts[source] += 1
        outcome = classify(reply.status, reply.router_error, reply.error)
        if outcome is None:
            return True
        self.failed[source] += 1
        self.failures.append(Failure(at, source, outcome[0], host, outcome[1]))
        return False

    # -- probes of due routes ----------------------------------------------------------------

    async def probe_forever(self, book: RouteBook, rate: float, lanes: int) -> None:
        """Until cancelled: every due route in turn, `rate` probes per second in all."""
        queue: list[Route] = []

        def next_route() -> Route | None:
            if not queue:
                queue.extend(book.due(time.monotonic()))
                queue.reverse()
            return queue.pop() if queue else None

        await asyncio.gather(*(self._probe_lane(next_route, lanes / rate) for _ in range(lanes)))

    async def _probe_lane(self, next_route: Callable[[], Route | None], interval: float) -> None:
        connection = self.connection()
        due = time.monotonic()
        try:
            while True:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                due = max(due + interval, time.monotonic())
                route = next_route()
                sent = time.monotonic()
                # A route may stop being due while queued or in flight (a churn began): then
                # its answer says nothing about routerd.
                if route is None or not route.is_due(sent):
                    continue
                reply = await connection.request(route.host)
                if route.is_due(time.monotonic()):
                    self.record("probe", route.host, reply, sent)
        finally:
            connection.close()

    # -- keep-alive rounds -------------------------------------------------------------------

    async def keepalive_rounds(self, host: str, idle: float, lanes: int, seconds: float) -> int:
        """Rounds spaced around the backend's idle close for `seconds`; returns rounds done."""
        offsets = [
            -OFFSET_SPREAD + 2 * OFFSET_SPREAD * step / (OFFSET_STEPS - 1)
            for step in range(OFFSET_STEPS)
        ]
        deadline = time.monotonic() + seconds
        connections = [self.connection() for _ in range(lanes)]
        rounds = 0
        try:
            for offset in itertools.cycle(offsets):
                sent = time.monotonic()
                replies = await asyncio.gather(*(c.request(host) for c in connections))
                for reply in replies:
                    self.record("keepalive", host, reply, sent)
                rounds += 1
                if time.monotonic() + idle + offset >= deadline:
                    break
                await asyncio.sleep(idle + offset)
        finally:
            for connection in connections:
                connection.close()
        return rounds

    # -- the end: every due route once -------------------------------------------------------

    async def sweep(self, hosts: list[str]) -> list[str]:
        """Ask for each host once; returns those not answered 2xx."""
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(SWEEP_CONCURRENCY):
            idle.put_nowait(self.connection())

        async def one(host: str) -> str | None:
            connection = await idle.get()
            try:
                sent = time.monotonic()
                reply = await connection.request(host)
            finally:
                idle.put_nowait(connection)
            return None if self.record("final", host, reply, sent) else host

        try:
            return [host for host in await asyncio.gather(*map(one, hosts)) if host is not None]
        finally:
            while not idle.empty():
                idle.get_nowait().close()

    # -- routerd's status server -------------------------------------------------------------

    async def status_json(self, path: str) -> Any:
        """/varz or /routes as JSON; None when the status server does not answer 200."""
        connection = Connection(self.status_port, STATUS_TIMEOUT)
        try:
            reply = await connection.request("127.0.0.1", path, self.authorization)
        finally:
            connection.close()
        if reply.status != 200:
            return None
        try:
            return json.loads(reply.body)
        except ValueError:
            return None

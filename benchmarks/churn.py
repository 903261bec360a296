"""Register→routable under churn: while one NATS connection pours registration churn into
routerd at a fixed rate, new routes are registered now and then on the same connection, and we
time each from its publish until a reader of the shared table (as a worker reads it) finds it.

The churn is what a busy foundation sends: mostly heartbeats of routes routerd already has, and
a share of registrations that change something (an app instance's index moves), each of which
dirties a shard and is logged. Sent on the same connection, a probe queues behind whatever churn
routerd has not read yet, as a real registration does.

One synchronous loop does everything, a tick at a time: send the churn that is due (the NATS
text protocol over a plain socket, so the sender costs little CPU next to routerd), send a probe
when one is due, answer the server's PINGs, and look up every probe not yet seen. The churn runs
for `seconds`; probes still unseen then get `probe_timeout` more, so the run always ends.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass
from typing import Any, Final

from benchmarks.processes import BenchmarkError
from benchmarks.table_build import endpoint_address, route_host
from registry.lookup import RouteLookup
from registry.records import PoolRecord

SUBJECT: Final = b"router.register"
TICK_SECONDS: Final = 0.002
PROBE_FAMILY: Final = "probe"


@dataclass(frozen=True)
class ChurnSettings:
    rate: int  # churn messages per second
    seconds: float
    probe_interval: float
    probe_timeout: float
    change_every: int  # every n-th churn message changes its endpoint (0: heartbeats only)


def frame(payload: bytes) -> bytes:
    return b"PUB %s %d\r\n%s\r\n" % (SUBJECT, len(payload), payload)


def churn_frames(routes: int, family: str, change_every: int) -> list[bytes]:
    """One round of churn over `routes` routes registered as `registration(index, 0, family)`:
    heartbeats, and every `change_every`-th one an endpoint whose instance index changed."""
    frames = []
    for index in range(routes):
        host, port = endpoint_address(index, 0)
        message: dict[str, object] = {
            "host": host,
            "port": port,
            "uris": [route_host(index, family)],
        }
        if change_every and index % change_every == change_every - 1:
            message["private_instance_index"] = str(index)
        frames.append(frame(json.dumps(message, separators=(",", ":")).encode()))
    if change_every:
        # The same routes changed back, so every round changes them again.
        frames += churn_frames(routes, family, 0)
    return frames


def probe_frame(index: int) -> tuple[str, bytes]:
    host = route_host(index, PROBE_FAMILY)
    message = {"host": "127.0.0.2", "port": 9000 + index % 50_000, "uris": [host]}
    return host, frame(json.dumps(message, separators=(",", ":")).encode())


def is_routable(lookup: RouteLookup, host: str) -> bool:
    pool = lookup.find(host, "/")
    return isinstance(pool, PoolRecord) and bool(pool.endpoints)


class NatsSender:
    """A publisher speaking the NATS text protocol: no acks, PINGs answered."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        greeting = self.sock.recv(4096)
        if not greeting.startswith(b"INFO "):
            raise BenchmarkError("nats-server did not greet")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"churn"}\r\n')
        self.sock.setblocking(False)
        self._pending = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def answer_pings(self) -> None:
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchmarkError("nats-server closed the churn connection")
            if b"-ERR" in chunk:
                raise BenchmarkError(f"nats-server refused churn: {chunk[:200]!r}")
            self._pending += chunk
            pings = self._pending.count(b"PING\r\n")
            self._pending = self._pending.rsplit(b"\r\n", 1)[-1]
            if pings:
                self.send(b"PONG\r\n" * pings)


def run_churn(
    nats_port: int,
    lookup: RouteLookup,
    frames: list[bytes],
    settings: ChurnSettings,
) -> dict[str, Any]:
    sender = NatsSender(nats_port)
    sent = probes_sent = 0
    waiting: dict[str, float] = {}
    latencies: list[float] = []
    try:
        started = time.perf_counter()
        churn_end = started + settings.seconds
        give_up = churn_end + settings.probe_timeout
        next_probe = started + settings.probe_interval
        while (now := time.perf_counter()) < give_up:
            if now < churn_end:
                due = int((now - started) * settings.rate)
                if due > sent:
                    sender.send(b"".join(frames[i % len(frames)] for i in range(sent, due)))
                    sent = due
                if now >= next_probe:
                    host, data = probe_frame(probes_sent)
                    sender.send(data)
                    waiting[host] = time.perf_counter()
                    probes_sent += 1
                    next_probe += settings.probe_interval
            elif not waiting:
                break
            sender.answer_pings()
            for host in [host for host in waiting if is_routable(lookup, host)]:
                latencies.append(time.perf_counter() - waiting.pop(host))
            time.sleep(TICK_SECONDS)
        churn_seconds = min(time.perf_counter(), churn_end) - started
    finally:
        sender.close()
    latencies.sort()
    return {
        "target_msgs_per_s": settings.rate,
        "seconds": settings.seconds,
        "sent": sent,
        "msgs_per_s": round(sent / churn_seconds) if churn_seconds > 0 else 0,
        "probes": probes_sent,
        "probes_unseen": len(waiting),
        "routable_ms": {
            "p50": percentile_ms(latencies, 0.50),
            "p99": percentile_ms(latencies, 0.99),
            "max": round(1000 * latencies[-1], 1) if latencies else None,
        },
    }


def percentile_ms(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return round(1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)

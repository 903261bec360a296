"""The open-loop load generator: build it, run it, read its report.

`loadgen.c` is compiled into the benchmark's temp dir when a C compiler is present (it paces
tens of thousands of requests per second with microseconds of send lag). Without one, the same
schedule runs in Python here (`python -m benchmarks.loadgen PORT HOST PATH RATE SECONDS CONNS
[WARMUP]`), which paces only a few thousand requests per second accurately; the report says
which one ran, and its achieved rate and send lag show how well it kept the schedule.

Both send request k at start + k / rate on the first idle keep-alive connection and measure its
latency from that scheduled time, so a stall shows up as the queue real clients would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError
from benchmarks.proxies import repo_root, start_backend
from tests.support.launcher import ProcessGroup

SOURCE = Path(__file__).resolve().parent / "loadgen.c"
DRAIN_SECONDS = 2.0
CDF_QUANTILES = [i / 100 for i in range(1, 100)] + [0.995, 0.999, 0.9995, 0.9999, 1.0]


def build(workdir: Path) -> Path | None:
    """Compile loadgen.c into `workdir`; None when there is no C compiler (or it fails)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = workdir / "loadgen"
    argv = [compiler, "-O2", "-o", str(binary), str(SOURCE), "-lm"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return binary if done.returncode == 0 else None


def run(
    binary: Path | None,
    port: int,
    host: str,
    rate: float,
    seconds: float,
    connections: int,
    warmup: float = 0.0,
    path: str = "/",
) -> dict[str, Any]:
    """One paced run; the report of loadgen.c (or of the Python fallback) as a dict."""
    args = [str(port), host, path, f"{rate:.1f}", f"{seconds:g}", str(connections), f"{warmup:g}"]
    if binary is not None:
        argv, kind = [str(binary), *args], "c"
    else:
        argv, kind = [sys.executable, "-m", "benchmarks.loadgen", *args], "python"
    timeout = seconds + warmup + DRAIN_SECONDS + 30
    try:
        done = subprocess.run(
            argv, cwd=repo_root(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"load generator did not finish: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed ({done.returncode}): {done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    report["generator"] = kind
    return report


def calibrate(rates: list[float], seconds: float, connections: int, python: bool) -> list[str]:
    """Pace the bare nginx backend at each rate: how closely does the generator keep the
    schedule on this machine? Lines to print."""
    with tempfile.TemporaryDirectory(prefix="routerd-loadgen-") as directory:
        workdir = Path(directory)
        binary = None if python else build(workdir)
        kind = "C" if binary else "Python"
        lines = [
            f"{kind} generator against the nginx backend, {connections} connections, "
            f"{seconds:g} s per rate",
            f"{'target/s':>10} {'achieved/s':>11} {'kept':>6} {'lag p50 us':>11} "
            f"{'lag p99 us':>11} {'lat p50 us':>11} {'lat p99 us':>11}",
        ]
        with ProcessGroup(workdir) as group:
            backend = start_backend(group)
            for rate in rates:
                report = run(binary, backend.port, backend.host, rate, seconds, connections, 0.5)
                lag, lat = report["send_lag_us"], report["latency_us"]
                lines.append(
                    f"{rate:>10,.0f} {report['achieved_rps']:>11,.0f} "
                    f"{report['achieved_rps'] / rate:>6.1%} {lag['p50']:>11.0f} "
                    f"{lag['p99']:>11.0f} {lat['p50']:>11.0f} {lat['p99']:>11.0f}"
                )
    return lines


# -- the Python fallback ---------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, pacer: _Pacer) -> None:
        self.pacer = pacer
        self.transport: asyncio.Transport | None = None
        self.scheduled = 0.0
        self.idle_since = 0.0
        self.head = b""
        self.expect = 0
        self.got = 0
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, scheduled: float, request: bytes) -> None:
        assert self.transport is not None
        self.scheduled, self.head, self.expect, self.got = scheduled, b"", 0, 0
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if not self.expect:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                self.got += len(data)
                return
            lines = self.head[:end].split(b"\r\n")
            self.status = int(lines[0].split()[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in lines[1:]
                if line.lower().startswith(b"content-length:")
            )
            self.expect = end + 4 + length
        self.got += len(data)
        if self.got >= self.expect:
            self.pacer.finished(self, time.monotonic())

    def connection_lost(self, exc: Exception | None) -> None:
        self.pacer.lost(self)


class _Pacer:
    def __init__(
        self, host: str, path: str, rate: float, seconds: float, connections: int, warmup: float
    ) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: routerd-bench-loadgen\r\n\r\n"
        ).encode()
        self.rate, self.seconds, self.warmup = rate, seconds, warmup
        self.connections = connections
        self.idle: list[_Connection] = []
        self.wakeup = asyncio.Event()
        self.latency: list[float] = []
        self.lag: list[float] = []
        self.errors = self.non_2xx = 0
        self.measure_from = self.end = 0.0

    def finished(self, conn: _Connection, now: float) -> None:
        if not 200 <= conn.status < 400:
            self.non_2xx += 1
        if self.measure_from <= conn.scheduled < self.end:
            self.latency.append(now - conn.scheduled)
        conn.idle_since = now
        self.idle.append(conn)
        self.wakeup.set()

    def lost(self, conn: _Connection) -> None:
        self.errors += 1

    async def run(self, port: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            _, conn = await loop.create_connection(lambda: _Connection(self), "127.0.0.1", port)
            self.idle.append(conn)
        start = time.monotonic() + 0.001
        self.measure_from = start + self.warmup
        self.end = self.measure_from + self.seconds
        interval, index = 1 / self.rate, 0
        while True:
            now = time.monotonic()
            due = start + index * interval
            while due < self.end and due <= now and self.idle:
                conn = self.idle.pop()
                if due >= self.measure_from:
                    self.lag.append(max(0.0, now - max(due, conn.idle_since)))
                conn.send(due, self.request)
                index += 1
                due = start + index * interval
            if due >= self.end:
                break
            self.wakeup.clear()
            delay = max(0.0, due - time.monotonic()) if self.idle else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), delay)
        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while len(self.idle) < self.connections and time.monotonic() < drain_deadline:
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), drain_deadline - time.monotonic())
        return self.report()

    def report(self) -> dict[str, Any]:
        latency = sorted(value * 1e6 for value in self.latency)
        lag = sorted(value * 1e6 for value in self.lag)
        scheduled = math.ceil(self.seconds * self.rate)

        def pick(values: list[float], *qs: float) -> dict[str, float]:
            names = {0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9", 1.0: "max"}
            return {names[q]: round(quantile(values, q), 1) for q in qs}

        return {
            "target_rps": self.rate,
            "seconds": self.seconds,
            "warmup_seconds": self.warmup,
            "connections": self.connections,
            "scheduled": scheduled,
            "sent": len(lag),
            "completed": len(latency),
            "unsent": max(0, scheduled - len(lag)),
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "achieved_rps": round(len(latency) / self.seconds, 1),
            "latency_us": pick(latency, 0.5, 0.9, 0.99, 0.999, 1.0),
            "send_lag_us": pick(lag, 0.5, 0.99, 0.999, 1.0),
            "cdf_us": [[q, round(quantile(latency, q), 1)] for q in CDF_QUANTILES],
        }


def main(argv: list[str]) -> int:
    port, host, path, rate, seconds, connections = argv[:6]
    warmup = float(argv[6]) if len(argv) > 6 else 0.0
    pacer = _Pacer(host, path, float(rate), float(seconds), int(connections), warmup)
    print(json.dumps(asyncio.run(pacer.run(int(port)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

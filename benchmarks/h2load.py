"""h2load (nghttp2-client), the HTTP/2 load generator: one bounded run, and its summary parsed.

h2load speaks HTTP/2 over TLS (ALPN h2) to an https:// URI and prior-knowledge h2c to an
http:// one; streams per connection (`-m`) times connections (`-c`) is the concurrency.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError
from benchmarks.wrk import duration_ms

H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"

_FINISHED = re.compile(r"^finished in [\d.]+m?s, ([\d.]+) req/s", re.MULTILINE)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout",
    re.MULTILINE,
)
_STATUSES = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.MULTILINE)
_REQUEST_TIME = re.compile(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class H2loadResult:
    rps: float
    requests: int
    succeeded: int
    failed: int
    non_2xx: int
    mean_ms: float
    max_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse(output: str) -> H2loadResult:
    """The summary h2load prints; an error if it has none or nothing succeeded (a run whose
    connections all failed prints zeros, which must not pass for a measurement)."""
    finished, requests = _FINISHED.search(output), _REQUESTS.search(output)
    statuses, timing = _STATUSES.search(output), _REQUEST_TIME.search(output)
    if finished is None or requests is None or statuses is None or timing is None:
        raise BenchmarkError(f"unexpected h2load output:\n{output}")
    succeeded = int(requests.group(3))
    if succeeded == 0:
        raise BenchmarkError(f"h2load: no request succeeded:\n{output}")
    two_xx = int(statuses.group(1))
    return H2loadResult(
        rps=float(finished.group(1)),
        requests=int(requests.group(2)),
        succeeded=succeeded,
        failed=int(requests.group(4)) + int(requests.group(5)) + int(requests.group(6)),
        non_2xx=succeeded - two_xx,
        mean_ms=duration_ms(timing.group(3)),
        max_ms=duration_ms(timing.group(2)),
    )


def run(
    url: str,
    authority: str,
    seconds: float,
    connections: int,
    streams: int,
    headers: tuple[str, ...] = (),
    data: Path | None = None,
    warmup_seconds: float = 0.5,
) -> H2loadResult:
    """One timed h2load run (one thread) against `url` with `:authority: authority`; bounded by
    a timeout. `data`: a file each request POSTs."""
    duration = max(1, round(seconds))
    argv = [
        H2LOAD,
        "-t1",
        f"-c{connections}",
        f"-m{streams}",
        f"-D{duration}",
        f"--warm-up-time={warmup_seconds}",
        "-H",
        f":authority: {authority}",
    ]
    for header in headers:
        argv += ["-H", header]
    if data is not None:
        argv += ["-d", str(data)]
    argv.append(url)
    try:
        limit = duration + warmup_seconds + 30
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"h2load did not finish: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise BenchmarkError(f"h2load failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)

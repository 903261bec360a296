"""Running wrk and reading its report.

Closed-loop runs (`run`) measure peak throughput. Paced runs (`run_paced`) add a Lua `delay()`
so each connection waits between requests, which holds the offered rate near a target and shows
latency below saturation (wrk has no true open-loop mode; the achieved rate is reported).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError

WRK = shutil.which("wrk") or "/usr/bin/wrk"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_DURATION = re.compile(r"^([\d.]+)(us|ms|s|m)$")
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")

PACED_SCRIPT = """\
-- Each connection waits about `interval_ms` between requests (jittered so the connections do
-- not fall into step), keeping the offered rate near connections * 1000 / interval_ms.
local interval_ms = {interval_ms}
math.randomseed(os.time())
delay = function()
  return math.floor(interval_ms * (0.5 + math.random()))
end
"""


def duration_ms(text: str) -> float:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


def parse(output: str) -> WrkResult:
    """Read wrk's `--latency` report."""
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    if rps is None or total is None:
        raise BenchmarkError(f"cannot read wrk output:\n{output}")
    percentiles = {int(p): duration_ms(value) for p, value in _PERCENTILE.findall(output)}
    non_2xx = _NON_2XX.search(output)
    socket_errors = _SOCKET_ERRORS.search(output)
    errors: dict[str, int] = {}
    if socket_errors is not None:
        names = ("connect", "read", "write", "timeout")
        errors = {
            name: int(value) for name, value in zip(names, socket_errors.groups(), strict=True)
        }
    return WrkResult(
        requests=int(total.group(1)),
        seconds=duration_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=percentiles.get(50, 0.0),
        p75_ms=percentiles.get(75, 0.0),
        p90_ms=percentiles.get(90, 0.0),
        p99_ms=percentiles.get(99, 0.0),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors,
    )


def run(
    port: int,
    host: str,
    seconds: float,
    connections: int = 64,
    threads: int = 1,
    script: Path | None = None,
) -> WrkResult:
    """One wrk run against http://127.0.0.1:port/ with `Host: host`; bounded by a timeout."""
    duration = max(1, round(seconds))
    argv = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        f"Host: {host}",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(f"http://127.0.0.1:{port}/")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"wrk did not finish: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)


def paced_script(workdir: Path, connections: int, target_rps: float) -> Path:
    """A Lua script pacing `connections` connections to about `target_rps` in total."""
    interval_ms = max(1, round(connections * 1000 / max(target_rps, 1.0)))
    path = workdir / f"paced-{interval_ms}ms.lua"
    path.write_text(PACED_SCRIPT.format(interval_ms=interval_ms))
    return path


def run_paced(
    port: int, host: str, seconds: float, target_rps: float, workdir: Path, connections: int = 64
) -> WrkResult:
    script = paced_script(workdir, connections, target_rps)
    return run(port, host, seconds, connections=connections, script=script)

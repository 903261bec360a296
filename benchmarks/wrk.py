"""Running wrk and reading its report.

wrk is closed-loop (each connection sends its next request when the last one is answered), which
is right for peak throughput. Latency below saturation is measured open-loop by
benchmarks.loadgen instead. The Lua scripts here only shape the requests: a POST body, or a Host
drawn at random from the registered routes.
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

POST_SCRIPT = """\
wrk.method = "POST"
wrk.body = string.rep("x", {size})
wrk.headers["Content-Type"] = "application/octet-stream"
"""

HOSTS_SCRIPT = """\
-- Each request carries a Host drawn at random from the {count} registered routes.
local count = {count}
local template = "{template}"
math.randomseed({seed})
request = function()
  local host = string.format(template, math.random(0, count - 1))
  return wrk.format(nil, nil, {{["Host"] = host}})
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
    path: str = "/",
) -> WrkResult:
    """One wrk run against http://127.0.0.1:port<path> with `Host: host`; bounded by a timeout."""
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
    argv.append(f"http://127.0.0.1:{port}{path}")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"wrk did not finish: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)


def post_script(workdir: Path, size: int) -> Path:
    """A script making every request a POST with a `size`-byte body."""
    path = workdir / f"post-{size}.lua"
    path.write_text(POST_SCRIPT.format(size=size))
    return path


def hosts_script(workdir: Path, count: int, template: str, seed: int = 1) -> Path:
    """A script spreading requests over hosts `template % i` for i in range(count)."""
    path = workdir / f"hosts-{count}.lua"
    path.write_text(HOSTS_SCRIPT.format(count=count, template=template, seed=seed))
    return path

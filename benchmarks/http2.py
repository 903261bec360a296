"""HTTP/2 clients through the proxies: `h2load` (nghttp2-client) against routerd's TLS listener
(ALPN h2) and against nginx with `http2 on`, both in front of the proxy benchmark's nginx
backend and both speaking HTTP/1.1 to it, 64 streams at once over 4 connections (h2load
`-c 4 -m 16`), small GETs. Part of the `proxy` benchmark: same rounds, rotating order, best
round and same-round ratio, headed by routerd-h2 ÷ nginx-h2.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError, process_tree, tree_cpu_seconds
from benchmarks.proxies import NGINX, PROXY_WORKERS, Target, nginx_common
from benchmarks.routerd import bench_routerd, publish, start_nats
from tests.support.certs import CertificateAuthority
from tests.support.launcher import ProcessGroup
from tests.support.nats import register_message
from tests.support.ports import free_port
from tests.support.waiting import wait_until

H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"
CLIENTS = 4
STREAMS_PER_CLIENT = 16
HOST = "bench.example.com"
ROUTERD_H2 = "routerd-h2"
NGINX_H2 = "nginx-h2"

_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_PROTOCOL = re.compile(r"Application protocol: (\S+)")


@dataclass
class H2loadResult:
    seconds: float
    rps: float
    succeeded: int
    failed: int
    non_2xx: int
    protocol: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def available() -> bool:
    return shutil.which("h2load") is not None


def parse(output: str) -> H2loadResult:
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    status = _STATUS.search(output)
    protocol = _PROTOCOL.search(output)
    if finished is None or requests is None or status is None:
        raise BenchmarkError(f"h2load output not understood:\n{output[-2000:]}")
    return H2loadResult(
        seconds=float(finished[1]) * _SECONDS[finished[2]],
        rps=float(finished[3]),
        succeeded=int(requests[4]),
        failed=int(requests[5]) + int(requests[6]),
        non_2xx=int(status[2]) + int(status[3]) + int(status[4]),
        protocol=protocol[1] if protocol else "",
    )


def run_h2load(port: int, seconds: float, warmup: float = 0.0) -> H2loadResult:
    argv = [
        H2LOAD,
        f"-c{CLIENTS}",
        f"-m{STREAMS_PER_CLIENT}",
        "-t1",
        f"-D{round(seconds * 1000)}ms",
        "-H",
        f":authority: {HOST}",
        f"https://127.0.0.1:{port}/",
    ]
    if warmup:
        argv.insert(-1, f"--warm-up-time={round(warmup * 1000)}ms")
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + warmup + 60, check=False
    )
    parsed = parse(result.stdout)
    if parsed.protocol != "h2":
        raise BenchmarkError(f"h2load did not negotiate h2 on port {port}:\n{result.stdout}")
    return parsed


def measure(target: Target, seconds: float) -> dict[str, Any]:
    """One h2load run, with the CPU time the target's processes used meanwhile."""
    target.process.check_running()
    pids = process_tree(target.process.pid)
    cpu_before = tree_cpu_seconds(pids)
    result = run_h2load(target.port, seconds)
    cpu = tree_cpu_seconds(pids) - cpu_before
    run = result.to_json()
    run["cpu_seconds"] = round(cpu, 3)
    done = result.succeeded
    run["cpu_us_per_request"] = round(1e6 * cpu / done, 1) if done else 0.0
    return run


def write_certificate(workdir: Path) -> tuple[Path, Path, str, str]:
    issued = CertificateAuthority("benchmark CA").issue(HOST)
    cert, key = issued.write(workdir, "h2-server")
    return cert, key, issued.cert_pem, issued.key_pem


def nginx_h2_conf(workdir: Path, port: int, backend_port: int, cert: Path, key: Path) -> str:
    """nginx terminating TLS with HTTP/2, proxying HTTP/1.1 with an upstream keep-alive pool."""
    main, temp_paths = nginx_common(workdir, "nginx-h2-proxy")
    return (
        main + f"worker_processes {PROXY_WORKERS};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    keepalive_requests 100000000;\n"
        "    keepalive_timeout 300s;\n"
        "    proxy_max_temp_file_size 0;\n"
        f"{temp_paths}"
        "    upstream backend {\n"
        f"        server 127.0.0.1:{backend_port};\n"
        "        keepalive 128;\n"
        "        keepalive_requests 100000000;\n"
        "    }\n"
        "    server {\n"
        # `listen ... http2`: this nginx (1.22) predates the `http2 on` directive.
        f"        listen 127.0.0.1:{port} ssl http2 reuseport backlog=4096;\n"
        f"        ssl_certificate {cert};\n"
        f"        ssl_certificate_key {key};\n"
        "        location / {\n"
        "            proxy_pass http://backend;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def wait_h2_serving(target: Target, timeout: float = 20.0) -> Target:
    def serves() -> bool:
        target.process.check_running()
        result = run_h2load(target.port, 0.2)
        return result.succeeded > 0 and result.non_2xx == 0

    wait_until(serves, timeout, what=f"{target.label} on port {target.port} to answer h2")
    return target


def start_targets(
    group: ProcessGroup, backend_port: int, nats_port: int, run_root: Path
) -> list[Target]:
    """nginx with `http2 on` and routerd (2 workers, TLS, enable_http2 by default), both
    without access logs, in front of `backend_port`."""
    cert, key, cert_pem, key_pem = write_certificate(group.workdir)
    nginx_port = free_port()
    conf = group.workdir / "nginx-h2-proxy.conf"
    conf.write_text(nginx_h2_conf(group.workdir, nginx_port, backend_port, cert, key))
    nginx = group.start(
        "nginx-h2-proxy", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    nginx_target = Target(
        NGINX_H2, f"nginx proxy, HTTP/2 ({PROXY_WORKERS} workers)", nginx_port, HOST, nginx
    )
    ssl_port = free_port()
    router = bench_routerd(
        group,
        nats_port,
        name="routerd-h2",
        overrides={
            "droplet_stale_threshold": 3600,
            "backends": {"max_conns": 0},
            "enable_ssl": True,
            "ssl_port": ssl_port,
            "tls_pem": [{"cert_chain": cert_pem, "private_key": key_pem}],
            "client_cert_validation": "none",
        },
        run_root=run_root,
    )
    router.start()
    assert router.process is not None
    publish(nats_port, "router.register", [register_message(backend_port, [HOST])])
    router_target = Target(
        ROUTERD_H2, "routerd, HTTP/2 (2 workers)", ssl_port, HOST, router.process
    )
    return [wait_h2_serving(router_target), wait_h2_serving(nginx_target)]


def run_rounds(
    group: ProcessGroup,
    backend_port: int,
    run_root: Path,
    seconds: float,
    rounds: int,
    warmup_seconds: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """routerd and nginx over HTTP/2 in alternating rounds (as the wrk rounds): each one's
    best round, and routerd-h2 ÷ nginx-h2 by best rounds and by the same-round median."""
    say("starting nginx (http2) and routerd (TLS, h2) for the HTTP/2 rounds")
    nats_port = start_nats(group, name="nats-server-h2").port
    targets = start_targets(group, backend_port, nats_port, run_root)
    for target in targets:
        say(f"warm-up {target.label} ({warmup_seconds:.0f} s)")
        run_h2load(target.port, warmup_seconds)
    runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
    for round_index in range(rounds):
        order = targets if round_index % 2 == 0 else targets[::-1]
        for target in order:
            run = measure(target, seconds)
            run["round"] = round_index + 1
            runs[target.name].append(run)
            say(f"round {round_index + 1}/{rounds} {target.label}: {run['rps']:.0f} req/s")
    best = {name: max(results, key=lambda run: run["rps"]) for name, results in runs.items()}
    base = best[NGINX_H2]["rps"]
    per_round = [
        mine["rps"] / theirs["rps"]
        for mine, theirs in zip(runs[ROUTERD_H2], runs[NGINX_H2], strict=True)
        if theirs["rps"]
    ]
    key = f"{ROUTERD_H2}/{NGINX_H2}"
    return {
        "settings": {
            "seconds": seconds,
            "rounds": rounds,
            "clients": CLIENTS,
            "streams_per_client": STREAMS_PER_CLIENT,
        },
        "labels": {target.name: target.label for target in targets},
        "runs": runs,
        "best": best,
        "ratios": {key: round(best[ROUTERD_H2]["rps"] / base, 3) if base else 0},
        "same_round_ratios": {key: round(statistics.median(per_round), 3) if per_round else 0},
    }


__all__ = ["available", "measure", "parse", "run_h2load", "run_rounds", "start_targets"]

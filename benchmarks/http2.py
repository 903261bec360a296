"""HTTP/2 benchmark: routerd's h2 front end against nginx's, and gRPC through routerd against
the gRPC service direct, with h2load, in alternating rounds.

- `routerd-h2`: routerd's TLS listener (ALPN h2), proxying the nginx backend over HTTP/1.1,
  access log to a file. `nginx-h2`: nginx with `ssl http2` in front of the same backend, the
  same upstream keep-alive pool as the HTTP/1 benchmark's, access log to a file. Both terminate
  TLS, both log each request: like for like.
- `grpc-direct`: h2load to the gRPC echo service (benchmarks/grpc_echo.py) over h2c.
  `routerd-grpc`: the same service registered with `protocol: http2`, reached through
  routerd's TLS listener, so both hops are HTTP/2.

Each run is 4 connections of 16 streams (64 in flight), as the HTTP/1 benchmark's 64
connections. Ratios are per round (seconds apart), the median over rounds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import h2load
from benchmarks.grpc_echo import PATH as GRPC_PATH
from benchmarks.grpc_echo import frame
from benchmarks.processes import BenchmarkError, process_tree, tree_cpu_seconds
from benchmarks.proxies import (
    NGINX,
    PROXY_WORKERS,
    Target,
    nginx_common,
    repo_root,
    start_backend,
    wait_logging,
)
from benchmarks.proxy import (
    ProxySettings,
    Say,
    alternating_rounds,
    log_size,
    same_round_ratios,
)
from benchmarks.routerd import bench_routerd, publish, start_nats
from tests.support.certs import CertificateAuthority
from tests.support.launcher import ProcessGroup
from tests.support.nats import register_message
from tests.support.ports import free_port, is_listening
from tests.support.waiting import wait_until

ROUTE_HOST = "bench.example.com"
GRPC_HOST = "grpc.example.com"
CONNECTIONS = 4
STREAMS = 16
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
RATIOS = (("routerd-h2", "nginx-h2"), ("routerd-grpc", "grpc-direct"))


class H2Target:
    """Something h2load can load: a URL, its :authority, the process tree charged for CPU, the
    access log it writes (if any), and for gRPC the body file and headers each request sends."""

    def __init__(
        self,
        target: Target,
        url: str,
        data: Path | None = None,
        headers: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.url = url
        self.data = data
        self.headers = headers

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def label(self) -> str:
        return self.target.label


def nginx_h2_conf(
    workdir: Path, port: int, backend_port: int, cert: Path, key: Path, access_log: Path
) -> str:
    """nginx terminating TLS with HTTP/2 (1.22's `listen ... http2`), as the HTTP/1 proxy
    conf otherwise; `keepalive_requests` high so that no GOAWAY ends a connection mid-run."""
    main, temp_paths = nginx_common(workdir, "nginx-h2")
    return (
        main + f"worker_processes {PROXY_WORKERS};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"    access_log {access_log};\n"
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


def start_nginx_h2(group: ProcessGroup, backend_port: int, cert: Path, key: Path) -> H2Target:
    port = free_port()
    log_path = group.workdir / "nginx-h2-access.log"
    conf = group.workdir / "nginx-h2.conf"
    conf.write_text(nginx_h2_conf(group.workdir, port, backend_port, cert, key, log_path))
    process = group.start(
        "nginx-h2", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    wait_until(lambda: process.check_running() and is_listening(port), 20, what="nginx h2")
    label = f"nginx h2 ({PROXY_WORKERS} workers, TLS, access log)"
    target = Target("nginx-h2", label, port, ROUTE_HOST, process, log_path)
    return _serving(H2Target(target, f"https://127.0.0.1:{port}/"))


def start_grpc_echo(group: ProcessGroup) -> H2Target:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.grpc_echo", "--port", str(port)]
    process = group.start("grpc-echo", argv, cwd=str(repo_root()))
    wait_until(lambda: process.check_running() and is_listening(port), 20, what="gRPC echo")
    data = group.workdir / "grpc-message"
    data.write_bytes(frame(b"hello world\n"))
    target = Target("grpc-direct", "gRPC echo, direct (h2c)", port, GRPC_HOST, process)
    return _serving(H2Target(target, f"http://127.0.0.1:{port}{GRPC_PATH}", data, GRPC_HEADERS))


def start_routerd_h2(
    group: ProcessGroup,
    run_root: Path,
    backend_port: int,
    grpc: H2Target,
    ca: CertificateAuthority,
) -> tuple[H2Target, H2Target]:
    """One routerd, TLS listener with h2, access log on: the HTTP/1.1 backend under ROUTE_HOST
    and the gRPC service (`protocol: http2`) under GRPC_HOST."""
    nats_port = start_nats(group).port
    issued = ca.issue(ROUTE_HOST)
    log_path = group.workdir / "routerd-h2-access.log"
    ssl_port = free_port()
    router = bench_routerd(
        group,
        nats_port,
        name="routerd-h2",
        overrides={
            "droplet_stale_threshold": 3600,
            "backends": {"max_conns": 0},
            "access_log": {"file": str(log_path)},
            "enable_ssl": True,
            "ssl_port": ssl_port,
            "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
            "enable_http2": True,
        },
        run_root=run_root,
    )
    router.start()
    assert router.process is not None
    grpc_registration = register_message(grpc.target.port, [GRPC_HOST])
    grpc_registration["protocol"] = "http2"
    publish(
        nats_port,
        "router.register",
        [register_message(backend_port, [ROUTE_HOST]), grpc_registration],
    )
    label = "routerd h2 (2 workers, TLS, access log)"
    plain = Target("routerd-h2", label, ssl_port, ROUTE_HOST, router.process, log_path)
    via = Target(
        "routerd-grpc", "gRPC through routerd (h2 both hops)", ssl_port, GRPC_HOST, router.process
    )
    url = f"https://127.0.0.1:{ssl_port}"
    return (
        _serving(H2Target(plain, f"{url}/")),
        _serving(H2Target(via, f"{url}{GRPC_PATH}", grpc.data, GRPC_HEADERS)),
    )


def _serving(h2: H2Target, timeout: float = 20.0) -> H2Target:
    """Wait until one short h2load run through the target succeeds (routes propagate)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = h2load.run(
                h2.url, h2.target.host, 1, 1, 1, h2.headers, h2.data, warmup_seconds=0
            )
        except BenchmarkError as exc:
            failure = str(exc)
        else:
            if result.non_2xx == 0 and result.failed == 0:
                if h2.target.access_log is not None:
                    wait_logging(h2.target)
                return h2
            failure = f"{result.non_2xx} non-2xx, {result.failed} failed"
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{h2.target.label} does not serve over h2: {failure}")
        time.sleep(0.2)


def measure(h2: H2Target, seconds: float) -> dict[str, Any]:
    target = h2.target
    target.process.check_running()
    pids = process_tree(target.process.pid)
    log_before = log_size(target)
    cpu_before = tree_cpu_seconds(pids)
    started = time.monotonic()
    result = h2load.run(
        h2.url, target.host, seconds, CONNECTIONS, STREAMS, h2.headers, h2.data, warmup_seconds=0
    )
    wall = time.monotonic() - started
    cpu = tree_cpu_seconds(pids) - cpu_before
    run = result.to_json()
    run["cpu_percent"] = round(100 * cpu / wall, 1) if wall else 0.0
    run["cpu_us_per_request"] = round(1e6 * cpu / result.requests, 1) if result.requests else 0.0
    if target.access_log is not None:
        run["access_log_bytes"] = log_size(target) - log_before
    return run


def run_http2(workdir: Path, run_root: Path, settings: ProxySettings, say: Say) -> dict[str, Any]:
    with ProcessGroup(workdir) as group:
        say("starting backend nginx, nginx h2, gRPC echo, nats-server, routerd with h2")
        ca = CertificateAuthority("benchmark CA")
        cert, key = ca.issue(ROUTE_HOST).write(group.workdir, "nginx-h2")
        backend = start_backend(group)
        grpc = start_grpc_echo(group)
        routerd_h2, routerd_grpc = start_routerd_h2(group, run_root, backend.port, grpc, ca)
        targets = [start_nginx_h2(group, backend.port, cert, key), routerd_h2, grpc, routerd_grpc]
        for h2 in targets:
            say(f"warm-up {h2.label} ({settings.warmup_seconds:.0f} s)")
            measure(h2, settings.warmup_seconds)
        runs = alternating_rounds(
            targets,
            settings.rounds,
            lambda h2: measure(h2, settings.seconds),
            lambda run: f"{run['rps']:.0f} req/s, mean {run['mean_ms']:.2f} ms",
            say,
        )
        return {
            "settings": {**settings.__dict__, "connections": CONNECTIONS, "streams": STREAMS},
            "labels": {h2.name: h2.target.label for h2 in targets},
            "runs": runs,
            "same_round_ratios": same_round_ratios(runs, list(RATIOS)),
        }

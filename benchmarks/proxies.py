"""The fast backend and the reference proxies: configuration files and how to start them.

Everything listens on 127.0.0.1 only. Configurations are tuned the way an operator would tune
each proxy for keep-alive traffic to one upstream, so the comparison is with each at its best:

- backend: nginx, 1 worker, `return 200 "hello world\\n"`, no access log, unlimited keep-alive.
- nginx proxy: 2 workers, upstream keep-alive pool, HTTP/1.1 upstream, `Connection ""`.
- HAProxy: HTTP mode, 2 threads, `http-reuse always`.
- naive: aiohttp, one shared ClientSession per process, 2 processes (see naive_proxy.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.processes import (
    BenchmarkError,
    Process,
    ProcessGroup,
    free_port,
    is_listening,
    wait_until,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BACKEND_BODY = b"hello world\n"
PROXY_WORKERS = 2


@dataclass
class Target:
    """Something wrk can load: a port, the Host header requests carry, and the process that
    serves it (its whole process tree is charged for CPU)."""

    name: str
    label: str
    port: int
    host: str
    process: Process


def _nginx_common(workdir: Path, name: str) -> tuple[str, str]:
    """Main-context lines and http-context temp paths, all inside the benchmark's temp dir."""
    temp = workdir / f"{name}-temp"
    temp.mkdir(exist_ok=True)
    # As root, nginx's workers would run as "nobody" and could not use the private temp dir.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}"
        "daemon off;\n"
        f"pid {workdir}/{name}.pid;\n"
        f"error_log {workdir}/{name}-error.log error;\n"
    ), (
        f"    client_body_temp_path {temp}/body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
    )


def backend_nginx_conf(workdir: Path, port: int) -> str:
    main, temp_paths = _nginx_common(workdir, "backend")
    return (
        main + "worker_processes 1;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    keepalive_requests 100000000;\n"
        "    keepalive_timeout 300s;\n"
        f"{temp_paths}"
        "    server {\n"
        f"        listen 127.0.0.1:{port} reuseport backlog=4096;\n"
        '        location / { default_type text/plain; return 200 "hello world\\n"; }\n'
        "    }\n"
        "}\n"
    )


def proxy_nginx_conf(workdir: Path, port: int, backend_port: int) -> str:
    main, temp_paths = _nginx_common(workdir, "nginx-proxy")
    return (
        main + f"worker_processes {PROXY_WORKERS};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    keepalive_requests 100000000;\n"
        "    keepalive_timeout 300s;\n"
        f"{temp_paths}"
        "    upstream backend {\n"
        f"        server 127.0.0.1:{backend_port};\n"
        "        keepalive 128;\n"
        "        keepalive_requests 100000000;\n"
        "    }\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port} reuseport backlog=4096;\n"
        "        location / {\n"
        "            proxy_pass http://backend;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def haproxy_conf(port: int, backend_port: int) -> str:
    return (
        "global\n"
        f"    nbthread {PROXY_WORKERS}\n"
        "    maxconn 4096\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 5s\n"
        "    timeout client 60s\n"
        "    timeout server 60s\n"
        "    timeout http-keep-alive 60s\n"
        "    http-reuse always\n"
        "frontend bench\n"
        f"    bind 127.0.0.1:{port}\n"
        "    default_backend backend\n"
        "backend backend\n"
        f"    server s1 127.0.0.1:{backend_port} maxconn 1000\n"
    )


def fetch(port: int, host: str, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    """One GET with a Host header; (0, b"") if nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


def wait_serving(target: Target, timeout: float = 20.0) -> Target:
    def serves() -> bool:
        target.process.check_running()
        return fetch(target.port, target.host) == (200, BACKEND_BODY)

    wait_until(serves, timeout, f"{target.label} on port {target.port} to answer 200")
    return target


def start_backend(group: ProcessGroup) -> Target:
    port = free_port()
    conf = group.workdir / "backend-nginx.conf"
    conf.write_text(backend_nginx_conf(group.workdir, port))
    process = group.start(
        "backend-nginx", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    target = Target("direct", "direct to backend", port, "backend.example.com", process)
    return wait_serving(target)


def start_nginx_proxy(group: ProcessGroup, backend_port: int) -> Target:
    port = free_port()
    conf = group.workdir / "nginx-proxy.conf"
    conf.write_text(proxy_nginx_conf(group.workdir, port, backend_port))
    process = group.start(
        "nginx-proxy", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    label = f"nginx proxy ({PROXY_WORKERS} workers)"
    return wait_serving(Target("nginx", label, port, "bench.example.com", process))


def start_haproxy(group: ProcessGroup, backend_port: int) -> Target:
    port = free_port()
    conf = group.workdir / "haproxy.cfg"
    conf.write_text(haproxy_conf(port, backend_port))
    process = group.start("haproxy", [HAPROXY, "-db", "-f", str(conf)])
    label = f"HAProxy ({PROXY_WORKERS} threads)"
    return wait_serving(Target("haproxy", label, port, "bench.example.com", process))


def start_naive_proxy(group: ProcessGroup, backend_port: int) -> Target:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "benchmarks.naive_proxy",
        "--port",
        str(port),
        "--backend-port",
        str(backend_port),
        "--processes",
        str(PROXY_WORKERS),
    ]
    process = group.start("naive-proxy", argv, cwd=str(repo_root()))
    wait_until(lambda: process.check_running() and is_listening(port), 20, "naive proxy")
    label = f"naive aiohttp ({PROXY_WORKERS} procs)"
    return wait_serving(Target("naive", label, port, "bench.example.com", process))


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def check_tools() -> None:
    missing = [tool for tool in (NGINX, HAPROXY) if not os.access(tool, os.X_OK)]
    if missing:
        raise BenchmarkError(f"missing {', '.join(missing)}: run `make bench-deps`")

"""The fast backend and the reference proxies: configuration files and how to start them.

Everything listens on 127.0.0.1 only. Configurations are tuned the way an operator would tune
each proxy for keep-alive traffic to one upstream, so the comparison is with each at its best:

- backend: nginx, 1 worker, `return 200 "hello world\\n"` at `/`, fixed bodies of
  RESPONSE_SIZES bytes at `/bytes/<size>` (static files, sendfile), and `/upload`, which takes a
  request body and answers "ok"; no access log, unlimited keep-alive.
- nginx proxy: 2 workers, upstream keep-alive pool, HTTP/1.1 upstream, `Connection ""`, no
  temp files for large responses; with an access log, nginx's default: the `combined` format,
  unbuffered (one write per request), as an operator who only names the file gets.
- HAProxy: HTTP mode, 2 threads, `http-reuse always`; with an access log, `option httplog`
  written to its standard output, which is a file (see haproxy_conf).
- With a host map (the route-table sweep), nginx routes by a `map $host` and HAProxy by a map
  file, each answering 404 to a Host it does not know, as routerd does.
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

from benchmarks.processes import BenchmarkError
from tests.support.launcher import Process, ProcessGroup
from tests.support.ports import free_port, is_listening
from tests.support.waiting import wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BACKEND_BODY = b"hello world\n"
PROXY_WORKERS = 2
RESPONSE_SIZES = (2, 16 * 1024, 1024 * 1024)
UPLOAD_PATH = "/upload"


@dataclass
class Target:
    """Something wrk can load: a port, the Host header requests carry, and the process that
    serves it (its whole process tree is charged for CPU)."""

    name: str
    label: str
    port: int
    host: str
    process: Process
    # The file its access log is written to; None when it logs no requests.
    access_log: Path | None = None


def nginx_common(workdir: Path, name: str) -> tuple[str, str]:
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


def bytes_path(size: int) -> str:
    """The backend path answering a body of `size` bytes."""
    return f"/bytes/{size}"


def write_bodies(docroot: Path) -> None:
    (docroot / "bytes").mkdir(parents=True, exist_ok=True)
    for size in RESPONSE_SIZES:
        (docroot / "bytes" / str(size)).write_bytes(b"x" * size)


def backend_nginx_conf(
    workdir: Path, port: int, docroot: Path, name: str = "backend", keepalive_timeout: float = 300
) -> str:
    """`keepalive_timeout`: seconds before nginx closes an idle keep-alive connection."""
    main, temp_paths = nginx_common(workdir, name)
    return (
        main + "worker_processes 1;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    keepalive_requests 100000000;\n"
        f"    keepalive_timeout {keepalive_timeout * 1000:.0f}ms;\n"
        "    sendfile on;\n"
        "    client_body_buffer_size 64k;\n"
        f"{temp_paths}"
        "    server {\n"
        f"        listen 127.0.0.1:{port} reuseport backlog=4096;\n"
        '        location / { default_type text/plain; return 200 "hello world\\n"; }\n'
        "        location /bytes/ {\n"
        f"            root {docroot};\n"
        "            default_type application/octet-stream;\n"
        "            open_file_cache max=16 inactive=1h;\n"
        "        }\n"
        f'        location = {UPLOAD_PATH} {{ default_type text/plain; return 200 "ok"; }}\n'
        "    }\n"
        "}\n"
    )


def proxy_nginx_conf(
    workdir: Path,
    port: int,
    backend_port: int,
    host_map: Path | None = None,
    name: str = "nginx",
    access_log: Path | None = None,
) -> str:
    """With `host_map` (lines `host backend;`), the upstream is looked up by Host; with
    `access_log`, each request is logged there in nginx's default (`combined`) format."""
    main, temp_paths = nginx_common(workdir, f"{name}-proxy")
    # No buffer= or flush=: nginx then writes each line as its request ends, as by default.
    logging = (
        f"    access_log {access_log};\n" if access_log is not None else "    access_log off;\n"
    )
    routing, location = "", "            proxy_pass http://backend;\n"
    if host_map is not None:
        routing = (
            "    map_hash_max_size 262144;\n"
            "    map_hash_bucket_size 128;\n"
            f'    map $host $route {{ default ""; include {host_map}; }}\n'
        )
        location = (
            '            if ($route = "") { return 404; }\n            proxy_pass http://$route;\n'
        )
    return (
        main + f"worker_processes {PROXY_WORKERS};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"{logging}"
        "    keepalive_requests 100000000;\n"
        "    keepalive_timeout 300s;\n"
        "    client_body_buffer_size 64k;\n"
        "    proxy_max_temp_file_size 0;\n"
        f"{temp_paths}"
        f"{routing}"
        "    upstream backend {\n"
        f"        server 127.0.0.1:{backend_port};\n"
        "        keepalive 128;\n"
        "        keepalive_requests 100000000;\n"
        "    }\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port} reuseport backlog=4096;\n"
        "        location / {\n"
        f"{location}"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def haproxy_conf(
    port: int, backend_port: int, host_map: Path | None = None, access_log: bool = False
) -> str:
    """With `host_map` (lines `host backend`), a Host not in the map is answered 404. With
    `access_log`, HAProxy logs each request (`option httplog`) to its standard output, which the
    harness points at a file.

    HAProxy cannot open a log file itself: it sends to syslog (a UDP or UNIX datagram socket),
    to a ring buffer, or to stdout/stderr. A syslog socket would put a second process, the one
    that writes the file, between HAProxy and the disk, and its CPU would be charged to nobody;
    `log stdout` makes HAProxy write each line to the file with its own write(), which is what
    nginx and routerd do, so the three rows pay for the same thing.
    """
    logging = "    log stdout format raw local0 info\n    option httplog\n" if access_log else ""
    routing = (
        f"    http-request deny deny_status 404 unless {{ req.hdr(host),lower,map({host_map}) "
        "-m found }\n"
        if host_map is not None
        else ""
    )
    return (
        "global\n"
        f"    nbthread {PROXY_WORKERS}\n"
        "    maxconn 4096\n"
        "defaults\n"
        "    mode http\n"
        f"{logging}"
        "    timeout connect 5s\n"
        "    timeout client 60s\n"
        "    timeout server 60s\n"
        "    timeout http-keep-alive 60s\n"
        "    http-reuse always\n"
        "frontend bench\n"
        f"    bind 127.0.0.1:{port}\n"
        f"{routing}"
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

    wait_until(serves, timeout, what=f"{target.label} on port {target.port} to answer 200")
    return target


def logged_name(name: str, access_log: bool) -> str:
    """A target's name in the results: `<name>-log` for the row that writes an access log."""
    return f"{name}-log" if access_log else name


def wait_logging(target: Target, timeout: float = 10.0) -> Target:
    """With an access log, wait until the request wait_serving sent is in it: a row said to
    log requests must be seen to."""
    log_path = target.access_log
    if log_path is None:
        return target

    def logged() -> bool:
        target.process.check_running()
        try:
            return "GET / " in log_path.read_text(errors="replace")
        except OSError:
            return False

    wait_until(logged, timeout, what=f"{target.label} to log a request in {log_path}")
    return target


def start_backend(
    group: ProcessGroup, name: str = "backend", keepalive_timeout: float = 300
) -> Target:
    """The nginx backend; give a second one its own `name` (files) and, to have it close idle
    keep-alive connections early, a short `keepalive_timeout` in seconds."""
    port = free_port()
    docroot = group.workdir / f"{name}-docroot"
    write_bodies(docroot)
    conf = group.workdir / f"{name}-nginx.conf"
    conf.write_text(backend_nginx_conf(group.workdir, port, docroot, name, keepalive_timeout))
    process = group.start(
        f"{name}-nginx", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    target = Target("direct", "direct to backend", port, "backend.example.com", process)
    return wait_serving(target)


def write_host_maps(workdir: Path, hosts: list[str]) -> tuple[Path, Path]:
    """The same routes for nginx (`map` include) and HAProxy (map file), all to the backend."""
    nginx_map = workdir / f"hosts-{len(hosts)}.nginx.map"
    nginx_map.write_text("".join(f"{host} backend;\n" for host in hosts))
    haproxy_map = workdir / f"hosts-{len(hosts)}.haproxy.map"
    haproxy_map.write_text("".join(f"{host} backend\n" for host in hosts))
    return nginx_map, haproxy_map


def start_nginx_proxy(
    group: ProcessGroup,
    backend_port: int,
    host_map: Path | None = None,
    host: str = "bench.example.com",
    name: str = "nginx",
    access_log: bool = False,
) -> Target:
    """`name` names the files; with `access_log`, the target is `nginx-log` and logs to
    <workdir>/<name>-access.log."""
    port = free_port()
    log_path = group.workdir / f"{name}-access.log" if access_log else None
    conf = group.workdir / f"{name}-proxy.conf"
    conf.write_text(proxy_nginx_conf(group.workdir, port, backend_port, host_map, name, log_path))
    process = group.start(
        f"{name}-proxy", [NGINX, "-p", str(group.workdir), "-e", "stderr", "-c", str(conf)]
    )
    label = f"nginx proxy ({PROXY_WORKERS} workers{', access log' if access_log else ''})"
    target = Target(logged_name("nginx", access_log), label, port, host, process, log_path)
    return wait_logging(wait_serving(target))


def start_haproxy(
    group: ProcessGroup,
    backend_port: int,
    host_map: Path | None = None,
    host: str = "bench.example.com",
    name: str = "haproxy",
    access_log: bool = False,
) -> Target:
    """With `access_log`, the access log is the process's output file (see haproxy_conf)."""
    port = free_port()
    conf = group.workdir / f"{name}.cfg"
    conf.write_text(haproxy_conf(port, backend_port, host_map, access_log))
    process = group.start(name, [HAPROXY, "-db", "-f", str(conf)])
    label = f"HAProxy ({PROXY_WORKERS} threads{', access log' if access_log else ''})"
    log_path = process.log_path if access_log else None
    target = Target(logged_name("haproxy", access_log), label, port, host, process, log_path)
    return wait_logging(wait_serving(target))


def start_naive_proxy(group: ProcessGroup, backend_port: int) -> Target:
    label = f"naive aiohttp ({PROXY_WORKERS} procs)"
    return start_python_proxy(group, backend_port, "naive", "naive_proxy", label)


def start_floor_proxy(group: ProcessGroup, backend_port: int) -> Target:
    label = f"Python floor ({PROXY_WORKERS} procs, no features)"
    return start_python_proxy(group, backend_port, "floor", "floor_proxy", label)


def start_python_proxy(
    group: ProcessGroup, backend_port: int, name: str, module: str, label: str
) -> Target:
    """One of benchmarks/'s own proxies (`module`), with routerd's number of processes."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        f"benchmarks.{module}",
        "--port",
        str(port),
        "--backend-port",
        str(backend_port),
        "--processes",
        str(PROXY_WORKERS),
    ]
    process = group.start(f"{name}-proxy", argv, cwd=str(repo_root()))
    wait_until(lambda: process.check_running() and is_listening(port), 20, what=f"{name} proxy")
    return wait_serving(Target(name, label, port, "bench.example.com", process))


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def check_tools() -> None:
    missing = [tool for tool in (NGINX, HAPROXY) if not os.access(tool, os.X_OK)]
    if missing:
        raise BenchmarkError(f"missing {', '.join(missing)}: run `make bench-deps`")

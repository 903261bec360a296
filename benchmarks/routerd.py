"""nats-server and routerd as benchmark subjects: start, register, observe.

routerd runs exactly as an operator runs it (`python -m supervisor --config PATH`), with a
generated config that binds 127.0.0.1 only and keeps its run_dir in the benchmark's temp dir.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.processes import (
    BenchmarkError,
    Process,
    ProcessGroup,
    free_port,
    is_listening,
    wait_until,
)
from benchmarks.proxies import repo_root
from registry.shm import layout
from registry.shm.reader import TableReader
from registry.shm.region import FileRegion

STATUS_USER = "bench"
STATUS_PASS = "bench-pass"


def start_nats(group: ProcessGroup, name: str = "nats-server") -> tuple[Process, int]:
    binary = shutil.which("nats-server")
    if binary is None:
        raise BenchmarkError("nats-server not found on PATH: run `make install`")
    port = free_port()
    process = group.start(name, [binary, "-a", "127.0.0.1", "-p", str(port)])
    wait_until(lambda: process.check_running() and is_listening(port), 15, "nats-server")
    return process, port


def publish(nats_port: int, subject: str, payloads: list[bytes]) -> None:
    """Publish a few messages with the NATS text protocol and wait until the server has them."""
    with socket.create_connection(("127.0.0.1", nats_port), timeout=10) as sock:
        reader = sock.makefile("rb")
        if not reader.readline().startswith(b"INFO "):
            raise BenchmarkError("nats-server did not greet")
        out = [b'CONNECT {"verbose":false,"pedantic":false,"name":"benchmarks"}\r\n']
        out += [b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(p), p) for p in payloads]
        out.append(b"PING\r\n")
        sock.sendall(b"".join(out))
        while True:
            line = reader.readline()
            if not line or line.startswith(b"PONG"):
                break
            if line.startswith(b"-ERR"):
                raise BenchmarkError(f"nats-server refused a publish: {line!r}")


def register_message(port: int, uris: list[str], host: str = "127.0.0.1") -> bytes:
    return json.dumps({"host": host, "port": port, "uris": uris}).encode()


class Routerd:
    """One routerd (supervisor and workers) talking to a given nats-server."""

    def __init__(
        self,
        group: ProcessGroup,
        nats_port: int,
        name: str = "routerd",
        workers: int = 2,
        log_level: str = "error",
        overrides: dict[str, Any] | None = None,
        run_root: Path | None = None,
    ) -> None:
        """`run_root` holds run_dir; use a tmpfs (/dev/shm) as systemd's /run/routerd is."""
        self.group = group
        self.name = name
        self.run_dir = (run_root or group.workdir) / f"{name}-run"
        self.config: dict[str, Any] = {
            "port": free_port(),
            "bind_address": "127.0.0.1",
            "workers": workers,
            "run_dir": str(self.run_dir),
            "status": {
                "host": "127.0.0.1",
                "port": free_port(),
                "user": STATUS_USER,
                "pass": STATUS_PASS,
            },
            "nats": {"hosts": [{"hostname": "127.0.0.1", "port": nats_port}]},
            "start_response_delay_interval": 0,
            "logging": {"level": log_level},
            "access_log": {"file": ""},
            "drain_wait": 0,
            **(overrides or {}),
        }
        self.process: Process | None = None
        self._reader: TableReader | None = None

    def __repr__(self) -> str:
        return f"Routerd({self.name!r}, port={self.port}, process={self.process!r})"

    @property
    def port(self) -> int:
        return int(self.config["port"])

    @property
    def status_port(self) -> int:
        return int(self.config["status"]["port"])

    @property
    def table_path(self) -> Path:
        return self.run_dir / "routes.shm"

    def start(self, timeout: float = 30.0) -> None:
        config_path = self.group.workdir / f"{self.name}.yml"
        config_path.write_text(json.dumps(self.config, indent=2))  # JSON is YAML
        argv = [sys.executable, "-m", "supervisor", "--config", str(config_path)]
        self.process = self.group.start(self.name, argv, cwd=str(repo_root()))
        wait_until(self._is_healthy, timeout, f"{self.name} /health (log {self.process.log_path})")

    def stop(self) -> None:
        if self._reader is not None:
            self._reader = None
        if self.process is not None:
            self.group.stop(self.process)

    def _is_healthy(self) -> bool:
        assert self.process is not None
        self.process.check_running()
        return self._status("/health", auth=False)[0] == 200

    def status_get(self, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
        """GET a status-server path with the credentials: (status, body); status 0 when
        the server could not be reached."""
        return self._status(path, timeout=timeout)

    def _status(self, path: str, auth: bool = True, timeout: float = 10.0) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.status_port}{path}")
        if auth:
            token = base64.b64encode(f"{STATUS_USER}:{STATUS_PASS}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), b""
        except OSError:
            return 0, b""

    def varz(self) -> dict[str, Any]:
        status, body = self._status("/varz")
        if status != 200:
            raise BenchmarkError(f"{self.name} /varz answered {status}")
        result: dict[str, Any] = json.loads(body)
        return result

    @property
    def supervisor_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        return [int(worker["pid"]) for worker in self.varz().get("workers", []) if worker["pid"]]

    def table(self) -> TableReader:
        """A reader of routerd's shared table, as a worker maps it."""
        if self._reader is None:
            self._reader = TableReader(FileRegion.open(str(self.table_path)))
        return self._reader

    def routes_in_table(self) -> int:
        return self.table().header_word(layout.H_ROUTES)

    def table_generation(self) -> int:
        return self.table().header_word(layout.H_GENERATION)

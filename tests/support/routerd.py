"""Start `routerd` as a real subprocess with a generated config, and talk to it."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.ports import free_port
from tests.support.waiting import wait_until

STATUS_USER = "status-user"
STATUS_PASS = "status-pass"


def routerd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args]


def run_routerd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run routerd to completion (e.g. `--check-config`) and capture its output."""
    return subprocess.run(
        routerd_command(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def base_config(nats_port: int, run_dir: str) -> dict[str, Any]:
    """A config for tests: loopback only, short timers, two workers."""
    return {
        "port": free_port(),
        "bind_address": "127.0.0.1",
        "workers": 2,
        "run_dir": run_dir,
        "status": {
            "host": "127.0.0.1",
            "port": free_port(),
            "user": STATUS_USER,
            "pass": STATUS_PASS,
        },
        "nats": {"hosts": [{"hostname": "127.0.0.1", "port": nats_port}]},
        "start_response_delay_interval": 0,
        "drain_wait": 0,
        "drain_timeout": 10,
        "droplet_stale_threshold": 120,
        "prune_stale_droplets_interval": 30,
    }


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Routerd:
    """A running routerd; `stop()` sends SIGTERM and waits."""

    config: dict[str, Any]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # A command routerd is run under, e.g. ["prlimit", "--nofile=32:64", "--"].
    wrapper: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.config["port"])

    @property
    def status_port(self) -> int:
        return int(self.config["status"]["port"])

    @property
    def config_path(self) -> Path:
        return self.workdir / "router.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "routerd.log"

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"Routerd(port={self.port}, status={self.status_port}, pid={pid})"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self, wait_healthy: bool = True, timeout: float = 30) -> None:
        self.write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            [*self.wrapper, *routerd_command("--config", str(self.config_path))],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        if wait_healthy:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"routerd exited with {self.process.returncode}:\n{self.log_text()}"
                )
            return self.health().status == 200

        try:
            wait_until(healthy, timeout=timeout, what="routerd /health to answer 200")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- routerd log ---\n{self.log_text()}") from None

    def health(self) -> Response:
        return self.status_request("GET", "/health", auth=None)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_events(self) -> Iterator[dict[str, Any]]:
        """Component log lines (JSON) written so far."""
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def events_named(self, message: str) -> list[dict[str, Any]]:
        return [event for event in self.log_events() if event.get("message") == message]

    def request(
        self,
        method: str,
        path: str,
        host: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30,
    ) -> Response:
        return http_request(self.port, method, path, host, headers, body, timeout)

    def get(self, path: str = "/", host: str | None = None, **kwargs: Any) -> Response:
        return self.request("GET", path, host=host, **kwargs)

    def status_request(
        self,
        method: str,
        path: str,
        auth: tuple[str, str] | None = (STATUS_USER, STATUS_PASS),
        headers: dict[str, str] | None = None,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return http_request(self.status_port, method, path, None, headers, None, 10)

    def status_json(self, path: str) -> Any:
        response = self.status_request("GET", path)
        assert response.status == 200, (response.status, response.text)
        return response.json()

    def workers(self) -> list[dict[str, Any]]:
        """/varz's worker entries: index, pid, state, restarts, crashes, ..."""
        return list(self.status_json("/varz")["workers"])

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Workers live in routerd's session; make sure none outlives a test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def http_request(
    port: int,
    method: str,
    path: str,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and not any(k.lower() == "content-length" for k in (headers or {})):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def new_routerd(nats_port: int, overrides: dict[str, Any] | None = None) -> Routerd:
    workdir = Path(tempfile.mkdtemp(prefix="routerd-"))
    run_dir = workdir / "run"
    config = merge(base_config(nats_port, str(run_dir)), overrides or {})
    return Routerd(config=config, workdir=workdir)

"""Start real backend processes (tests/support/backend.py) on ephemeral loopback ports."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Backend:
    """A backend process; `log` holds one JSON line per request it saw."""

    def __init__(self, *args: str, name: str = "backend") -> None:
        self.name = name
        self._dir = Path(tempfile.mkdtemp(prefix="backend-"))
        self.log_path = self._dir / "requests.jsonl"
        with open(self._dir / "stderr.log", "wb") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.backend",
                    "--name",
                    name,
                    "--log",
                    str(self.log_path),
                    *args,
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"backend {name} failed to start: {line!r} {self.stderr()}")
        self.port = int(line.split()[1])

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, port={self.port})"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests_seen(self) -> list[dict[str, Any]]:
        try:
            lines = self.log_path.read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def stderr(self) -> str:
        try:
            return (self._dir / "stderr.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def start_route_service(
    factory: Callable[..., Backend], router_port: int, cert: Path, key: Path, *extra: str
) -> Backend:
    """A route service over TLS that sends every request it gets back through the router."""
    return factory(
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--route-service-to",
        str(router_port),
        *extra,
        name="route-service",
    )

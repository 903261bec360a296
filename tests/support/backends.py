"""Start real backend processes (tests/support/backend.py) on ephemeral loopback ports, through
the launcher (tests/support/launcher.py)."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.launcher import ProcessGroup
from tests.support.routerd import REPO_ROOT
from tests.support.waiting import wait_until

START_TIMEOUT = 15.0
ANNOUNCED = re.compile(r"^LISTENING (\d+)$", re.MULTILINE)


class Backend:
    """A backend process; `log` holds one JSON line per request it saw."""

    def __init__(
        self, *args: str, name: str = "backend", module: str = "tests.support.backend"
    ) -> None:
        self.name = name
        self._dir = Path(tempfile.mkdtemp(prefix="backend-"))
        self.log_path = self._dir / "requests.jsonl"
        self.group = ProcessGroup(self._dir)
        argv = [sys.executable, "-m", module, "--name", name]
        argv += ["--log", str(self.log_path), *args]
        self.process = self.group.start(name, argv, cwd=str(REPO_ROOT))

        def announced() -> re.Match[str] | None:
            self.process.check_running()
            return ANNOUNCED.search(self.process.log_text())

        try:
            match = wait_until(announced, timeout=START_TIMEOUT, what=f"backend {name} to listen")
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"backend {name} failed to start: {exc}") from None
        self.port = int(match.group(1))

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
        """What the process wrote (its announcement, then any errors)."""
        return self.process.log_text()

    def stop(self) -> None:
        self.group.stop_all()


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

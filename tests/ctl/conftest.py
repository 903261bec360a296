"""Run `routerctl` as a subprocess, the way an operator does, against real routerd and NATS."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from supervisor.ctl.shm import read_table
from tests.support.backends import Backend
from tests.support.nats import NatsClient, register_message
from tests.support.routerd import Routerd
from tests.support.waiting import wait_until

# Generous: waits end as soon as the condition holds, and the machine may be busy.
PATIENCE = 30.0

RunCtl = Callable[..., subprocess.CompletedProcess[str]]
RouterFactory = Callable[..., Routerd]
BackendFactory = Callable[..., Backend]


def routerctl_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor.ctl.cli", *args]


def run_routerctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        routerctl_command(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def routerctl() -> RunCtl:
    return run_routerctl


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The exit code, and exactly one line on stderr that is not a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("routerctl: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def register_and_wait(
    router: Routerd, client: NatsClient, port: int, uri: str, **fields: Any
) -> None:
    """Register, then wait until workers can see the route (it is in the shared table)."""
    client.publish("router.register", register_message(port, [uri], **fields))
    wait_until(lambda: is_published(router, uri), timeout=PATIENCE, what=f"{uri} in routes.shm")


def is_published(router: Routerd, uri: str) -> bool:
    return uri in read_table(router.config["run_dir"]).routes

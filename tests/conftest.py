"""Fixtures shared by every test level: real nats-server, real backends, real routerd."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime import logs
from runtime.compiled import compiled_problem
from tests.support.backends import Backend
from tests.support.nats import NatsClient, NatsServer
from tests.support.routerd import Routerd, new_routerd


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests of stale compiled modules would test the code from before the edit.
    problem = compiled_problem()
    if problem is not None:
        pytest.exit(problem, returncode=2)


def _running_nats() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def _backend_starter(
    module: str = "tests.support.backend", default_name: str = "backend"
) -> Iterator[Callable[..., Backend]]:
    """Start backends (tests/support/backend.py, or `module`); all are stopped afterwards."""
    started: list[Backend] = []

    def start(*args: str, name: str = default_name) -> Backend:
        backend = Backend(*args, name=name, module=module)
        started.append(backend)
        return backend

    try:
        yield start
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    yield from _running_nats()


@pytest.fixture(scope="module")
def module_nats() -> Iterator[NatsServer]:
    """One nats-server for every test in a module (for modules sharing one routerd)."""
    yield from _running_nats()


@pytest.fixture
def nats_client(nats_server: NatsServer) -> Iterator[NatsClient]:
    with NatsClient(nats_server.port) as client:
        yield client


@pytest.fixture
def backend_factory() -> Iterator[Callable[..., Backend]]:
    yield from _backend_starter()


@pytest.fixture
def h2_backends() -> Iterator[Callable[..., Backend]]:
    """HTTP/2 backends (tests/support/h2_backend.py): h2c, or TLS with --cert/--key."""
    yield from _backend_starter("tests.support.h2_backend", "h2")


@pytest.fixture(scope="module")
def module_backends() -> Iterator[Callable[..., Backend]]:
    yield from _backend_starter()


@pytest.fixture
def routerd_factory(nats_server: NatsServer) -> Iterator[Callable[..., Routerd]]:
    """Start routerd processes against the test's nats-server; all are stopped afterwards."""
    started: list[Routerd] = []

    def start(
        overrides: dict[str, Any] | None = None,
        wait_healthy: bool = True,
        wrapper: list[str] | None = None,
    ) -> Routerd:
        router = new_routerd(nats_server.port, overrides)
        router.wrapper = wrapper or []
        started.append(router)
        router.start(wait_healthy=wait_healthy)
        return router

    try:
        yield start
    finally:
        for router in started:
            router.stop()


@pytest.fixture
def component_log() -> Iterator[io.BytesIO]:
    """What the component loggers (runtime/logs.py) write in this process, as bytes."""
    stream = io.BytesIO()
    logs.configure("info", stream)
    try:
        yield stream
    finally:
        logs.configure("info", sys.stderr.buffer)

"""A routerd serving TLS (HTTP/2 offered by ALPN) in front of real backends, for the HTTP/2
front end's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import Backend
from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient, NatsServer
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed

HOST = "app.example.com"
RECORD_HOST = "record.example.com"


def tls_config(directory: Path, **overrides: Any) -> dict[str, Any]:
    issued = CertificateAuthority("h2 test CA").issue("localhost")
    return {
        "enable_ssl": True,
        "ssl_port": free_port(),
        "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
        "client_cert_validation": "none",
        "workers": 1,
        "access_log": {"file": str(directory / "access.log")},
        **overrides,
    }


def ssl_port(router: Routerd) -> int:
    return int(router.config["ssl_port"])


@pytest.fixture(scope="module")
def backends(module_backends: Callable[..., Backend]) -> dict[str, Backend]:
    return {
        "app": module_backends(name="app"),
        "record": module_backends("--mode", "record", name="record"),
    }


@pytest.fixture(scope="module")
def start_tls_router(
    module_nats: NatsServer, backends: dict[str, Backend], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Routerd]]:
    started: list[Routerd] = []

    def start(**overrides: Any) -> Routerd:
        directory = tmp_path_factory.mktemp("h2")
        router = new_routerd(module_nats.port, tls_config(directory, **overrides))
        started.append(router)
        router.start()
        with NatsClient(module_nats.port) as nats:
            register(nats, backends["app"].port, [HOST])
            register(nats, backends["record"].port, [RECORD_HOST])
            if not overrides.get("enable_proxy"):  # else the test waits, with PROXY headers
                wait_routed(router, HOST)
                wait_routed(router, RECORD_HOST)
        return router

    yield start
    for router in started:
        router.stop()


@pytest.fixture(scope="module")
def router(start_tls_router: Callable[..., Routerd]) -> Routerd:
    return start_tls_router()

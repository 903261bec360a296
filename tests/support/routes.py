"""Registering backends over NATS and waiting until routerd routes to them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.support.nats import NatsClient
from tests.support.routerd import Routerd, new_routerd
from tests.support.waiting import wait_until


def register(
    nats: NatsClient, port: int, uris: list[str], host: str = "127.0.0.1", **fields: Any
) -> dict[str, Any]:
    message: dict[str, Any] = {"host": host, "port": port, "uris": uris, **fields}
    nats.publish("router.register", message)
    nats.flush()
    return message


def unregister(
    nats: NatsClient, port: int, uris: list[str], host: str = "127.0.0.1", **fields: Any
) -> None:
    nats.publish("router.unregister", {"host": host, "port": port, "uris": uris, **fields})
    nats.flush()


def wait_routed(router: Routerd, host: str, path: str = "/", timeout: float = 10) -> None:
    """Until a request for `host` stops getting the router's own 404."""
    wait_until(
        lambda: router.get(path, host=host).header("X-Cf-RouterError") != "unknown_route",
        timeout=timeout,
        what=f"route {host} to be served",
    )


def wait_unrouted(router: Routerd, host: str, path: str = "/", timeout: float = 10) -> None:
    wait_until(
        lambda: router.get(path, host=host).header("X-Cf-RouterError") == "unknown_route",
        timeout=timeout,
        what=f"route {host} to be gone",
    )


def route_addresses(router: Routerd, uri: str) -> list[str]:
    routes = router.status_json("/routes")
    return sorted(entry["address"] for entry in routes.get(uri, []))


@contextlib.contextmanager
def routed_routerd(
    nats_port: int, backend_port: int, host: str, overrides: dict[str, Any] | None = None
) -> Iterator[Routerd]:
    """A started routerd that already routes `host` to the backend; stopped on the way out."""
    router = new_routerd(nats_port, overrides)
    router.start()
    try:
        with NatsClient(nats_port) as nats:
            register(nats, backend_port, [host])
            wait_routed(router, host)
        yield router
    finally:
        router.stop()

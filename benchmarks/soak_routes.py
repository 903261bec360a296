"""What the soak expects of routerd's routes: which are registered, heartbeated and due to serve.

Plain values, no I/O. Every route the harness registers is in the book; a route is *due*
(must answer through routerd) from `settle` seconds after its last registration while the
harness keeps heartbeating it. A route whose registration is being churned is not due until
the churn ends and it has had its `settle` again. A route lost on purpose (the `lose-route`
fault) stays due while its heartbeats stop: that is how the harness proves it notices a loss.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass

DOMAIN = "soak.example.com"


class Kind(enum.Enum):
    TRAFFIC = "traffic"  # under steady load from the traffic process
    KEEPALIVE = "keepalive"  # to the backend that closes idle keep-alive connections after ~1 s
    WATCHED = "watched"  # only probed
    CHURN = "churn"  # unregistered and registered again by the churn fault


@dataclass
class Route:
    host: str
    backend_port: int
    kind: Kind
    heartbeated: bool = False
    due_from: float | None = None  # monotonic time from which it must serve; None: not due

    def is_due(self, now: float) -> bool:
        return self.due_from is not None and now >= self.due_from

    def message(self) -> bytes:
        """Its `router.register` / `router.unregister` body."""
        body = {"host": "127.0.0.1", "port": self.backend_port, "uris": [self.host]}
        return json.dumps(body, separators=(",", ":")).encode()


class RouteBook:
    def __init__(self, settle: float) -> None:
        self.settle = settle
        self.routes: dict[str, Route] = {}

    def __repr__(self) -> str:
        beating = sum(route.heartbeated for route in self.routes.values())
        return f"RouteBook({len(self.routes)} routes, {beating} heartbeated)"

    def add(self, kind: Kind, count: int, backend_port: int) -> list[Route]:
        added = [
            Route(f"{kind.value}-{index}.{DOMAIN}", backend_port, kind) for index in range(count)
        ]
        self.routes.update((route.host, route) for route in added)
        return added

    def of_kind(self, kind: Kind) -> list[Route]:
        return [route for route in self.routes.values() if route.kind is kind]

    def registered(self, routes: Iterable[Route], now: float) -> None:
        """Registered at `now` and heartbeated from now on: due after `settle`."""
        for route in routes:
            route.heartbeated = True
            route.due_from = now + self.settle

    def churning(self, routes: Iterable[Route]) -> None:
        """Registrations in flux: no heartbeats from the harness, nothing expected."""
        for route in routes:
            route.heartbeated = False
            route.due_from = None

    def lost_on_purpose(self, route: Route) -> None:
        """Unregistered behind the bar's back: still due, no longer heartbeated."""
        route.heartbeated = False

    def heartbeats(self) -> list[bytes]:
        return [route.message() for route in self.routes.values() if route.heartbeated]

    def due(self, now: float) -> list[Route]:
        return [route for route in self.routes.values() if route.is_due(now)]

    def expected_count(self) -> int:
        """Routes routerd should list now: those registered and not churning."""
        return sum(route.due_from is not None for route in self.routes.values())

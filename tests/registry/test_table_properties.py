"""The route table as workers see it, against a plain reference model.

Random register / unregister / prune sequences go through RouteTable, the writer and a reader; after
every step, every lookup in a small universe of hosts and paths must answer what a dict-based model
of Gorouter's rules answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from registry.prune import plan_prune
from registry.shard_routes import pools_of
from registry.shm import layout as L
from registry.shm.region import FileRegion, MemoryRegion
from registry.shm.writer import initial_size
from tests.registry.tables import ROUTER_STALE_THRESHOLD, SharedTable

HOSTS = ["app.example.com", "*.example.com", "b.app.example.com", "*.app.example.com", "*.com"]
PATHS = ["", "/foo", "/foo/bar", "/foobar"]
ADDRESSES = ["10.0.0.1:8001", "10.0.0.1:8002", "10.0.0.2:8001", "10.0.0.3:9000"]
QUERY_HOSTS = [*HOSTS[:1], HOSTS[2], "x.example.com", "c.b.app.example.com", "example.com", "a.org"]
QUERY_PATHS = ["/", "/foo", "/foo/", "/foo/bar/baz", "/foobar", "/foob", "/FOO/Bar"]


@dataclass
class ModelEndpoint:
    last_seen: float
    threshold: int
    tls: bool


@dataclass
class Model:
    """(host, path) → address → endpoint; a route exists while it has an endpoint."""

    routes: dict[tuple[str, str], dict[str, ModelEndpoint]] = field(default_factory=dict)

    def find(self, host: str, path: str) -> set[str] | None:
        path = path.lower().rstrip("/")
        labels = host.split(".")
        candidates = [host] + ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]
        for candidate in candidates:
            best: tuple[str, str] | None = None
            for route_host, route_path in self.routes:
                if route_host != candidate:
                    continue
                if route_path and not (path == route_path or path.startswith(route_path + "/")):
                    continue
                if best is None or len(route_path) > len(best[1]):
                    best = (route_host, route_path)
            if best is not None:
                return set(self.routes[best])
        return None


class TableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Few shards, so that routes share shards and a missed "dirty" mark shows.
        self.shared = SharedTable(shard_count=3)
        self.model = Model()

    @rule(
        host=st.sampled_from(HOSTS),
        paths=st.lists(st.sampled_from(PATHS), min_size=1, max_size=2),
        address=st.sampled_from(ADDRESSES),
        threshold=st.sampled_from([0, 10, 60]),
        tls=st.booleans(),
    )
    def register(
        self, host: str, paths: list[str], address: str, threshold: int, tls: bool
    ) -> None:
        fields: dict[str, object] = {"stale_threshold_in_seconds": threshold}
        if tls:
            port = int(address.rpartition(":")[2])
            fields.update(port=0, tls_port=port, server_cert_domain_san="app.internal")
        self.shared.register(*(host + path for path in paths), address=address, **fields)
        effective = threshold or ROUTER_STALE_THRESHOLD
        for path in paths:
            endpoint = ModelEndpoint(self.shared.now, effective, tls)
            self.model.routes.setdefault((host, path), {})[address] = endpoint

    @rule(
        host=st.sampled_from(HOSTS), path=st.sampled_from(PATHS), address=st.sampled_from(ADDRESSES)
    )
    def unregister(self, host: str, path: str, address: str) -> None:
        self.shared.unregister(host + path, address=address)
        endpoints = self.model.routes.get((host, path), {})
        endpoints.pop(address, None)
        if not endpoints:
            self.model.routes.pop((host, path), None)

    @precondition(lambda self: self.model.routes)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        """A re-registration that changes nothing must write nothing."""
        host, path = data.draw(st.sampled_from(sorted(self.model.routes)))
        address = data.draw(st.sampled_from(sorted(self.model.routes[host, path])))
        endpoint = self.model.routes[host, path][address]
        self.shared.publish()
        fields: dict[str, object] = {}
        if endpoint.threshold != ROUTER_STALE_THRESHOLD:
            fields["stale_threshold_in_seconds"] = endpoint.threshold
        if endpoint.tls:
            port = int(address.rpartition(":")[2])
            fields.update(port=0, tls_port=port, server_cert_domain_san="app.internal")
        self.shared.register(host + path, address=address, **fields)
        endpoint.last_seen = self.shared.now
        assert self.shared.table.take_dirty() == []

    @rule(seconds=st.sampled_from([1.0, 15.0, 45.0, 130.0]))
    def time_passes(self, seconds: float) -> None:
        self.shared.now += seconds

    @rule()
    def prune(self) -> None:
        now = self.shared.now
        table = self.shared.table
        plan = plan_prune(
            now,
            table.endpoint_ages(),
            nats_connected=True,
            suspend_when_disconnected=True,
            was_suspended=False,
        )
        for key, address in plan.stale:
            table.remove_endpoint(key, address, now)
        for route, endpoints in list(self.model.routes.items()):
            for address, endpoint in list(endpoints.items()):
                if not endpoint.tls and now - endpoint.last_seen > endpoint.threshold:
                    del endpoints[address]
            if not endpoints:
                del self.model.routes[route]

    @invariant()
    def lookups_match_the_model(self) -> None:
        self.shared.publish()
        for host in QUERY_HOSTS:
            for path in QUERY_PATHS:
                assert self.shared.addresses(host, path) == self.model.find(host, path), (
                    host,
                    path,
                )
        # The header's counts (routerctl status shows them) follow the table too.
        addresses = {address for endpoints in self.model.routes.values() for address in endpoints}
        assert self.shared.reader.header_word(L.H_ROUTES) == len(self.model.routes)
        assert self.shared.reader.header_word(L.H_ENDPOINTS) == len(addresses)

    @invariant()
    def one_slot_per_address(self) -> None:
        slots: dict[str, set[int]] = {}
        for pool in self.shared.table.pools.values():
            for address, state in pool.endpoints.items():
                slots.setdefault(address, set()).add(state.record.slot)
        assert all(len(found) == 1 for found in slots.values()), slots
        owners = [next(iter(found)) for found in slots.values()]
        assert len(owners) == len(set(owners)), slots


TableMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
)
test_table_matches_reference_model = TableMachine.TestCase


def test_heartbeat_that_changes_nothing_writes_nothing() -> None:
    shared = SharedTable(shard_count=16)
    for index in range(20):
        shared.register(f"app{index}.example.com", address=f"10.0.0.{index}:8080", app="guid")
    assert shared.publish()
    generation = shared.writer.generation
    seqs = [shared.writer.shard_seq(shard) for shard in range(16)]
    shared.now += 30
    for index in range(20):
        shared.register(f"app{index}.example.com", address=f"10.0.0.{index}:8080", app="guid")
    assert shared.table.dirty_count == 0
    assert shared.publish() == []
    assert shared.writer.generation == generation
    assert [shared.writer.shard_seq(shard) for shard in range(16)] == seqs
    # ... but the heartbeat did count: the endpoints are fresh for the pruner.
    assert {age.last_seen for age in shared.table.endpoint_ages()} == {shared.now}


def test_changed_registration_dirties_only_its_shard() -> None:
    shared = SharedTable(shard_count=16)
    for index in range(20):
        shared.register(f"app{index}.example.com", address=f"10.0.0.{index}:8080")
    shared.publish()
    shared.register("app3.example.com", address="10.0.0.3:8080", tags={"version": "2"})
    dirty = shared.publish()
    assert len(dirty) == 1
    pool = shared.find("app3.example.com")
    assert pool is not None
    assert pool.endpoints[0].tags == {"version": "2"}


def _fill(shared: SharedTable, routes: int) -> None:
    for index in range(routes):
        shared.register(
            f"app{index}.example.com",
            f"app{index}.example.com/api/v{index % 3}",
            address=f"10.{index // 250}.{index % 250}.1:{8000 + index % 7}",
            tags={"component": "route-emitter", "index": str(index)},
        )
        if index % 97 == 0:
            shared.publish()
    shared.publish()


def _check_all(shared: SharedTable, routes: int) -> None:
    for index in range(routes):
        address = f"10.{index // 250}.{index % 250}.1:{8000 + index % 7}"
        assert shared.addresses(f"app{index}.example.com") == {address}
        pool = shared.find(f"app{index}.example.com", f"/api/v{index % 3}/x")
        assert pool is not None and pool.path == f"/api/v{index % 3}"


def test_writer_growth_keeps_readers_correct_in_memory() -> None:
    routes = 1500
    size = initial_size(8)
    shared = SharedTable(shard_count=8, region=MemoryRegion(size, capacity=size * 256))
    _fill(shared, routes)
    assert shared.writer.mapped_size > size
    _check_all(shared, routes)


def test_writer_growth_keeps_a_separately_mapped_reader_correct(tmp_path: Path) -> None:
    routes = 1500
    path = str(tmp_path / "routes")
    size = initial_size(8)
    writer_region = FileRegion.create(path, size)
    writer_region.publish_path()
    shared = SharedTable(shard_count=8, region=writer_region, reader_region=FileRegion.open(path))
    # The reader mapped the file at its first size; the writer grows it several times.
    _fill(shared, routes)
    assert shared.writer.mapped_size >= 4 * size
    assert os.path.getsize(path) == shared.writer.mapped_size
    _check_all(shared, routes)
    # Every shard decodes, and together they hold every route.
    total = 0
    for shard in range(8):
        decoded = shared.reader.shard(shard)
        assert isinstance(decoded, dict)
        total += sum(1 for _ in pools_of(decoded))
    assert total == 2 * routes

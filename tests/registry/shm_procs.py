"""Child-process bodies for the shared-memory torture tests (started with multiprocessing).

Every shard the torture writer publishes carries a check pool naming the batch (generation) it was
written in, how many pools the shard holds and a digest of them, so a reader can tell a complete
published shard from a torn or mixed one without knowing what the writer did. The check pool also
carries 16 KiB of filler derived from the generation: copies take long enough for the writer and
the readers to overlap often, and a copy mixing two payloads shows in the filler.
"""

from __future__ import annotations

import os
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from registry.lookup import RouteLookup
from registry.message import Registration, parse_registration
from registry.records import PoolRecord, encode_shard
from registry.rejection import Rejection
from registry.routekey import host_candidates
from registry.routes import RouteTable
from registry.shard_routes import ShardRoutes, pool_at, pools_of
from registry.sharding import shard_of
from registry.shm import layout as L
from registry.shm.counters import CounterTable, Stat
from registry.shm.reader import ShardReadError, TableReader
from registry.shm.region import FileRegion
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator

CHECK_HOST = "~check"
FILLER_REPEATS = 2048  # 16 KiB
HOSTS = [f"app{i}.example.com" for i in range(100)] + [f"*.w{i}.example.com" for i in range(20)]
PATHS = ["", "/api", "/api/v2"]
PORTS = [8001, 8002, 8003, 8004]
# Hosts a reader looks up: exact ones, and ones only a wildcard answers.
QUERY_HOSTS = [f"app{i}.example.com" for i in range(0, 100, 3)] + [
    f"x.w{i}.example.com" for i in range(20)
]


def endpoint_host(host: str) -> str:
    """Each route host has its own backend IP: a reader can spot an endpoint in the wrong pool."""
    return f"10.0.{zlib.crc32(host.encode()) % 250}.1"


def shard_digest(pools: list[PoolRecord]) -> int:
    # Decoding keeps the published order (pools sorted by host, then path), so re-encoding what a
    # reader decoded gives the writer's bytes back exactly when the read was complete.
    return zlib.crc32(encode_shard(pools))


def filler(generation: int) -> str:
    """Bulk that makes each copy take a while, so readers and the writer overlap often."""
    return f"{generation:08d}" * FILLER_REPEATS


def check_pool(generation: int, pools: list[PoolRecord]) -> PoolRecord:
    url = f"https://check/{generation}/{len(pools)}/{shard_digest(pools)}#{filler(generation)}"
    return PoolRecord(CHECK_HOST, "", (), route_service_url=url)


def checked_payload(table: RouteTable, shard: int, generation: int) -> bytes:
    pools = table.shard_pools(shard)
    return encode_shard([*pools, check_pool(generation, pools)])


@dataclass
class ShardCheck:
    """What one read of a shard showed."""

    generation: int = 0
    error: str = ""


def check_shard(routes: ShardRoutes | ShardReadError, shard: int, shard_count: int) -> ShardCheck:
    """Verify one read shard against its own check pool."""
    if isinstance(routes, ShardReadError):
        return ShardCheck(error=f"read error: {routes.reason}")
    pools = [pool for pool in pools_of(routes) if pool.host != CHECK_HOST]
    check = pool_at(routes, CHECK_HOST, "")
    if check is None:
        if pools:
            return ShardCheck(error=f"shard {shard}: {len(pools)} pools and no check pool")
        return ShardCheck(generation=0)  # never published yet
    summary, _, bulk = check.route_service_url.removeprefix("https://").partition("#")
    try:
        generation, count, digest = (int(part) for part in summary.split("/")[1:])
    except ValueError:
        return ShardCheck(error=f"shard {shard}: torn check pool {summary[:40]!r}")
    if count != len(pools) or digest != shard_digest(pools):
        return ShardCheck(error=f"shard {shard}: torn pools (generation {generation})")
    if bulk != filler(generation):
        return ShardCheck(error=f"shard {shard}: torn check pool (generation {generation})")
    for pool in pools:
        if shard_of(pool.host, shard_count) != shard:
            return ShardCheck(error=f"shard {shard}: {pool.host} belongs elsewhere")
        for endpoint in pool.endpoints:
            if endpoint.host != endpoint_host(pool.host) or endpoint.port not in PORTS:
                return ShardCheck(error=f"shard {shard}: {endpoint.address} in {pool.uri}")
    return ShardCheck(generation=generation)


class Updates:
    """Random registrations and unregistrations over a fixed universe, parsed once each."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._parsed: dict[tuple[str, int, bool], Registration] = {}

    def next(self) -> tuple[bool, Registration]:
        host = self.rng.choice(HOSTS)
        port = self.rng.choice(PORTS)
        is_register = self.rng.random() < 0.6
        key = (host, port, is_register)
        reg = self._parsed.get(key)
        if reg is None:
            uris = [host + path for path in PATHS[: 1 + zlib.crc32(host.encode()) % 3]]
            body = msgspec.json.encode(
                {
                    "host": endpoint_host(host),
                    "port": port,
                    "uris": uris,
                    "tags": {"component": "torture"},
                }
            )
            parsed = parse_registration(body, 120, for_unregister=not is_register)
            assert not isinstance(parsed, Rejection), parsed
            reg = self._parsed[key] = parsed
        return is_register, reg


def run_table_writer(
    path: str, shard_count: int, updates: int, seed: int, sync: Any, results: Any
) -> None:
    """Apply `updates` random updates, publishing dirty shards in batches of 1..100 updates."""
    region = FileRegion.create(path, initial_size(shard_count))
    writer = TableWriter(region, shard_count)
    region.publish_path()
    sync.created.set()
    sync.start.wait(30)
    table = RouteTable(shard_count, SlotAllocator(1 << 16, 0.0))
    source = Updates(seed)
    last_generation = [0] * shard_count
    started = time.monotonic()
    publishes = 0
    now = 0.0
    applied = 0
    while applied < updates:
        for _ in range(source.rng.randint(1, 100)):
            is_register, reg = source.next()
            now += 0.001
            if is_register:
                table.register(reg, now)
            else:
                table.unregister(reg, now)
            applied += 1
        shards = table.take_dirty()
        if shards:
            generation = writer.generation + 1
            writer.publish(
                [(shard, checked_payload(table, shard, generation)) for shard in shards],
                routes=len(table.pools),
                endpoints=table.endpoint_count,
            )
            for shard in shards:
                last_generation[shard] = generation
            publishes += 1
    sync.done.set()
    results.put(
        {
            "role": "writer",
            "updates": applied,
            "publishes": publishes,
            "generation": writer.generation,
            "last_generation": last_generation,
            "routes": len(table.pools),
            "initial_size": initial_size(shard_count),
            "final_size": writer.mapped_size,
            "seconds": time.monotonic() - started,
        }
    )


@dataclass
class ReaderReport:
    reads: int = 0
    lookups: int = 0
    generations: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < 10:
            self.errors.append(text)


def run_table_reader(path: str, name: str, sync: Any, results: Any) -> None:
    """Read every shard and look up hosts continuously until the writer is done, checking all."""
    sync.created.wait(30)
    region = FileRegion.open(path)
    reader = TableReader(region)  # a worker's reader: decodes a shard again only when it changed
    # Its host index refreshes whenever the table has moved, racing the writer's publishes.
    lookup = RouteLookup(reader, refresh_interval=0.0)
    shard_count = reader.shard_count
    seen = [0] * shard_count
    report = ReaderReport()
    rng = random.Random(name)
    retries = 0

    def read(source: TableReader, shard: int) -> None:
        generation_before = source.generation
        result = check_shard(source.shard(shard), shard, shard_count)
        report.reads += 1
        if result.error:
            report.error(result.error)
            return
        if result.generation < seen[shard]:
            report.error(f"shard {shard}: generation {result.generation} after {seen[shard]}")
        # A batch's shards flip before the header counts the batch: at most one ahead.
        if result.generation > source.generation + 1 or generation_before > source.generation:
            report.error(f"shard {shard}: generation {result.generation} from the future")
        seen[shard] = max(seen[shard], result.generation)
        report.generations.add(result.generation)

    def look_up() -> None:
        host = rng.choice(QUERY_HOSTS)
        pool = lookup.find(host, rng.choice(["/", "/api/v2/x", "/api"]))
        report.lookups += 1
        if isinstance(pool, ShardReadError):
            report.error(f"lookup {host}: {pool.reason}")
        elif pool is not None and pool.host not in host_candidates(host):
            report.error(f"lookup {host}: got pool for {pool.host}")
        elif pool is not None and any(e.host != endpoint_host(pool.host) for e in pool.endpoints):
            report.error(f"lookup {host}: an endpoint of another host in {pool.host}'s pool")

    sync.start.wait(30)
    while not sync.done.is_set():
        for shard in range(shard_count):
            read(reader, shard)
        # A reader with nothing cached copies every shard, at random moments for the writer.
        fresh = TableReader(region)
        for shard in rng.sample(range(shard_count), shard_count):
            read(fresh, shard)
        retries += fresh.retries
        for _ in range(20):
            look_up()
    for shard in range(shard_count):  # the final state, after the writer's last publish
        read(reader, shard)
    # Once the writer is done, the index catches up and answers as the shards do.
    for _ in range(shard_count + 1):
        if lookup.index.hosts() is not None:
            break
    by_shards = RouteLookup(reader, refresh_interval=float("inf"))
    for host in QUERY_HOSTS:
        for path in ("/", "/api/v2/x", "/api"):
            if lookup.find(host, path) != by_shards.find(host, path):
                report.error(f"final lookup {host}{path}: the index and the shards differ")
    results.put(
        {
            "role": "reader",
            "name": name,
            "reads": report.reads,
            "lookups": report.lookups,
            "generations": len(report.generations),
            "final": seen,
            "errors": report.errors,
            "retries": retries + reader.retries,
            "header_size": reader.header_word(L.H_SIZE),
        }
    )


def run_counter_worker(path: str, worker: int, increments: int, sync: Any) -> None:
    """Count as a router worker does: only in its own row."""
    table = CounterTable(FileRegion.open(path, writable=True))
    row = table.row(worker)
    sync.start.wait(30)
    for _ in range(increments):
        row.add(Stat.requests)
        row.add(Stat.bytes_sent, 3)
        row.inflight[5] += 1


def run_publish_then_park(path: str, shard_count: int, sync: Any, results: Any) -> None:
    """Publish a known state, report it, then wait to be killed."""
    region = FileRegion.create(path, initial_size(shard_count))
    writer = TableWriter(region, shard_count)
    region.publish_path()
    table = RouteTable(shard_count, SlotAllocator(1024, 0.0))
    source = Updates(seed=7)
    for batch in range(20):
        for _ in range(50):
            is_register, reg = source.next()
            if is_register:
                table.register(reg, float(batch))
            else:
                table.unregister(reg, float(batch))
        generation = writer.generation + 1
        writer.publish(
            [(shard, checked_payload(table, shard, generation)) for shard in table.take_dirty()]
        )
    expected = {
        f"{key.host}{key.path}": sorted(pool.endpoints) for key, pool in table.pools.items()
    }
    results.put({"pid": os.getpid(), "generation": writer.generation, "routes": expected})
    sync.done.wait(60)  # killed long before this


def run_publish_forever(path: str, shard_count: int, progress: Any) -> None:
    """Publish every shard in every batch, as fast as possible, until killed."""
    region = FileRegion.create(path, initial_size(shard_count))
    writer = TableWriter(region, shard_count)
    region.publish_path()
    table = RouteTable(shard_count, SlotAllocator(1 << 16, 0.0))
    source = Updates(seed=11)
    deadline = time.monotonic() + 60  # killed long before this
    while time.monotonic() < deadline:
        for _ in range(20):
            is_register, reg = source.next()
            if is_register:
                table.register(reg, 0.0)
            else:
                table.unregister(reg, 0.0)
        table.take_dirty()
        generation = writer.generation + 1
        writer.publish(
            [(shard, checked_payload(table, shard, generation)) for shard in range(shard_count)]
        )
        progress.value = generation

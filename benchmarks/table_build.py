"""Building a shared route table the way the supervisor does, for the table micro benchmarks.

Registration messages go through `parse_registration` into a `RouteTable`; dirty shards are
encoded with `RouteTable.shard_payload` (the supervisor's path: cached pool encodings joined)
and published by a `TableWriter` into a file-backed region, with the supervisor's coalescing
rule: publish `publish_interval` after the first change, or at once when `PUBLISH_BATCH` shards
are dirty. Sizes and intervals are the config defaults.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from registry.message import parse_registration
from registry.rejection import Rejection
from registry.routes import RouteTable
from registry.shm.region import FileRegion
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator
from runtime.config_model import Config, RouteTableConfig
from supervisor.routing import PUBLISH_BATCH

DEFAULTS = RouteTableConfig()
SHARDS = DEFAULTS.shards
PUBLISH_INTERVAL = float(DEFAULTS.publish_interval)
STALE_THRESHOLD = Config().stale_threshold_seconds
SLOT_GRACE = 120.0


def route_host(index: int, family: str = "app") -> str:
    return f"{family}-{index}.table.example.com"


def endpoint_address(index: int, endpoint: int) -> tuple[str, int]:
    """A distinct backend address per (route, endpoint), as app instances have in Cloud Foundry."""
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}", 8000 + endpoint


def registration(index: int, endpoint: int, family: str = "app", app: str = "") -> bytes:
    host, port = endpoint_address(index, endpoint)
    message: dict[str, object] = {"host": host, "port": port, "uris": [route_host(index, family)]}
    if app:
        message["app"] = app
    return json.dumps(message, separators=(",", ":")).encode()


def registrations(routes: int, endpoints: int, family: str = "app", app: str = "") -> list[bytes]:
    """One message per (route, endpoint), endpoint-major so each pass touches every route."""
    return [
        registration(index, endpoint, family, app)
        for endpoint in range(endpoints)
        for index in range(routes)
    ]


class LiveTable:
    """A RouteTable and the TableWriter publishing it, with the supervisor's coalescing."""

    def __init__(self, path: Path, shards: int = SHARDS) -> None:
        self.path = path
        self.region = FileRegion.create(str(path), initial_size(shards))
        self.writer = TableWriter(self.region, shards)
        self.region.publish_path()
        self.table = RouteTable(shards, SlotAllocator(DEFAULTS.max_endpoints, SLOT_GRACE))
        self.next_publish: float | None = None
        self.publishes = 0
        self.shards_published = 0
        self.rejected = 0

    def __repr__(self) -> str:
        return f"LiveTable({self.table!r}, {self.writer!r})"

    def register(self, data: bytes) -> None:
        """Apply one message as the supervisor does, publishing when the coalescing rule says."""
        reg = parse_registration(data, STALE_THRESHOLD)
        if isinstance(reg, Rejection):
            self.rejected += 1
            return
        if isinstance(self.table.register(reg, time.time()), Rejection):
            self.rejected += 1
            return
        dirty = self.table.dirty_count
        if dirty >= PUBLISH_BATCH:
            self.publish()
        elif dirty and self.next_publish is None:
            self.next_publish = time.perf_counter() + PUBLISH_INTERVAL

    def publish_if_due(self, now: float) -> bool:
        if self.next_publish is not None and now >= self.next_publish:
            self.publish()
            return True
        return False

    def publish(self) -> None:
        self.next_publish = None
        shards = self.table.take_dirty()
        if not shards:
            return
        payloads = [(shard, self.table.shard_payload(shard)) for shard in shards]
        self.writer.publish(
            payloads, routes=len(self.table.pools), endpoints=self.table.endpoint_count
        )
        self.publishes += 1
        self.shards_published += len(shards)

    def apply_all(self, messages: list[bytes]) -> float:
        """Apply messages back to back (checking the publish timer as the event loop would);
        returns the seconds taken, the final publish included."""
        started = time.perf_counter()
        for index, data in enumerate(messages):
            self.register(data)
            if index & 31 == 0:
                self.publish_if_due(time.perf_counter())
        self.publish()
        return time.perf_counter() - started

    def sizes(self) -> dict[str, int]:
        stat = os.stat(self.path)
        return {
            "routes": len(self.table.pools),
            "endpoints": self.table.endpoint_count,
            "mapped_size": self.writer.mapped_size,
            "bytes_in_use": self.writer.bytes_in_use,
            "file_size": stat.st_size,
            "file_allocated": stat.st_blocks * 512,
        }


def wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.005)

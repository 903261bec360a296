"""`routerctl routes --from-shm`: the live route table read straight from run_dir, read-only.

This is the table the workers route by, read through registry/'s lock-free reader, so it works
while the status server is down and after routerd exited (the file stays behind). Time to live
comes from the supervisor's row in counters.shm, where it keeps each endpoint's last-seen time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from registry.records import EndpointRecord
from registry.shard_routes import pools_of
from registry.shm import layout
from registry.shm.counters import CounterTable
from registry.shm.reader import ShardReadError, TableReader, is_pid_alive
from registry.shm.region import FileRegion
from supervisor.ctl.client import RoutesJson
from supervisor.ctl.errors import Unreachable, UsageProblem, describe_os_error
from supervisor.ctl.target import COUNTERS_FILE, TABLE_FILE
from supervisor.routes_view import endpoint_json
from supervisor.run_lock import LockState, probe


@dataclass(frozen=True)
class TableSnapshot:
    routes: RoutesJson
    writer_pid: int
    writer_alive: bool
    generation: int
    last_update_ms: int


def read_table(run_dir: str, now: float | None = None) -> TableSnapshot:
    """Every route in the table, in /routes' shape with `ttl_left`."""
    table_path = os.path.join(run_dir, TABLE_FILE)
    region = _open(table_path)
    try:
        reader = TableReader(region)
    except ValueError as exc:
        raise Unreachable(f"{table_path}: {exc}") from None
    last_seen = _last_seen(os.path.join(run_dir, COUNTERS_FILE))
    now = time.time() if now is None else now
    routes: RoutesJson = {}
    for shard in range(reader.shard_count):
        pools = reader.shard(shard)
        if isinstance(pools, ShardReadError):
            raise Unreachable(f"{table_path}: {pools.reason}")
        for pool in pools_of(pools):
            routes[pool.uri] = [
                {
                    **endpoint_json(endpoint, pool.route_service_url, pool.load_balancing),
                    "ttl_left": _ttl_left(endpoint, last_seen, now),
                }
                for endpoint in pool.endpoints
            ]
    writer_pid = reader.header_word(layout.H_WRITER_PID)
    return TableSnapshot(
        routes=dict(sorted(routes.items())),
        writer_pid=writer_pid,
        writer_alive=is_writer_running(run_dir, writer_pid),
        generation=reader.generation,
        last_update_ms=reader.header_word(layout.H_LAST_UPDATE_MS),
    )


def is_writer_running(run_dir: str, pid: int) -> bool:
    """Whether the routerd that wrote the table still runs: it holds run_dir's lock (its PID
    alone may have been given to another process since it exited)."""
    try:
        lock = probe(run_dir)
    except OSError:
        return is_pid_alive(pid)
    if lock.state is LockState.ABSENT:  # a routerd from before the lock
        return is_pid_alive(pid)
    return lock.state is LockState.HELD and lock.pid == pid


def _ttl_left(record: EndpointRecord, last_seen: memoryview | None, now: float) -> float | None:
    if record.tls or last_seen is None or not 0 <= record.slot < len(last_seen):
        return None
    seen_ms = int(last_seen[record.slot])
    if seen_ms <= 0:
        return None
    left = record.stale_threshold - (now - seen_ms / 1000)
    return max(0, round(left, 1))


def _open(path: str) -> FileRegion:
    try:
        return FileRegion.open(path)
    except FileNotFoundError:
        raise Unreachable(
            f"no route table at {path}: is routerd running with this run_dir? (--run-dir)"
        ) from None
    except PermissionError:
        raise UsageProblem(
            f"cannot read {path}: permission denied (run as root or as the routerd user)"
        ) from None
    except (OSError, ValueError) as exc:
        raise Unreachable(f"cannot map {path}: {describe_os_error(exc)}") from None


def _last_seen(path: str) -> memoryview | None:
    """The supervisor's last-seen row, or None if counters.shm is missing or unreadable."""
    try:
        return CounterTable(FileRegion.open(path)).supervisor_row
    except (OSError, ValueError):
        return None

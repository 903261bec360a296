"""The shared-memory table and counters under real concurrency: separate processes, real files.

A writer process applies 100k random updates, publishing coalesced batches, while two reader
processes read every shard (through a caching reader as workers do, and through fresh readers that
copy every shard) and look up hosts without pause. Each published shard carries a check of itself
(see shm_procs.py), so a torn, mixed or stale read shows up as an error in a reader.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest

from registry.lookup import RouteLookup
from registry.records import PoolRecord
from registry.shm import layout as L
from registry.shm.counters import CounterTable, Stat, counters_size
from registry.shm.reader import TableReader, is_pid_alive
from registry.shm.region import FileRegion
from tests.registry import shm_procs

pytestmark = pytest.mark.torture

CONTEXT = multiprocessing.get_context("spawn")
UPDATES = 100_000
DEADLINE = 60.0  # generous upper bound on a loaded machine; a normal run takes a few seconds


class Sync:
    """Events the processes of one test share; picklable for spawn."""

    def __init__(self) -> None:
        self.created = CONTEXT.Event()
        self.start = CONTEXT.Event()
        self.done = CONTEXT.Event()


@pytest.fixture
def processes() -> Iterator[Callable[..., BaseProcess]]:
    """Start child processes; any still running at the end of the test is killed."""
    started: list[BaseProcess] = []

    def start(target: Callable[..., None], *args: Any) -> BaseProcess:
        process = CONTEXT.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(10)


def collect(
    results: Any, children: list[BaseProcess], count: int, deadline: float
) -> list[dict[str, Any]]:
    """Reports from `count` children; fails as soon as one of them dies without reporting."""
    reports: list[dict[str, Any]] = []
    while len(reports) < count:
        try:
            reports.append(results.get(timeout=0.05))
            continue
        except queue.Empty:
            pass
        crashed = [child for child in children if child.exitcode not in (None, 0)]
        assert not crashed, f"{crashed} died; reports so far: {reports}"
        assert time.monotonic() < deadline, f"{len(reports)} of {count} reported: {reports}"
    return reports


def join_all(processes: list[BaseProcess], deadline: float) -> None:
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.1))
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


def wait_for(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_readers_never_see_a_torn_shard(
    tmp_path: Path, processes: Callable[..., BaseProcess]
) -> None:
    deadline = time.monotonic() + DEADLINE
    path = str(tmp_path / "routes")
    shard_count = 16
    sync, results = Sync(), CONTEXT.Queue()
    children = [
        processes(shm_procs.run_table_writer, path, shard_count, UPDATES, 1, sync, results),
        processes(shm_procs.run_table_reader, path, "reader-a", sync, results),
        processes(shm_procs.run_table_reader, path, "reader-b", sync, results),
    ]
    wait_for(lambda: sync.created.is_set() or not children[0].is_alive(), deadline, "the table")
    sync.start.set()
    reports = collect(results, children, 3, deadline)
    join_all(children, deadline)

    writer = next(report for report in reports if report["role"] == "writer")
    readers = [report for report in reports if report["role"] == "reader"]
    assert writer["updates"] >= UPDATES
    assert writer["publishes"] >= UPDATES // 200  # coalesced, but many batches
    assert writer["generation"] == writer["publishes"]
    assert writer["final_size"] > writer["initial_size"]  # the file grew under the readers
    for reader in readers:
        assert reader["errors"] == [], reader
        # Each reader ends on exactly the writer's last state of every shard.
        assert reader["final"] == writer["last_generation"], reader["name"]
        assert reader["header_size"] == writer["final_size"]
        assert reader["lookups"] > 0
    # The readers ran while the writer wrote: they saw intermediate states, not only the last.
    assert sum(reader["generations"] for reader in readers) > 2 * len(readers), readers


def test_counter_rows_sum_correctly_under_concurrent_writers(
    tmp_path: Path, processes: Callable[..., BaseProcess]
) -> None:
    deadline = time.monotonic() + DEADLINE
    path = str(tmp_path / "counters")
    increments = 200_000
    region = FileRegion.create(path, counters_size(workers=2, slots=64))
    counters = CounterTable.format(region, workers=2, slots=64)
    region.publish_path()
    sync = Sync()
    children = [
        processes(shm_procs.run_counter_worker, path, worker, increments, sync) for worker in (0, 1)
    ]
    sync.start.set()
    # Sums read while both rows change only ever grow, and never exceed what was counted.
    previous, samples = 0, 0
    while any(child.is_alive() for child in children) and time.monotonic() < deadline:
        total = counters.stat_totals()[Stat.requests]
        assert previous <= total <= 2 * increments
        assert counters.in_flight(5) <= 2 * increments
        previous, samples = total, samples + 1
    join_all(children, deadline)
    assert samples > 0
    totals = counters.stat_totals()
    assert totals[Stat.requests] == 2 * increments
    assert totals[Stat.bytes_sent] == 6 * increments
    assert counters.in_flight(5) == 2 * increments
    assert counters.in_flight(4) == 0
    assert [counters.stats_of(worker)[Stat.requests] for worker in (0, 1)] == [increments] * 2
    # A respawned worker starts with no in-flight requests; its request counts are kept.
    counters.clear_in_flight(0)
    assert counters.in_flight(5) == increments
    assert counters.stat_totals()[Stat.requests] == 2 * increments


def test_reader_attaching_after_the_writer_was_killed_reads_the_last_state(
    tmp_path: Path, processes: Callable[..., BaseProcess]
) -> None:
    deadline = time.monotonic() + DEADLINE
    path = str(tmp_path / "routes")
    sync, results = Sync(), CONTEXT.Queue()
    writer = processes(shm_procs.run_publish_then_park, path, 16, sync, results)
    (published,) = collect(results, [writer], 1, deadline)
    os.kill(published["pid"], signal.SIGKILL)
    writer.join(max(deadline - time.monotonic(), 0.1))
    assert writer.exitcode == -signal.SIGKILL
    assert not is_pid_alive(published["pid"])

    reader = TableReader(FileRegion.open(path))
    assert reader.generation == published["generation"]
    assert reader.header_word(L.H_WRITER_PID) == published["pid"]
    lookup = RouteLookup(reader)
    assert published["routes"]
    for uri, addresses in published["routes"].items():
        host, slash, path_part = uri.partition("/")
        pool = lookup.find(host, slash + path_part)
        assert isinstance(pool, PoolRecord), uri
        assert pool.uri == uri
        assert sorted(endpoint.address for endpoint in pool.endpoints) == addresses
    for shard in range(16):
        check = shm_procs.check_shard(reader.shard(shard), shard, 16)
        assert check.error == ""


def test_writer_killed_mid_publish_leaves_complete_shards(
    tmp_path: Path, processes: Callable[..., BaseProcess]
) -> None:
    deadline = time.monotonic() + DEADLINE
    path = str(tmp_path / "routes")
    shard_count = 16
    progress = CONTEXT.Value("q", 0, lock=False)
    writer = processes(shm_procs.run_publish_forever, path, shard_count, progress)
    wait_for(lambda: progress.value >= 300, deadline, "300 publishes")
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(max(deadline - time.monotonic(), 0.1))
    last_complete = progress.value

    reader = TableReader(FileRegion.open(path))
    for shard in range(shard_count):
        check = shm_procs.check_shard(reader.shard(shard), shard, shard_count)
        assert check.error == ""
        # Every shard is in every batch: each holds the last complete batch or the one after.
        assert check.generation in (last_complete, last_complete + 1), shard

"""nats-server and routerd as benchmark subjects: start, register, observe.

They start through the launcher the tests use (tests/support/: launcher.py, nats.py,
routerd.py); what is here is only what the benchmarks add: their routerd settings, one-shot
publishing, and reading routerd's shared route table as a worker does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.shm import layout
from registry.shm.reader import TableReader
from registry.shm.region import FileRegion
from tests.support.launcher import ProcessGroup
from tests.support.nats import NatsClient, NatsServer
from tests.support.routerd import Routerd, merge, new_routerd


def start_nats(group: ProcessGroup, name: str = "nats-server") -> NatsServer:
    """A nats-server among `group`'s processes, accepting clients."""
    server = NatsServer(name=name, group=group)
    server.start()
    return server


def publish(nats_port: int, subject: str, payloads: list[dict[str, Any]]) -> None:
    """Publish a few messages and return once the server has them all."""
    with NatsClient(nats_port) as client:
        for payload in payloads:
            client.publish(subject, payload)
        client.flush()


@dataclass(repr=False)
class TableRouterd(Routerd):
    """A routerd whose shared route table the benchmark reads, as a worker maps it."""

    reader: TableReader | None = None

    @property
    def table_path(self) -> Path:
        return Path(self.config["run_dir"]) / "routes.shm"

    def table(self) -> TableReader:
        if self.reader is None:
            self.reader = TableReader(FileRegion.open(str(self.table_path)))
        return self.reader

    def routes_in_table(self) -> int:
        return self.table().header_word(layout.H_ROUTES)

    def table_generation(self) -> int:
        return self.table().header_word(layout.H_GENERATION)


def bench_routerd(
    group: ProcessGroup,
    nats_port: int,
    name: str = "routerd",
    workers: int = 2,
    log_level: str = "error",
    overrides: dict[str, Any] | None = None,
    run_root: Path | None = None,
) -> TableRouterd:
    """A routerd (not started) among `group`'s processes: `workers` workers, logging at
    `log_level`, no access log unless `overrides` sets one; `run_root` holds its run_dir (use a
    tmpfs, /dev/shm, as systemd's /run/routerd is)."""
    settings = {"workers": workers, "logging": {"level": log_level}, "access_log": {"file": ""}}
    base = new_routerd(nats_port, merge(settings, overrides or {}), group, name, run_root)
    return TableRouterd(config=base.config, workdir=base.workdir, name=name, group=group)

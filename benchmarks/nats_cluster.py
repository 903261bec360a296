"""A nats-server cluster on loopback for the soak: start, freeze, kill and restart its nodes.

Each node is a plain `nats-server` with `--cluster` (its route listener) and `--routes` (the
other nodes), all on 127.0.0.1; a killed node comes back on the same ports, so clients that
know the original list (routerd's `nats.hosts`) can reconnect to it. Nodes are started through
the benchmarks' `ProcessGroup`, which stops them on the way out; `thaw_all()` must run before
that, so that no stopped (SIGSTOP) node is left waiting for a SIGTERM it cannot handle.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, field

from benchmarks.processes import (
    BenchmarkError,
    Process,
    ProcessGroup,
    free_port,
    is_listening,
    tcp_peer_ports,
    wait_until,
)

CLUSTER_NAME = "soak"
START_TIMEOUT = 15.0


@dataclass
class NatsNode:
    """One cluster member: its ports, its process while it runs, and whether it is frozen."""

    index: int
    port: int
    cluster_port: int
    process: Process | None = None
    frozen: bool = False
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"nats-{self.index}"

    @property
    def is_up(self) -> bool:
        """Running and not frozen: a client can expect answers from it."""
        return self.process is not None and self.process.is_running() and not self.frozen


@dataclass
class NatsCluster:
    group: ProcessGroup
    nodes: list[NatsNode] = field(default_factory=list)

    def __repr__(self) -> str:
        states = ", ".join(
            f"{node.name}:{node.port}{' frozen' if node.frozen else ''}"
            + ("" if node.process and node.process.is_running() else " down")
            for node in self.nodes
        )
        return f"NatsCluster({states})"

    @classmethod
    def start(cls, group: ProcessGroup, size: int) -> NatsCluster:
        cluster = cls(group, [NatsNode(i, free_port(), free_port()) for i in range(size)])
        for node in cluster.nodes:
            cluster._launch(node)
        for node in cluster.nodes:
            cluster._wait_listening(node)
        return cluster

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def _argv(self, node: NatsNode) -> list[str]:
        binary = shutil.which("nats-server")
        if binary is None:
            raise BenchmarkError("nats-server not found on PATH: run `make install`")
        routes = ",".join(
            f"nats://127.0.0.1:{other.cluster_port}" for other in self.nodes if other is not node
        )
        argv = [binary, "-a", "127.0.0.1", "-p", str(node.port)]
        argv += ["--server_name", f"{CLUSTER_NAME}-{node.name}"]
        if routes:  # a cluster of one is a plain server
            argv += ["--cluster_name", CLUSTER_NAME]
            argv += ["--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes]
        return argv

    def _launch(self, node: NatsNode) -> None:
        node.process = self.group.start(node.name, self._argv(node))
        node.frozen = False

    def _wait_listening(self, node: NatsNode) -> None:
        process = node.process
        assert process is not None
        wait_until(
            lambda: process.check_running() and is_listening(node.port),
            START_TIMEOUT,
            f"{node.name} on port {node.port} (log {process.log_path})",
        )

    def node_serving(self, pid: int) -> NatsNode | None:
        """The node `pid` (routerd's supervisor) holds a connection to, if any."""
        peers = tcp_peer_ports(pid)
        return next((node for node in self.nodes if node.port in peers), None)

    def freeze(self, node: NatsNode) -> None:
        """SIGSTOP: the node keeps its sockets open and answers nothing, as a hung server does."""
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGSTOP)
        node.frozen = True

    def thaw(self, node: NatsNode) -> None:
        if node.process is not None and node.frozen:
            os.kill(node.process.pid, signal.SIGCONT)
        node.frozen = False

    def thaw_all(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.is_running():
                self.thaw(node)

    def kill(self, node: NatsNode) -> None:
        """kill -9, as a crashed VM's server goes: no goodbye to clients or routes."""
        assert node.process is not None
        self.thaw(node)
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.popen.wait(timeout=10)
        self.group.stop(node.process)
        node.process = None

    def restart(self, node: NatsNode) -> None:
        """Start a killed node again on its own ports; returns once it accepts clients."""
        if node.process is not None:
            raise BenchmarkError(f"{node.name} is still running; kill it first")
        self._launch(node)
        node.restarts += 1
        self._wait_listening(node)

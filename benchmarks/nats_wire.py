"""The soak's own NATS client: the text protocol over asyncio streams, one connection per node.

The harness must not share the failure modes it is looking for in routerd, so it does not use
nats-py: a write never waits for a frozen server longer than `WRITE_TIMEOUT` (the bytes stay
buffered and go out when the server wakes), a dead server only closes that node's connection,
and the reader answers the server's PINGs so a long soak is never dropped as a stale client.
`Bus` spreads publishes over the nodes in turn, skipping nodes that are down, and can prove
that a node routes messages to the others again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Sequence

from tests.support.nats import NatsCluster, NatsServer

WRITE_TIMEOUT = 0.5
CONNECT_TIMEOUT = 3.0
READY_SUBJECT = "soak.ready"


class Wire:
    """One connection to one node: publish, one subscription, PING round trips."""

    def __init__(self, node: NatsServer) -> None:
        self.node = node
        self.writer: asyncio.StreamWriter | None = None
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self._pongs: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self.errors: list[str] = []

    def __repr__(self) -> str:
        return f"Wire({self.node.name}, {'open' if self.is_open else 'closed'})"

    @property
    def is_open(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    async def open(self) -> None:
        """Connect, say CONNECT, subscribe to READY_SUBJECT and prove the server answers."""
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.node.port)
            self.writer = writer
            info = await reader.readline()
        if not info.startswith(b"INFO "):
            self.close()
            raise ConnectionError(f"{self.node.name} did not greet: {info[:80]!r}")
        connect = {"verbose": False, "pedantic": False, "name": f"soak-{self.node.name}"}
        writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        writer.write(f"SUB {READY_SUBJECT} 1\r\n".encode())
        self._task = asyncio.get_running_loop().create_task(self._read_loop(reader))
        await self.ping(CONNECT_TIMEOUT)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = None
        if self._task is not None:
            self._task.cancel()
        for pong in self._pongs:
            if not pong.done():
                pong.set_exception(ConnectionError(f"{self.node.name} connection closed"))
        self._pongs.clear()

    async def publish(self, subject: str, payloads: Sequence[bytes]) -> None:
        """Queue the messages; wait at most WRITE_TIMEOUT for the socket to take them."""
        if self.writer is None:
            raise ConnectionError(f"{self.node.name}: not connected")
        head = subject.encode()
        self.writer.write(
            b"".join(b"PUB %s %d\r\n%s\r\n" % (head, len(data), data) for data in payloads)
        )
        # A frozen server reads nothing: keep the bytes buffered rather than stall the caller.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WRITE_TIMEOUT):
                await self.writer.drain()

    async def ping(self, timeout: float) -> None:
        """A PING/PONG round trip: everything sent before has been processed by the server."""
        if self.writer is None:
            raise ConnectionError(f"{self.node.name}: not connected")
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(pong)
        self.writer.write(b"PING\r\n")
        async with asyncio.timeout(timeout):
            await pong

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                if line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    payload = await reader.readexactly(size + 2)
                    self.received.put_nowait(payload[:size])
                elif line.startswith(b"PING") and self.writer is not None:
                    self.writer.write(b"PONG\r\n")
                elif line.startswith(b"PONG"):
                    while self._pongs:
                        pong = self._pongs.pop(0)
                        if not pong.done():
                            pong.set_result(None)
                            break
                elif line.startswith(b"-ERR"):
                    self.errors.append(line.decode(errors="replace").strip())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self.writer is not None:
                self.writer.close()


class Bus:
    """Publishes through the cluster's nodes in turn, reconnecting to nodes that come back."""

    def __init__(self, cluster: NatsCluster) -> None:
        self.cluster = cluster
        self.wires = [Wire(node) for node in cluster.nodes]
        self._turn = itertools.cycle(range(len(self.wires)))
        self.reconnects = 0

    def __repr__(self) -> str:
        return f"Bus({', '.join(map(repr, self.wires))})"

    async def open(self) -> None:
        for wire in self.wires:
            await wire.open()

    def close(self) -> None:
        for wire in self.wires:
            wire.close()

    async def _usable(self, wire: Wire) -> bool:
        if not wire.node.is_up:
            return False
        if wire.is_open:
            return True
        try:
            await wire.open()
        except (OSError, TimeoutError):
            wire.close()
            return False
        self.reconnects += 1
        return True

    async def publish(self, subject: str, payloads: Sequence[bytes]) -> NatsServer | None:
        """Through the next node that is up; returns it (None when no node took them)."""
        for _ in range(len(self.wires)):
            wire = self.wires[next(self._turn)]
            if not await self._usable(wire):
                continue
            try:
                await wire.publish(subject, payloads)
            except ConnectionError:
                wire.close()
                continue
            return wire.node
        return None

    async def publish_via(self, node: NatsServer, subject: str, payloads: Sequence[bytes]) -> bool:
        """Through one given node, so that messages keep their order."""
        wire = self.wires[node.index]
        if not await self._usable(wire):
            return False
        try:
            await wire.publish(subject, payloads)
        except ConnectionError:
            wire.close()
            return False
        return True

    async def wait_routed(self, node: NatsServer, timeout: float) -> float:
        """Until a message published through `node` reaches every other node that is up (the
        cluster's routes, and the interest they carry, are back); returns the seconds taken."""
        started = time.monotonic()
        deadline = started + timeout
        others = [wire for wire in self.wires if wire.node is not node and wire.node.is_up]
        for sequence in itertools.count():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} did not route to the other nodes in {timeout} s")
            token = f"{node.name}-{sequence}".encode()
            for wire in others:
                await self._usable(wire)
            if await self.publish_via(node, READY_SUBJECT, [token]) and all(
                [await _has_received(wire, token, 0.5) for wire in others]
            ):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError("unreachable")


async def _has_received(wire: Wire, token: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                if await wire.received.get() == token:
                    return True
        except TimeoutError:
            return False
    return False

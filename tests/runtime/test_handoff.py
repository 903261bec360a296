"""The standin: connections queued on a down worker's socket reach a live worker, none lost."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from runtime import handoff


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    with sock:
        yield sock


async def received(channel: socket.socket, count: int) -> list[tuple[bytes, socket.socket]]:
    """`count` connections off a worker's end of a channel, as the worker reads them."""
    got: list[tuple[bytes, socket.socket]] = []
    for _ in range(200):
        while (message := handoff.receive_connections(channel)) is not None:
            kind, conns, truncated = message
            assert not truncated
            got += [(kind, conn) for conn in conns]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(got)} of {count} connections handed over")


def connect(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


@pytest.mark.asyncio
async def test_queued_connections_are_served_by_the_live_worker(listener) -> None:
    ours, theirs = handoff.channel_pair()
    standin = handoff.Standin(0, [(handoff.HTTP, listener)], lambda: [ours], log_interval=10.0)
    clients = connect(listener.getsockname()[1], 5)  # queued before the standin starts
    standin.start()
    clients += connect(listener.getsockname()[1], 5)

    got = await received(theirs, 10)
    standin.stop()

    assert {kind for kind, _ in got} == {handoff.HTTP}
    assert standin.handed_off == 10
    # Each handed-over descriptor is the client's connection: bytes go both ways.
    for client, (_, conn) in zip(clients, got, strict=True):
        conn.setblocking(True)
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert client.recv(4) == b"pong"
        conn.close()
        client.close()
    assert repr(standin) == "Standin(worker=0, active=False, held=0, handed_off=10)"
    ours.close()
    theirs.close()


@pytest.mark.asyncio
async def test_connections_wait_while_no_worker_can_take_them(listener) -> None:
    live: list[socket.socket] = []
    standin = handoff.Standin(0, [(handoff.HTTP, listener)], lambda: live, log_interval=10.0)
    standin.start()
    clients = connect(listener.getsockname()[1], 3)
    await asyncio.sleep(0.05)
    assert standin.handed_off == 0  # nobody to give them to: held, not dropped

    ours, theirs = handoff.channel_pair()
    live.append(ours)
    standin.start()  # what the pool does when a worker is ready
    got = await received(theirs, 3)

    assert len(got) == 3 and standin.handed_off == 3
    standin.close()
    for conn in [*clients, *(conn for _, conn in got), ours, theirs]:
        conn.close()


@pytest.mark.asyncio
async def test_a_dead_workers_unread_connections_can_be_read_back(listener) -> None:
    dead_ours, dead_theirs = handoff.channel_pair()
    standin = handoff.Standin(0, [(handoff.HTTP, listener)], lambda: [dead_ours], log_interval=10.0)
    standin.start()
    clients = connect(listener.getsockname()[1], 2)
    for _ in range(100):
        if standin.handed_off == 2:
            break
        await asyncio.sleep(0.01)
    standin.stop()

    # The worker died without reading: the supervisor's copy of its end still has them.
    back = await received(dead_theirs, 2)
    assert len(back) == 2

    # Held by a standin that is not accepting, they still go to the next live worker.
    live_ours, live_theirs = handoff.channel_pair()
    survivor = handoff.Standin(1, [], lambda: [live_ours], log_interval=10.0)
    survivor.hold(handoff.HTTP, [conn for _, conn in back])
    survivor.flush()
    passed = await received(live_theirs, 2)

    assert len(passed) == 2 and survivor.handed_off == 2 and not survivor.is_active
    for client, (_, conn) in zip(clients, passed, strict=True):
        conn.setblocking(True)
        client.sendall(b"still here")
        assert conn.recv(10) == b"still here"
    for conn in [*clients, *(c for _, c in passed), dead_ours, dead_theirs, live_ours, live_theirs]:
        conn.close()

"""`routerctl register` / `unregister`: Gorouter messages on NATS, as a route emitter sends them.

Messages are validated with registry/'s own rules before anything is sent. `register --heartbeat`
re-sends the registration every interval, and at once when a router announces itself on
`router.start`, until SIGINT or SIGTERM; then it unregisters and returns.

The NATS client is used without its own reconnect logic: connecting tries each server once, so a
dead NATS is reported at once, and the heartbeat loop reconnects by itself before its next send.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Final

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from registry.message import Registration, RegistryMessage, validate_message
from registry.rejection import Rejection
from supervisor.ctl.errors import Unreachable, UsageProblem, describe_os_error
from supervisor.ctl.target import NatsTarget

REGISTER: Final = "router.register"
UNREGISTER: Final = "router.unregister"
START: Final = "router.start"
CONNECT_TIMEOUT: Final = 2
FLUSH_TIMEOUT: Final = 2

_HINTS: Final = {
    "server_cert_domain_san": "--san",
    "route_service_url": "--route-service-url",
    "port or tls_port": "--port or --tls-port",
}


def validated(message: RegistryMessage, stale_threshold: int, for_unregister: bool) -> Registration:
    """The message as the router will read it, or a one-line UsageProblem."""
    result = validate_message(message, stale_threshold, for_unregister=for_unregister)
    if isinstance(result, Rejection):
        hint = next((option for field, option in _HINTS.items() if field in result.reason), "")
        raise UsageProblem(f"invalid message: {result.reason}" + (f" ({hint})" if hint else ""))
    return result


def encode(message: RegistryMessage) -> bytes:
    return msgspec.json.encode(message)


class Bus:
    """One NATS connection at a time, to the first server that answers."""

    def __init__(self, target: NatsTarget) -> None:
        self.target = target
        self.client: Client | None = None
        self._subscriptions: list[tuple[str, Callable[[], None]]] = []
        self._last_error = ""

    def __repr__(self) -> str:
        return f"Bus(servers={list(self.target.servers)}, connected={self.is_connected})"

    @property
    def is_connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def connect(self) -> None:
        errors = []
        for server in self.target.servers:
            client = Client()
            try:
                await client.connect(
                    servers=[server],
                    user=self.target.user or None,
                    password=self.target.password or None,
                    tls=self.target.tls,
                    name="routerctl",
                    allow_reconnect=False,
                    # nats-py's smallest retry budget: a second try at once, then it gives up.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=CONNECT_TIMEOUT,
                    error_cb=self._on_error,
                )
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                errors.append(f"{_redact(server)}: {self._last_error or _describe(exc)}")
                self._last_error = ""
                with contextlib.suppress(Exception):
                    await client.close()
                continue
            self.client = client
            for subject, callback in self._subscriptions:
                await self._subscribe(subject, callback)
            return
        raise Unreachable("cannot reach NATS: " + "; ".join(errors))

    async def subscribe(self, subject: str, callback: Callable[[], None]) -> None:
        """Call `callback` on every message on `subject`, across reconnects."""
        self._subscriptions.append((subject, callback))
        if self.client is not None:
            await self._subscribe(subject, callback)

    async def _subscribe(self, subject: str, callback: Callable[[], None]) -> None:
        assert self.client is not None

        async def on_message(msg: Msg) -> None:
            callback()

        await self.client.subscribe(subject, cb=on_message)

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish and wait until the server has it; Unreachable if it did not get there."""
        if not self.is_connected:
            await self.close()
            await self.connect()
        assert self.client is not None
        try:
            await self.client.publish(subject, data)
            await self.client.flush(timeout=FLUSH_TIMEOUT)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            raise Unreachable(f"cannot publish to NATS: {_describe(exc)}") from None

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None

    async def _on_error(self, exc: Exception) -> None:
        # nats-py would log these with a traceback; keep the reason for the one-line report.
        self._last_error = _describe(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError | TimeoutError):
        return describe_os_error(exc)
    return str(exc) or type(exc).__name__


def _redact(server: str) -> str:
    """nats://user:pass@host:port → nats://host:port, for error messages."""
    scheme, sep, rest = server.partition("://")
    if not sep:
        return server
    return f"{scheme}://{rest.rpartition('@')[2]}"


async def publish_once(target: NatsTarget, subject: str, data: bytes) -> None:
    bus = Bus(target)
    try:
        await bus.connect()
        await bus.publish(subject, data)
    finally:
        await bus.close()


async def heartbeat(
    target: NatsTarget,
    data: bytes,
    interval: float,
    report: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Register every `interval` until SIGINT/SIGTERM, then unregister."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    again = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bus = Bus(target)
    try:
        await bus.subscribe(START, again.set)
        await bus.connect()
        sent = 0
        while not stop.is_set():
            again.clear()
            try:
                await bus.publish(REGISTER, data)
                sent += 1
                if sent == 1:
                    report(f"registered; re-sending every {interval:g}s (Ctrl-C unregisters)")
            except Unreachable as exc:
                warn(f"{exc}; retrying in {interval:g}s")
            await _wait_any(stop, again, interval)
        await bus.publish(UNREGISTER, data)
        report("unregistered")
    finally:
        await bus.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _wait_any(first: asyncio.Event, second: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

"""The supervisor's NATS connection (nats-py): Gorouter's subjects, greetings and reconnects.

Only the supervisor talks to NATS. Messages are handed to `Routing` synchronously from nats-py's
per-subscription task, so they are applied in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from typing import Any, Final

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import SlowConsumerError

from supervisor.config import Config, NatsConfig
from supervisor.logs import EventLog
from supervisor.pem import load_cert_chain_from_pem
from supervisor.routing import Routing

log = EventLog("vcap.gorouter.nats")

# Reconnect quickly and forever: the router keeps serving from its table meanwhile.
RECONNECT_WAIT: Final = 0.5
INITIAL_RETRY_MAX: Final = 5.0


class NatsLink:
    def __init__(self, config: Config, routing: Routing, router_id: str | None = None) -> None:
        self.config = config
        self.routing = routing
        self.router_id = router_id or f"0-{uuid.uuid4()}"
        self.client: Client | None = None
        self.slow_consumer_events = 0
        self.reconnects = 0
        self.disconnects = 0
        self._closing = False

    def __repr__(self) -> str:
        return f"NatsLink(connected={self.is_connected}, reconnects={self.reconnects})"

    @property
    def is_connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    @property
    def servers(self) -> list[str]:
        return [f"nats://{host.hostname}:{host.port}" for host in self.config.nats.hosts]

    def start_message(self) -> dict[str, Any]:
        """Gorouter's `router.start` (also the `router.greet` reply)."""
        return {
            "id": self.router_id,
            "hosts": [self.local_ip()],
            "minimumRegisterIntervalInSeconds": int(self.config.start_response_delay_interval),
            "pruneThresholdInSeconds": int(self.config.droplet_stale_threshold),
        }

    def local_ip(self) -> str:
        if self.config.bind_address not in ("0.0.0.0", "::", ""):
            return self.config.bind_address
        first = self.config.nats.hosts[0]
        # A UDP "connect" sends nothing; it only picks the interface that routes to NATS.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((first.hostname, first.port))
                return str(probe.getsockname()[0])
            except OSError:
                return "127.0.0.1"

    async def connect(self) -> None:
        """Connect, retrying until NATS answers (the caller may cancel this)."""
        delay = RECONNECT_WAIT
        while True:
            try:
                await self._connect_once()
                return
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                log.error(
                    "nats-connection-still-disconnected", servers=self.servers, error=str(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, INITIAL_RETRY_MAX)

    async def _connect_once(self) -> None:
        nats_config = self.config.nats
        client = Client()
        await client.connect(
            servers=self.servers,
            user=nats_config.user or None,
            password=nats_config.pass_ or None,
            tls=nats_tls_context(self.config.nats),
            name=f"routerd-{self.router_id}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]
            connect_timeout=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )
        self.client = client
        await client.subscribe("router.register", cb=self._on_register)
        await client.subscribe("router.unregister", cb=self._on_unregister)
        await client.subscribe("router.greet", cb=self._on_greet)
        await client.flush()
        log.info(
            "nats-connection-established",
            server=str(client.connected_url.netloc if client.connected_url else ""),
        )
        await self.publish_start()

    async def publish_start(self) -> None:
        if self.client is None:
            return
        try:
            await self.client.publish("router.start", orjson.dumps(self.start_message()))
            await self.client.flush(timeout=2)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            log.error("failed-to-publish-start-message", error=str(exc))

    async def close(self) -> None:
        self._closing = True
        if self.client is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self.client.close()

    # -- callbacks: never raise ----------------------------------------------------------------

    async def _on_register(self, msg: Msg) -> None:
        self.routing.handle_register(msg.data, msg.subject)

    async def _on_unregister(self, msg: Msg) -> None:
        self.routing.handle_unregister(msg.data, msg.subject)

    async def _on_greet(self, msg: Msg) -> None:
        if not msg.reply or self.client is None:
            return
        try:
            await self.client.publish(msg.reply, orjson.dumps(self.start_message()))
        except (nats.errors.Error, OSError) as exc:
            log.error("failed-to-answer-greet", error=str(exc))

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self.slow_consumer_events += 1
            log.error("nats-slow-consumer", subject=exc.subject, error=str(exc))
            return
        log.error("nats-error", error=str(exc) or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if self._closing:
            return  # our own shutdown, not an outage
        self.disconnects += 1
        log.error("nats-connection-disconnected")

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        url = self.client.connected_url if self.client else None
        log.info("nats-connection-reconnected", server=url.netloc if url else "")
        # Gorouter announces itself again so route emitters re-send their routes at once.
        asyncio.get_running_loop().create_task(self.publish_start())

    async def _on_closed(self) -> None:
        log.info("nats-connection-closed")


def nats_tls_context(nats_config: NatsConfig) -> ssl.SSLContext | None:
    """TLS to NATS when `nats.tls_enabled`: the configured CA (or the system store) and,
    when given, a client certificate. Raises ssl.SSLError/ValueError for unusable PEM."""
    if not nats_config.tls_enabled:
        return None
    context = ssl.create_default_context()
    if nats_config.ca_certs:
        context.load_verify_locations(cadata=nats_config.ca_certs)
    if nats_config.cert_chain:
        load_cert_chain_from_pem(context, nats_config.cert_chain, nats_config.private_key)
    return context

"""The supervisor's NATS connection (nats-py): Gorouter's subjects, greetings, and a link that must
prove it is alive (see supervisor/nats_liveness.py for the rules).

Only the supervisor talks to NATS. Messages are handed to `Routing` synchronously from the task
nats-py runs for the one `router.*` subscription, so they are applied in arrival order.

nats-py's flush() and request() cancel a pending PONG future on timeout; a PONG that arrives later
then raises InvalidStateError inside nats-py and ends its read loop while the client still says
"connected". So routerd never calls either: publishes are queued and written by nats-py's flusher,
and liveness is proven by probes to our own inbox, which need no PONG.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import SlowConsumerError

from runtime.config_model import Config, NatsConfig
from runtime.logs import EventLog
from runtime.pem import load_cert_chain_from_pem
from runtime.router_ip import router_ip
from supervisor.nats_liveness import LinkState, Liveness
from supervisor.routing import Routing

log = EventLog("vcap.gorouter.nats")

# Reconnect quickly and forever: the router keeps serving from its table meanwhile.
RECONNECT_WAIT: Final = 0.5
INITIAL_RETRY_MAX: Final = 5.0
# A hung server accepts TCP but never says INFO: give up on it this quickly and try the next.
CONNECT_TIMEOUT: Final = 2
# Closing a client whose server is frozen can block on a full socket buffer: abandon it then.
CLOSE_TIMEOUT: Final = 1.0
# Let nats-py's reader read on after this many route messages. A subscription's task runs its
# queue dry before the reader reads again, so in a registration storm the backlog would wait in
# nats-server, which drops it all once one write to us blocks for its write_deadline. Read
# ahead, it waits in our subscription's queue instead (nats-py's pending limits, logged and
# counted when exceeded).
READ_AHEAD_EVERY: Final = 16
# How much of it may wait there. Gorouter caps its router.* subscription at 131,072 messages and
# 128 MiB; routerd applies messages more slowly, so it keeps those bytes but allows more messages
# (nats-py's default), enough for a storm of 200,000 registrations.
PENDING_MSGS_LIMIT: Final = 512 * 1024
PENDING_BYTES_LIMIT: Final = 128 * 1024 * 1024


class NatsLink:
    def __init__(
        self,
        config: Config,
        routing: Routing,
        router_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.routing = routing
        self.router_id = router_id or f"{config.index}-{uuid.uuid4()}"
        self.clock = clock
        self.liveness = Liveness(float(config.nats_client_ping_interval), clock())
        self.client: Client | None = None
        self.slow_consumer_events = 0
        self.reconnects = 0
        self.disconnects = 0
        self.rebuilds = 0
        self._probe_subject = ""
        self._in_msgs_seen = 0
        self._route_messages = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return (
            f"NatsLink({self.state.value}, reconnects={self.reconnects}, rebuilds={self.rebuilds})"
        )

    @property
    def state(self) -> LinkState:
        return self.liveness.state

    @property
    def is_connected(self) -> bool:
        """Connected and proven alive within `nats_client_ping_interval`."""
        return self.liveness.is_proven

    def seconds_since_last_message(self) -> float:
        return self.liveness.seconds_silent(self.clock())

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
        return router_ip(self.config)

    # -- connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (retrying until NATS answers), then keep the link proven until close()."""
        await self._connect(self.servers)
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _connect(self, servers: list[str]) -> None:
        delay = RECONNECT_WAIT
        while True:
            try:
                await self._connect_once(servers)
                return
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                log.error("nats-connection-still-disconnected", servers=servers, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, INITIAL_RETRY_MAX)

    async def _connect_once(self, servers: list[str]) -> None:
        nats_config = self.config.nats
        ping_interval = float(self.config.nats_client_ping_interval)
        client = Client()
        await client.connect(
            servers=servers,
            user=nats_config.user or None,
            password=nats_config.pass_ or None,
            tls=nats_tls_context(self.config.nats),
            name=f"routerd-{self.router_id}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]
            connect_timeout=CONNECT_TIMEOUT,
            # The caller ordered the servers (a suspect one last); keep that order.
            dont_randomize=True,
            # nats-py's own stale-connection check, as Gorouter sets nats.go's PingInterval.
            ping_interval=max(1, round(ping_interval)),
            max_outstanding_pings=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )
        self.client = client
        self._in_msgs_seen = client.stats["in_msgs"]
        self._probe_subject = client.new_inbox()
        # SUB and PUB go out in order on one connection: no flush is needed before router.start.
        await client.subscribe(self._probe_subject, cb=self._on_probe)
        # One subscription, so one nats-py task applies register, unregister and greet in the
        # order they arrived (a task per subject would let one subject overtake another).
        await client.subscribe(
            "router.*",
            cb=self._on_router_message,
            pending_msgs_limit=PENDING_MSGS_LIMIT,
            pending_bytes_limit=PENDING_BYTES_LIMIT,
        )
        self.liveness.connected(self.clock())
        log.info("nats-connection-established", server=connected_server(client))
        await self.publish_start()

    def _ordered_servers(self, suspect: str) -> list[str]:
        """Every server, shuffled so routers spread over the cluster, the suspect one last."""
        others = [server for server in self.servers if not server.endswith(f"//{suspect}")]
        random.shuffle(others)
        return others + [server for server in self.servers if server not in others]

    async def _rebuild(self, reason: str) -> None:
        """Abandon the current client and connect a new one, the silent server tried last."""
        old, self.client = self.client, None
        suspect = connected_server(old) if old is not None else ""
        self.rebuilds += 1
        self.liveness.move(LinkState.CONNECTING)
        log.error(
            "nats-connection-unproven",
            server=suspect,
            reason=reason,
            seconds_since_last_message=round(self.seconds_since_last_message(), 3),
        )
        if old is not None:
            await close_quietly(old)
        if self._closing:
            return
        await self._connect(self._ordered_servers(suspect))
        log.info("nats-connection-rebuilt", server=connected_server(self.client))

    async def publish_start(self) -> None:
        await self._publish("router.start", orjson.dumps(self.start_message()))

    async def _publish(self, subject: str, payload: bytes) -> None:
        client = self.client
        if client is None or not client.is_connected:
            return  # router.start goes out again on reconnect
        try:
            await client.publish(subject, payload)
        except (nats.errors.Error, OSError) as exc:
            log.error("failed-to-publish", subject=subject, error=str(exc))

    async def close(self) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        self.liveness.move(LinkState.CLOSED)
        if self.client is not None:
            await close_quietly(self.client)

    # -- the watchdog --------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Probe our own inbox and judge the link, every probe interval, until closed."""
        while not self._closing:
            await asyncio.sleep(self.liveness.probe_interval)
            try:
                await self._tick()
            except Exception as exc:  # the watchdog must outlive any one failure
                log.error("nats-watchdog-failed", error=repr(exc))

    async def _tick(self) -> None:
        client = self.client
        if client is None:  # a rebuild failed part-way: try again
            await self._rebuild("no client")
            return
        in_msgs = client.stats["in_msgs"]
        if in_msgs != self._in_msgs_seen:
            # nats-py's read loop delivered something: progress even if callbacks lag behind.
            self._in_msgs_seen = in_msgs
            self.liveness.progress(self.clock())
        verdict = self.liveness.check(
            self.clock(), client_connected=client.is_connected, client_closed=client.is_closed
        )
        if verdict.rebuild:
            await self._rebuild("client closed" if client.is_closed else "no message or probe")
        elif verdict.state is LinkState.PROVEN:
            await self._publish(self._probe_subject, b"")

    # -- callbacks: never raise ----------------------------------------------------------------

    def _progress(self) -> None:
        self.liveness.progress(self.clock())

    async def _on_probe(self, msg: Msg) -> None:
        self._progress()

    async def _on_router_message(self, msg: Msg) -> None:
        self._progress()
        subject = msg.subject
        if subject == "router.register":
            self.routing.handle_register(msg.data, subject)
        elif subject == "router.unregister":
            self.routing.handle_unregister(msg.data, subject)
        elif subject == "router.greet":
            if msg.reply:
                await self._publish(msg.reply, orjson.dumps(self.start_message()))
        else:
            return  # router.start, another router's greeting: nothing to apply
        self._route_messages += 1
        if self._route_messages % READ_AHEAD_EVERY == 0:
            await asyncio.sleep(0)  # nats-py's reader takes its turn

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self.slow_consumer_events += 1
            log.error("nats-slow-consumer", subject=exc.subject, error=str(exc))
            return
        log.error("nats-error", error=str(exc) or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if self._closing or self.client is None:
            return  # our own shutdown or rebuild, not an outage
        self.disconnects += 1
        self.liveness.move(LinkState.DISCONNECTED)
        log.error("nats-connection-disconnected")

    async def _on_reconnected(self) -> None:
        if self.client is None:
            return
        self.reconnects += 1
        self.liveness.connected(self.clock())
        log.info("nats-connection-reconnected", server=connected_server(self.client))
        # Gorouter announces itself again so route emitters re-send their routes at once.
        await self.publish_start()

    async def _on_closed(self) -> None:
        log.info("nats-connection-closed")


def connected_server(client: Client | None) -> str:
    url = client.connected_url if client is not None else None
    return str(url.netloc) if url is not None else ""


async def close_quietly(client: Client) -> None:
    """Close a client, giving up after CLOSE_TIMEOUT: a frozen server must not hold us."""
    with contextlib.suppress(TimeoutError, nats.errors.Error, OSError):
        await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)


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

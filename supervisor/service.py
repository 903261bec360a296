"""routerd's supervisor: starts in order, dispatches signals from one loop, stops in reverse.

Start: config → the run_dir lock (run_lock.py) → fd limit → shared memory → listening sockets →
status server (503) → NATS → pruner → `start_response_delay_interval` → workers → healthy
(/health and the router's own health checks answer 200) → `load_balancer_healthy_threshold` →
READY=1. Stop runs the other way; a drain turns every health answer 503 first.
Signal handlers only enqueue; `run()` takes one event at a time and calls `handle_<event>()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from typing import Any

import msgspec
import uvloop
from setproctitle import setproctitle

from registry.routes import RouteTable
from registry.shm.counters import LOG_LINE_STATS, STAT_WORDS, CounterTable, counters_size
from registry.shm.region import FileRegion
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator
from runtime import gc_tuning, logs
from runtime.c_parser import c_parser_problem
from runtime.compiled import compiled_problem, is_compiled
from runtime.config import ConfigError, load_config
from runtime.config_model import Config
from supervisor.fd_limit import raise_fd_limit
from supervisor.gorouter_metrics import GorouterState
from supervisor.lifecycle import RESTART_ONLY_KEYS, RouterState, changed_keys, transition
from supervisor.metrics import Snapshot
from supervisor.nats_link import NatsLink
from supervisor.pid_file import remove_pid_file, write_pid_file
from supervisor.routes_view import RoutesSnapshot, routes_document
from supervisor.routing import Routing
from supervisor.run_lock import RunDirBusy, RunDirLock
from supervisor.sdnotify import Notifier
from supervisor.status_server import StatusListenError, StatusServer
from supervisor.workers import WorkerPool, bind_listener, kill_all

log = logs.EventLog("vcap.gorouter.supervisor")

SIGNAL_EVENTS = {
    signal.SIGTERM: "stop",
    signal.SIGINT: "stop",
    signal.SIGUSR1: "drain",
    signal.SIGHUP: "reload",
}
# The most that closing NATS or the status server may add to a shutdown.
STEP_TIMEOUT = 5.0
# Freed endpoint slots wait this long before reuse, beyond the longest request.
SLOT_GRACE_MIN = 120.0
# Pools copied for /routes per turn of the event loop: a few milliseconds of work.
ROUTES_COPY_SLICE = 2000


class StartupError(Exception):
    """A resource the router cannot run without (run_dir, the port, the status port)."""


class Supervisor:
    def __init__(self, config: Config, config_path: str) -> None:
        self.config = config
        self.config_path = config_path
        self.started_at = time.time()
        # Gorouter's varz uuid: "<index>-<uuid4>", new at every start.
        self.gorouter = GorouterState(time.monotonic(), f"{config.index}-{uuid.uuid4()}")
        self.state = RouterState.STARTING
        self.exit_code = 0
        self.events: asyncio.Queue[str] = asyncio.Queue()
        self.notifier = Notifier()
        self.table_path = os.path.join(config.run_dir, "routes.shm")
        self.counters_path = os.path.join(config.run_dir, "counters.shm")
        self.pid_path = os.path.join(config.run_dir, "routerd.pid")
        self._pid_file = ""  # Gorouter's pid_file, once written
        self.routing: Routing | None = None
        self.nats: NatsLink | None = None
        self.workers: WorkerPool | None = None
        self.status: StatusServer | None = None
        self._regions: list[FileRegion] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._startup: asyncio.Task[None] | None = None
        self._publish_handle: asyncio.TimerHandle | None = None
        self._stopper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Supervisor(state={self.state.value}, pid={os.getpid()})"

    def move(self, target: RouterState) -> None:
        self.state = transition(self.state, target)

    # -- main loop -----------------------------------------------------------------------------

    async def run(self) -> int:
        gc_tuning.tune_supervisor()
        loop = asyncio.get_running_loop()
        for signum, event in SIGNAL_EVENTS.items():
            loop.add_signal_handler(signum, self.events.put_nowait, event)
        self._startup = loop.create_task(self._start())
        self._startup.add_done_callback(self._on_startup_done)
        while self.state is not RouterState.STOPPED:
            event = await self.events.get()
            handler = getattr(self, f"handle_{event}", None)
            if handler is None:
                log.error("unknown-supervisor-event", name=event)
                continue
            await handler()
        return self.exit_code

    def _on_startup_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.fatal("router-failed-to-start", error=str(exc) or type(exc).__name__)
            self.exit_code = 1
            self.events.put_nowait("stop")

    async def _start(self) -> None:
        config = self.config
        setproctitle("routerd: supervisor")
        problem = c_parser_problem() or compiled_problem()
        if problem is not None:
            raise StartupError(problem)
        if not is_compiled():
            log.warn("modules-not-compiled", hint="build with `make install` (see README)")
        raise_fd_limit()  # before any worker is spawned: they inherit it
        self._open_tables()
        # disable_http: only ssl_port listens (validation made sure enable_ssl is on).
        listeners = None if config.disable_http else self._bind_listeners(config.port)
        tls_listeners = self._bind_listeners(config.ssl_port) if config.enable_ssl else None
        assert self.routing is not None
        self.status = StatusServer(config, self.snapshot, self.routes_body)
        try:
            await self.status.start()
        except StatusListenError as exc:
            raise StartupError(str(exc)) from None
        self.nats = NatsLink(config, self.routing)
        await self.nats.connect()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._prune_loop()))
        self._tasks.append(loop.create_task(self._start_message_loop()))
        if self.notifier.watchdog_seconds:
            self._tasks.append(loop.create_task(self._watchdog_loop()))
        log.info(
            "waiting-for-route-registration", seconds=float(config.start_response_delay_interval)
        )
        await asyncio.sleep(config.start_response_delay_interval)
        self.workers = WorkerPool(
            config,
            listeners,
            self.routing.counters,
            self.table_path,
            self.counters_path,
            tls_listeners=tls_listeners,
        )
        self.workers.on_prune = self.routing.prune_failed_endpoint
        await self.workers.start()
        if self.state is not RouterState.STARTING:
            # A stop came while the workers started (Python 3.11's wait_for can swallow the
            # cancellation that shutdown sends when its wait ends at the same moment).
            return
        self.move(RouterState.RUNNING)
        self._set_healthy(True)
        log.info(
            "router-started",
            port=config.port,
            workers=config.worker_count,
            routes=len(self.routing.table.pools),
        )
        threshold = float(config.load_balancer_healthy_threshold)
        if threshold > 0:
            loop = asyncio.get_running_loop()
            self._tasks.append(loop.create_task(self._ready_after(threshold)))
        else:
            self._ready(threshold)

    async def _ready_after(self, threshold: float) -> None:
        # Healthy already, so the load balancer counts its healthy checks meanwhile.
        log.info("waiting-for-load-balancer", seconds=threshold)
        self.notifier.status(f"serving; waiting {threshold:g}s for the load balancer")
        await asyncio.sleep(threshold)
        if self.state is RouterState.RUNNING:
            self._ready(threshold)

    def _ready(self, threshold: float) -> None:
        self.notifier.ready()
        log.info("router-ready", load_balancer_healthy_threshold=threshold)

    def _set_healthy(self, healthy: bool) -> None:
        """What /health and the load balancers' checks on the router's ports answer."""
        if self.status is not None:
            self.status.healthy = healthy
        if self.workers is not None:
            self.workers.set_healthy(healthy)

    def _open_tables(self) -> None:
        config = self.config
        try:
            os.makedirs(config.run_dir, exist_ok=True)
            table_region = FileRegion.create(
                self.table_path, initial_size(config.route_table.shards)
            )
            writer = TableWriter(table_region, config.route_table.shards)
            table_region.publish_path()
            counters_region = FileRegion.create(
                self.counters_path,
                counters_size(config.worker_count, config.route_table.max_endpoints),
            )
            counters = CounterTable.format(
                counters_region, config.worker_count, config.route_table.max_endpoints
            )
            counters_region.publish_path()
            write_pid_file(self.pid_path, os.getpid())
        except OSError as exc:
            raise StartupError(
                f"cannot create the shared route table in run_dir {config.run_dir!r}: "
                f"{exc.strerror or exc}"
            ) from None
        self._regions += [table_region, counters_region]
        if config.pid_file:
            try:
                write_pid_file(config.pid_file, os.getpid())
            except OSError as exc:
                raise StartupError(
                    f"pid_file: cannot write {config.pid_file!r}: {exc.strerror or exc}"
                ) from None
            self._pid_file = config.pid_file
        grace = max(SLOT_GRACE_MIN, 2 * float(config.endpoint_timeout))
        table = RouteTable(
            config.route_table.shards,
            SlotAllocator(config.route_table.max_endpoints, grace),
            empty_pool_timeout=float(config.empty_pool_timeout)
            if config.empty_pool_response_code_503
            else 0.0,
        )
        self.routing = Routing(config, table, writer, counters)
        self.routing.schedule_publish = self._schedule_publish
        self.routing.schedule_later = lambda delay, callback: asyncio.get_running_loop().call_later(
            delay, callback
        )
        self.routing.load_static_routes()
        self.routing.publish_all()

    def _bind_listeners(self, port: int) -> list[Any]:
        """One SO_REUSEPORT socket per worker on `port` (the HTTP or the TLS one)."""
        config = self.config
        listeners = []
        try:
            for _ in range(config.worker_count):
                listeners.append(bind_listener(config.bind_address, port))
        except OSError as exc:
            for sock in listeners:
                sock.close()
            raise StartupError(
                f"cannot listen on {config.bind_address}:{port}: {exc.strerror}"
            ) from None
        return listeners

    # -- periodic work -------------------------------------------------------------------------

    def _schedule_publish(self) -> None:
        if self._publish_handle is None:
            loop = asyncio.get_running_loop()
            self._publish_handle = loop.call_later(
                self.config.route_table.publish_interval, self._publish_now
            )

    def _publish_now(self) -> None:
        self._publish_handle = None
        if self.routing is not None:
            self.routing.publish()

    async def _prune_loop(self) -> None:
        assert self.routing is not None and self.nats is not None
        while True:
            await asyncio.sleep(self.config.prune_stale_droplets_interval)
            had_outage = self.nats.liveness.take_outage()
            self.routing.prune(self.nats.is_connected, had_outage)

    async def _start_message_loop(self) -> None:
        assert self.nats is not None
        interval = self.config.publish_start_message_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            await self.nats.publish_start()

    async def _watchdog_loop(self) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(self.notifier.watchdog_seconds / 2)

    # -- signal handlers -----------------------------------------------------------------------

    async def handle_stop(self) -> None:
        if self.state is RouterState.STOPPING:
            # A second stop signal while stopping: stop waiting for in-flight requests.
            log.info("router-stop-forced")
            if self.workers is not None:
                kill_all(self.workers)
            return
        if self.state is RouterState.STOPPED:
            return
        log.info("router-stopping", state=self.state.value)
        self._begin_shutdown(float(self.config.shutdown_timeout))

    async def handle_drain(self) -> None:
        if self.state is not RouterState.RUNNING:
            log.info("drain-ignored", state=self.state.value)
            return
        self.move(RouterState.DRAINING)
        self._set_healthy(False)
        self.notifier.status("draining")
        log.info(
            "router-draining",
            drain_wait=float(self.config.drain_wait),
            drain_timeout=float(self.config.drain_timeout),
        )
        self._tasks.append(asyncio.get_running_loop().create_task(self._drain()))

    async def _drain(self) -> None:
        # Load balancers see /health 503 during drain_wait and stop sending new connections.
        await asyncio.sleep(self.config.drain_wait)
        self.events.put_nowait("drain_wait_over")

    async def handle_drain_wait_over(self) -> None:
        if self.state is RouterState.DRAINING:
            self._begin_shutdown(float(self.config.drain_timeout))

    async def handle_stopped(self) -> None:
        """The shutdown task finished; run() sees the state and returns."""

    def _begin_shutdown(self, timeout: float) -> None:
        # Shutdown runs as a task so this loop keeps taking signals (a second SIGTERM forces it).
        self.move(RouterState.STOPPING)
        task = asyncio.get_running_loop().create_task(self._shutdown(timeout))
        task.add_done_callback(lambda _: self.events.put_nowait("stopped"))
        self._stopper = task

    async def handle_reload(self) -> None:
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config-reload-failed", error=str(exc))
            # SIGHUP also means "reopen your logs" (logrotate): do that with the running config.
            if self.workers is not None:
                self.workers.reload(self.config)
            return
        new = msgspec.structs.replace(new, run_dir=self.config.run_dir)
        changed = changed_keys(self.config, new)
        live = msgspec.structs.replace(
            new, **{key: getattr(self.config, key) for key in RESTART_ONLY_KEYS}
        )
        self.config = live
        logs.apply(live.logging)
        if self.routing is not None:
            self.routing.config = live
        if self.workers is not None:
            self.workers.reload(live)
        log.info(
            "config-reloaded",
            applied=[key for key in changed if key not in RESTART_ONLY_KEYS],
            needs_restart=[key for key in changed if key in RESTART_ONLY_KEYS],
        )

    async def _shutdown(self, timeout: float) -> None:
        self.notifier.stopping()
        self._set_healthy(False)
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._startup
        # Reverse order: workers (finish in-flight requests), pruner, NATS, tables, status.
        if self.workers is not None:
            self.workers.close_listeners()
            try:
                await self.workers.stop(timeout)
            finally:
                kill_all(self.workers)
        for task in self._tasks:
            task.cancel()
        if self._publish_handle is not None:
            self._publish_handle.cancel()
        # Each remaining step is bounded: nothing here may keep the process from exiting.
        if self.nats is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.nats.close(), STEP_TIMEOUT)
        if self.routing is not None:
            self.routing.publish()
        if self.status is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.status.stop(), STEP_TIMEOUT)
        self._remove_pid_file()
        log.info("router-stopped", exit_code=self.exit_code)
        self.move(RouterState.STOPPED)

    def _remove_pid_file(self) -> None:
        """Remove routerd.pid (and pid_file) only while it names this process: it is nobody
        else's to delete."""
        for path in (self.pid_path, self._pid_file):
            if path:
                remove_pid_file(path, os.getpid())

    # -- views for the status server -------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        routing = self.routing
        assert routing is not None
        totals = routing.counters.stat_totals() if routing else [0] * STAT_WORDS
        return Snapshot(
            totals=totals,
            routes=len(routing.table.pools),
            endpoints=routing.table.endpoint_count,
            ms_since_last_registry_update=routing.ms_since_last_update(),
            nats_connected=self.nats.is_connected if self.nats else False,
            nats_state=self.nats.state.value if self.nats else "connecting",
            nats_ms_since_last_message=round(self.nats.seconds_since_last_message() * 1000)
            if self.nats
            else -1,
            nats_rebuilds=self.nats.rebuilds if self.nats else 0,
            nats_messages=dict(routing.messages),
            nats_rejected=dict(routing.rejections),
            nats_slow_consumer_events=self.nats.slow_consumer_events if self.nats else 0,
            nats_reconnects=self.nats.reconnects if self.nats else 0,
            pruned_endpoints=routing.pruned_endpoints,
            table_generation=routing.writer.generation,
            workers=self.workers.describe() if self.workers else [],
            started_at=self.started_at,
            healthy=self.status.healthy if self.status else False,
            state=self.state.value,
            nats_rejected_by_reason=routing.rejections_by_reason(),
            gorouter=self.gorouter.view(
                now=time.monotonic(),
                totals=totals,
                components=routing.table.components.named(),
                routed=routing.counters.routed_totals(routing.table.slots.high_water),
                apps_of=routing.apps_of,
                registry=routing.registry_counts,
                log_counts=logs.line_counts(
                    {name: totals[stat] for name, stat in LOG_LINE_STATS.items()}
                ),
            ),
            index=self.config.index,
        )

    async def routes_body(self, with_ttl_left: bool) -> list[bytes]:
        """Gorouter's /routes JSON, in pieces: copied on the loop a slice at a time, then
        shaped and encoded in a thread (see supervisor/routes_view.py)."""
        assert self.routing is not None
        snapshot = RoutesSnapshot(self.routing.table.pools)
        while True:
            snapshot.copy_slice(ROUTES_COPY_SLICE)
            if snapshot.is_done:
                break
            await asyncio.sleep(0)  # let NATS messages in between slices
        return await asyncio.to_thread(routes_document, snapshot.pools, time.time(), with_ttl_left)


def run(config: Config, config_path: str) -> int:
    # The lock comes before anything else touches run_dir; a routerd already there keeps it all.
    try:
        lock = RunDirLock.acquire(config.run_dir)
    except RunDirBusy as exc:
        log.fatal("router-failed-to-start", error=str(exc), running_pid=exc.pid)
        return 1
    except OSError as exc:
        log.fatal(
            "router-failed-to-start",
            error=f"cannot lock run_dir {config.run_dir!r}: {exc.strerror or exc}",
        )
        return 1
    supervisor = Supervisor(config, config_path)
    try:
        return uvloop.run(supervisor.run())
    except StartupError as exc:  # pragma: no cover - reported through the event loop
        log.fatal("router-failed-to-start", error=str(exc))
        return 1
    finally:
        lock.release()

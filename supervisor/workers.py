"""Worker processes: spawned on sockets the supervisor owns, watched, and replaced when they die.

Each worker gets its own SO_REUSEPORT listening socket. The supervisor keeps its copy of every
socket, and a dead worker's replacement is started on the same socket with an exponential
backoff, so a crash loop burns no CPU. Until the replacement is ready, the supervisor accepts on
the dead worker's sockets itself and hands the connections to the live workers (handoff.py): no
connection waits out the backoff. A worker that dies again soon after starting is in a crash
loop: each crash is logged with the count and the backoff (`worker-crash-loop`) and both show
in /varz. A liveness ping over the control channel catches a worker that is alive but stuck
(SIGSTOP, an endless loop): it is killed and replaced like a crashed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from registry.shm.counters import CounterTable
from runtime import control, handoff
from runtime.config import encode_config
from runtime.config_model import Config
from runtime.logs import EventLog
from supervisor.routing import PruneReport
from supervisor.worker_process import WorkerProcess
from supervisor.worker_states import WorkerState, transition

log = EventLog("vcap.gorouter.supervisor")

BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 10.0
# A worker that stayed up this long has its backoff reset.
STABLE_AFTER: Final = 30.0
START_TIMEOUT: Final = 30.0
LISTEN_BACKLOG: Final = 4096


def bind_listener(host: str, port: int) -> socket.socket:
    """One SO_REUSEPORT listening socket; the kernel spreads connections over the group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


class Worker:
    """One worker slot: its socket and its current process, if any."""

    def __init__(
        self,
        index: int,
        listener: socket.socket | None,
        tls_listener: socket.socket | None,
        *,
        live_channels: Callable[[], list[socket.socket]],
        log_interval: float,
    ) -> None:
        self.index = index
        self.listener = listener
        self.tls_listener = tls_listener
        self.state = WorkerState.STOPPED
        self.process: WorkerProcess | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.last_pong = 0.0
        self.backoff = BACKOFF_FIRST
        self.crashes = 0  # in a row: reset once a worker stays up STABLE_AFTER
        self.respawn_at: float | None = None
        # The supervisor's end of the handoff channel, and the worker's end, kept to read back
        # what a dying worker left unread.
        self.handoff: socket.socket | None = None
        self.handoff_peer: socket.socket | None = None
        self.standin = handoff.Standin(index, self.sockets(), live_channels, log_interval)
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return (
            f"Worker({self.index}, {self.state.value}, pid={pid}, restarts={self.restarts}, "
            f"crashes={self.crashes})"
        )

    def sockets(self) -> list[tuple[bytes, socket.socket]]:
        """This slot's listening sockets, each with the kind of connection it takes."""
        pairs = []
        if self.listener is not None:  # None: disable_http
            pairs.append((handoff.HTTP, self.listener))
        if self.tls_listener is not None:
            pairs.append((handoff.TLS, self.tls_listener))
        return pairs

    def crash_streak(self, now: float) -> int:
        """Crashes in a row; none once the current process has stayed up STABLE_AFTER."""
        if self.state is WorkerState.READY and now - self.started_at >= STABLE_AFTER:
            return 0
        return self.crashes

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def move(self, target: WorkerState) -> None:
        self.state = transition(self.state, target)

    def send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.writer.write(data)

    def track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class WorkerPool:
    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket] | None,
        counters: CounterTable,
        table_path: str,
        counters_path: str,
        clock: Callable[[], float] = time.monotonic,
        tls_listeners: list[socket.socket] | None = None,
    ) -> None:
        self.config = config
        self.counters = counters
        self.table_path = table_path
        self.counters_path = counters_path
        self.clock = clock
        self.workers = [
            Worker(
                index,
                listeners[index] if listeners else None,
                tls_listeners[index] if tls_listeners else None,
                live_channels=self.live_channels,
                log_interval=float(config.logging.error_sample_interval),
            )
            for index in range(len(listeners or tls_listeners or ()))
        ]
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None
        # Where a worker's report of an endpoint to prune goes (the routing state's).
        self.on_prune: Callable[[PruneReport], object] = lambda _report: None
        # What workers answer health checks on the router's ports (see set_healthy).
        self.healthy = False

    def __repr__(self) -> str:
        return f"WorkerPool({self.workers!r})"

    # -- starting ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until all serve; raise RuntimeError if one cannot."""
        for worker in self.workers:
            worker.state = WorkerState.BACKOFF  # a fresh slot behaves like one about to respawn
            await self._spawn(worker)
        deadline = START_TIMEOUT
        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker.ready.wait() for worker in self.workers)), deadline
            )
        except TimeoutError:
            raise RuntimeError(f"workers did not become ready within {deadline}s") from None
        self._watchdog = asyncio.get_running_loop().create_task(self._ping_loop())

    async def _spawn(self, worker: Worker) -> None:
        worker.move(WorkerState.STARTING)
        worker.ready.clear()
        worker.stopped.clear()
        self.counters.clear_in_flight(worker.index)
        parent, child = socket.socketpair()
        worker.handoff, worker.handoff_peer = handoff.channel_pair()
        listen_fds: tuple[int, ...] = (child.fileno(), worker.handoff_peer.fileno())
        listen_args: tuple[str, ...] = ()
        if worker.listener is not None:
            listen_args = ("--listen-fd", str(worker.listener.fileno()))
            listen_fds += (worker.listener.fileno(),)
        if worker.tls_listener is not None:
            listen_args += ("--tls-listen-fd", str(worker.tls_listener.fileno()))
            listen_fds += (worker.tls_listener.fileno(),)
        try:
            process = WorkerProcess.spawn(
                (
                    sys.executable,
                    "-m",
                    "router",
                    "--index",
                    str(worker.index),
                    "--control-fd",
                    str(child.fileno()),
                    "--handoff-fd",
                    str(worker.handoff_peer.fileno()),
                    *listen_args,
                ),
                pass_fds=listen_fds,
            )
        except BaseException:
            parent.close()
            self._close_handoff(worker)
            raise
        finally:
            child.close()
        worker.process = process
        worker.started_at = self.clock()
        worker.last_pong = worker.started_at
        reader, writer = await asyncio.open_unix_connection(sock=parent, limit=control.MAX_LINE)
        worker.writer = writer
        worker.send(
            control.encode(
                control.START,
                config=encode_config(self.config).decode(),
                table=self.table_path,
                counters=self.counters_path,
                healthy=self.healthy,
            )
        )
        loop = asyncio.get_running_loop()
        worker.track(loop.create_task(self._read_control(worker, reader)))
        worker.track(loop.create_task(self._wait_exit(worker, process)))
        log.info("worker-started", index=worker.index, pid=process.pid, restarts=worker.restarts)

    async def _read_control(self, worker: Worker, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError):
                return
            if not line:
                return
            message = control.decode(line)
            if message is None:
                log.error("worker-control-message-invalid", index=worker.index)
                continue
            op = message["op"]
            if op == control.PONG:
                worker.last_pong = self.clock()
            elif op == control.PRUNE:
                report = PruneReport.from_message(message)
                if report is None:
                    log.error("worker-control-message-invalid", index=worker.index, op=op)
                else:
                    self.on_prune(report)
            elif op == control.READY and worker.state is WorkerState.STARTING:
                worker.move(WorkerState.READY)
                worker.last_pong = self.clock()  # serving: the liveness clock starts now
                worker.respawn_at = None
                worker.ready.set()
                log.info("worker-ready", index=worker.index, pid=worker.pid)
                self.refresh_standins()

    async def _wait_exit(self, worker: Worker, process: WorkerProcess) -> None:
        code = await process.wait()
        if worker.writer is not None:
            worker.writer.close()
        self._close_handoff(worker)
        if worker.state is WorkerState.STOPPING or self._stopping:
            if worker.state is not WorkerState.STOPPED:
                worker.state = WorkerState.STOPPED
            worker.stopped.set()
            log.info("worker-stopped", index=worker.index, pid=process.pid, exit_code=code)
            return
        lived = self.clock() - worker.started_at
        if lived >= STABLE_AFTER:
            worker.backoff = BACKOFF_FIRST
            worker.crashes = 0
        worker.crashes += 1
        delay = worker.backoff
        worker.backoff = min(worker.backoff * 2, BACKOFF_MAX)
        worker.move(WorkerState.BACKOFF)
        worker.respawn_at = self.clock() + delay
        self.refresh_standins()
        # One line per crash: the first after a stable run, then the loop with its count.
        log.error(
            "worker-exited" if worker.crashes == 1 else "worker-crash-loop",
            index=worker.index,
            pid=process.pid,
            exit_code=code,
            crashes=worker.crashes,
            lived_seconds=round(lived, 3),
            respawn_in_seconds=round(delay, 3),
        )
        await asyncio.sleep(delay)
        if self._stopping:
            worker.move(WorkerState.STOPPED)
            worker.stopped.set()
            return
        worker.restarts += 1
        try:
            await self._spawn(worker)
        except OSError as exc:
            log.error("worker-respawn-failed", index=worker.index, error=str(exc))
            worker.move(WorkerState.BACKOFF)
            worker.respawn_at = self.clock() + worker.backoff
            asyncio.get_running_loop().call_later(worker.backoff, self._retry_spawn, worker)

    def _retry_spawn(self, worker: Worker) -> None:
        if self._stopping or worker.state is not WorkerState.BACKOFF:
            return
        worker.track(asyncio.get_running_loop().create_task(self._spawn(worker)))

    # -- standing in for workers that are down -------------------------------------------------

    def live_channels(self) -> list[socket.socket]:
        """Handoff channels of the workers serving now."""
        return [
            worker.handoff
            for worker in self.workers
            if worker.state is WorkerState.READY and worker.handoff is not None
        ]

    def refresh_standins(self) -> None:
        """Stand in for every worker not serving while another one is; stand down otherwise."""
        anyone_live = bool(self.live_channels())
        for worker in self.workers:
            down = worker.state in (WorkerState.BACKOFF, WorkerState.STARTING)
            if down and anyone_live and not self._stopping:
                if not worker.standin.is_active:
                    worker.standin.start()
            elif worker.standin.is_active:
                worker.standin.stop()
            if anyone_live:
                # Connections read back from a dead worker's channel wait in its standin.
                worker.standin.flush()

    def _close_handoff(self, worker: Worker) -> None:
        """Close a dead worker's channel, keeping what it had not read yet for the others."""
        if worker.handoff_peer is not None:
            while True:
                try:
                    message = handoff.receive_connections(worker.handoff_peer)
                except (EOFError, OSError):
                    break
                if message is None:
                    break
                kind, conns, _ = message
                worker.standin.hold(kind, conns)
            worker.handoff_peer.close()
            worker.handoff_peer = None
        if worker.handoff is not None:
            worker.handoff.close()
            worker.handoff = None

    # -- liveness ----------------------------------------------------------------------------

    async def _ping_loop(self) -> None:
        interval = max(self.config.worker_liveness_timeout / 4, 0.05)
        sequence = 0
        while not self._stopping:
            await asyncio.sleep(interval)
            sequence += 1
            now = self.clock()
            for worker in self.workers:
                if worker.state not in (WorkerState.READY, WorkerState.STARTING):
                    continue
                worker.send(control.encode(control.PING, n=sequence))
                silent = now - worker.last_pong
                # A starting worker answers no ping until it serves (imports, config, tables):
                # on a loaded machine that can outlast a short liveness timeout.
                limit = (
                    START_TIMEOUT
                    if worker.state is WorkerState.STARTING
                    else float(self.config.worker_liveness_timeout)
                )
                if silent > limit and worker.process is not None:
                    log.error(
                        "worker-unresponsive",
                        index=worker.index,
                        pid=worker.pid,
                        silent_seconds=round(silent, 3),
                    )
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.send_signal(signal.SIGKILL)
                    worker.last_pong = now  # one kill per silence; the exit path respawns

    # -- reload and stop -----------------------------------------------------------------------

    def reload(self, config: Config) -> None:
        self.config = config
        for worker in self.workers:
            worker.send(control.encode(control.RELOAD, config=encode_config(config).decode()))

    def set_healthy(self, healthy: bool) -> None:
        """Tell every worker, and every worker started later, whether the router is healthy."""
        self.healthy = healthy
        for worker in self.workers:
            worker.send(control.encode(control.HEALTH, healthy=healthy))

    def close_listeners(self) -> None:
        """Close the supervisor's copies, so the kernel stops queueing new connections."""
        for worker in self.workers:
            worker.standin.close()
            if worker.listener is not None:
                worker.listener.close()
            if worker.tls_listener is not None:
                worker.tls_listener.close()

    async def stop(self, timeout: float) -> None:
        """Ask every worker to finish in-flight requests within `timeout`, then exit."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        running = []
        for worker in self.workers:
            if worker.state in (WorkerState.STARTING, WorkerState.READY):
                worker.move(WorkerState.STOPPING)
                worker.send(control.encode(control.STOP, timeout=timeout))
                running.append(worker)
            elif worker.state is WorkerState.BACKOFF:
                worker.move(WorkerState.STOPPED)
                worker.stopped.set()
        # Workers enforce the timeout themselves; the margin covers their exit.
        for worker in running:
            try:
                await asyncio.wait_for(worker.stopped.wait(), timeout + 5)
            except TimeoutError:
                log.error("worker-stop-timed-out", index=worker.index, pid=worker.pid)
                if worker.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
                    await worker.process.wait()
        for worker in self.workers:
            worker.cancel_tasks()

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "index": worker.index,
                "pid": worker.pid,
                "state": worker.state.value,
                "restarts": worker.restarts,
                "uptime_seconds": round(self.clock() - worker.started_at, 3)
                if worker.process is not None
                else 0,
                "crashes": worker.crash_streak(self.clock()),
                "respawn_in_seconds": round(max(worker.respawn_at - self.clock(), 0.0), 3)
                if worker.respawn_at is not None and worker.state is WorkerState.BACKOFF
                else None,
                "connections_handed_off": worker.standin.handed_off,
            }
            for worker in self.workers
        ]


def kill_all(pool: WorkerPool) -> None:
    """Last resort on a failed start: no worker outlives the supervisor."""
    for worker in pool.workers:
        if worker.process is not None and worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signal.SIGKILL)

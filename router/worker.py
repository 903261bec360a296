"""A worker process, started as `python -m router` (router/__main__.py) by the supervisor,
with `--index N --listen-fd FD --control-fd FD --handoff-fd FD`.

Started by the supervisor on a listening socket it already bound. Reads its config from the
control channel, maps the shared table read-only and its counter row read-write, serves HTTP/1
(router/http1/, over aiohttp's parser) on uvloop, accepting itself (acceptor.py); also serves
the connections the supervisor hands over on the handoff channel while another worker is
down, answers pings, and stops gracefully when told.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from typing import Any

import uvloop
from setproctitle import setproctitle

from registry.lookup import RouteLookup
from registry.shm.counters import LOG_LINE_STATS, CounterTable
from registry.shm.reader import TableReader
from registry.shm.region import FileRegion
from router.accesslog import AccessLog
from router.accesslog_options import LineOptions, line_format, open_access_log
from router.backend_tls import backend_h2_tls_context, backend_tls_context
from router.client_deadlines import ClientDeadlines
from router.health import WorkerHealth
from router.http1.exchange import Http1Exchange
from router.http1.rules import Limits
from router.http1.server import Http1Server
from router.listeners import Listeners, open_listeners
from router.proxy import Proxy
from router.response_heads import ResponseLimits
from router.upstream_pool import UpstreamPool
from runtime import control, gc_tuning, logs
from runtime.c_parser import c_parser_problem
from runtime.compiled import compiled_problem
from runtime.config import decode_config
from runtime.config_model import Config

log = logs.EventLog("vcap.gorouter.router")


class Worker:
    def __init__(
        self,
        index: int,
        listen_fd: int | None,
        control_fd: int,
        handoff_fd: int,
        tls_listen_fd: int | None = None,
    ) -> None:
        self.index = index
        self.listen_fd = listen_fd
        self.tls_listen_fd = tls_listen_fd
        self.control_fd = control_fd
        self.handoff_fd = handoff_fd
        self.config: Config | None = None
        self.proxy: Proxy | None = None
        self.access_log: AccessLog | None = None
        self.server: Http1Server | None = None
        self.listeners: Listeners | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.stop_timeout: float | None = None
        self._stop = asyncio.Event()

    def __repr__(self) -> str:
        return f"Worker({self.index}, pid={os.getpid()})"

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP and SIGINT are ignored from the process's start (router/__main__.py).
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        reader, self.writer = await asyncio.open_unix_connection(
            sock=socket.socket(fileno=self.control_fd), limit=control.MAX_LINE
        )
        first = control.decode(await reader.readline())
        if first is None or first["op"] != control.START:
            log.fatal("worker-start-message-missing", index=self.index)
            return 2
        self.config = decode_config(first["config"].encode())
        logs.apply(self.config.logging)
        await self._serve(first["table"], first["counters"])
        assert self.proxy is not None
        self.proxy.healthy = first.get("healthy") is True
        control_task = loop.create_task(self._control_loop(reader))
        self._send(control.encode(control.READY))
        await self._stop.wait()
        await self._shutdown()
        control_task.cancel()
        return 0

    async def _serve(self, table_path: str, counters_path: str) -> None:
        config = self.config
        assert config is not None
        reader = TableReader(FileRegion.open(table_path))
        counters = CounterTable(FileRegion.open(counters_path, writable=True))
        health = WorkerHealth(
            counters, config.backends.max_conns, float(config.droplet_stale_threshold) / 4
        )
        upstream = UpstreamPool(
            dial_timeout=float(config.endpoint_dial_timeout),
            idle_timeout=float(config.backends.idle_timeout),
            max_idle_per_endpoint=config.idle_conns_per_endpoint,
            max_idle=config.idle_conns_total,
            reuse=not config.disable_keep_alives,
            keepalive_interval=float(config.endpoint_keep_alive_probe_interval),
            tls_context=backend_tls_context(config),
            h2_tls_context=backend_h2_tls_context(config),
        )
        upstream.limits = response_limits(config)
        if config.access_log.file or config.access_log.enable_streaming:
            self.access_log = open_access_log(config, counters.row(self.index).stats)
        lookup = RouteLookup(reader)
        lookup.index.build()
        self.proxy = Proxy(
            config, lookup, counters.row(self.index), health, upstream, self.access_log
        )
        logs.count_into(self.proxy.row.stats, LOG_LINE_STATS)
        self.proxy.tell_supervisor = self._send
        deadlines = ClientDeadlines(
            float(config.read_header_timeout),
            float(config.request_body_timeout),
            self.proxy.row.stats,
        )
        self.server = Http1Server(
            self.proxy,
            Limits(config.max_request_header_bytes, config.max_request_headers),
            deadlines,
            float(config.frontend_idle_timeout),
            Http1Exchange,
        )
        gc_tuning.tune_worker()
        self.listeners = open_listeners(
            self.server, config, self.listen_fd, self.tls_listen_fd, self.proxy.row.stats
        )
        self.listeners.receive_handoffs(socket.socket(fileno=self.handoff_fd))
        log.info("worker-serving", index=self.index, pid=os.getpid())

    async def _control_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                # The supervisor is gone: nobody will respawn or feed us; stop serving.
                log.error("supervisor-gone", index=self.index)
                self.stop_timeout = 5.0
                self._stop.set()
                return
            message = control.decode(line)
            if message is None:
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == control.PING:
            self._send(control.encode(control.PONG, n=message.get("n", 0)))
        elif op == control.HEALTH:
            if self.proxy is not None:
                self.proxy.healthy = message.get("healthy") is True
        elif op == control.RELOAD:
            self._reload(decode_config(message["config"].encode()))
        elif op == control.STOP:
            self.stop_timeout = float(message.get("timeout", 10.0))
            self._stop.set()

    def _reload(self, config: Config) -> None:
        self.config = config
        logs.apply(config.logging)
        if self.proxy is not None:
            self.proxy.apply_config(config)
            self.proxy.upstream.idle_timeout = float(config.backends.idle_timeout)
            self.proxy.upstream.dial_timeout = float(config.endpoint_dial_timeout)
            self.proxy.upstream.limits = response_limits(config)
        if self.server is not None:
            self.server.deadlines.set_timeouts(
                float(config.read_header_timeout), float(config.request_body_timeout)
            )
            self.server.idle_timeout = float(config.frontend_idle_timeout)
        if self.access_log is not None:
            self.access_log.configure(line_format(LineOptions.from_config(config)))
            self.access_log.reopen()
        log.info("worker-config-reloaded", index=self.index)

    def _send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    async def _shutdown(self) -> None:
        timeout = self.stop_timeout if self.stop_timeout is not None else 10.0
        if self.listeners is not None:
            self.listeners.close()  # stop accepting; in-flight requests go on
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.shutdown(timeout)
        if self.proxy is not None:
            self.proxy.upstream.close_all()
        if self.access_log is not None:
            self.access_log.close()
        self._send(control.encode(control.STOPPED))
        log.info("worker-stopped", index=self.index)


def response_limits(config: Config) -> ResponseLimits:
    return ResponseLimits(config.max_response_header_bytes, config.max_response_headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="routerd-worker")
    parser.add_argument("--index", type=int, required=True)
    # Absent with disable_http: only the TLS listener serves.
    parser.add_argument("--listen-fd", type=int, default=None)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--handoff-fd", type=int, required=True)
    parser.add_argument("--tls-listen-fd", type=int, default=None)
    args = parser.parse_args(argv)
    problem = c_parser_problem() or compiled_problem()
    if problem is not None:
        log.fatal("worker-refused-to-start", index=args.index, error=problem)
        sys.exit(2)
    setproctitle(f"routerd: worker {args.index}")
    worker = Worker(
        args.index, args.listen_fd, args.control_fd, args.handoff_fd, args.tls_listen_fd
    )
    sys.exit(uvloop.run(worker.run()))

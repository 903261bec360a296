"""The soak's steady traffic, in its own process: `python -m benchmarks.soak_traffic ...`.

`--connections` keep-alive lanes, each sending GETs to the hosts in turn at an even share of
`--rate` (a lane that falls behind sends at once, never in a burst to catch up), for at most
`--seconds`; no request is retried (see soak_client.py). Every second it appends a count line
to `--out`, and every failed request a line of its own with its monotonic time, so the harness
can tell which fault was active when it failed:

    {"second": 12.0, "ok": 498, "failed": 0}
    {"at": 812.31, "host": "traffic-1.soak.example.com", "status": 404,
     "router_error": "unknown_route", "error": ""}

A request with no response (reset, closed, timed out) has `"status": null` and the error.
Failure lines stop after MAX_FAILURE_LINES (the counts go on), so a broken router cannot fill
the disk. SIGTERM or SIGINT stops it early; it always writes its last count line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import IO

import uvloop

from benchmarks.soak_client import Connection

MAX_FAILURE_LINES = 20_000
REQUEST_TIMEOUT = 10.0


class Tally:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.ok = 0
        self.failed = 0
        self.failure_lines = 0

    def success(self) -> None:
        self.ok += 1

    def failure(self, host: str, status: int | None, router_error: str, error: str) -> None:
        self.failed += 1
        if self.failure_lines < MAX_FAILURE_LINES:
            self.failure_lines += 1
            line = {
                "at": round(time.monotonic(), 4),
                "host": host,
                "status": status,
                "router_error": router_error,
                "error": error,
            }
            self.out.write(json.dumps(line) + "\n")

    def flush_second(self) -> None:
        line = {"second": round(time.monotonic(), 3), "ok": self.ok, "failed": self.failed}
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        self.ok = self.failed = 0


async def lane(
    port: int,
    hosts: list[str],
    interval: float,
    offset: int,
    deadline: float,
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    connection = Connection(port, REQUEST_TIMEOUT)
    due = time.monotonic()
    turn = offset
    try:
        while (now := time.monotonic()) < deadline and not stop.is_set():
            if due > now:
                await asyncio.sleep(due - now)
            due = max(due + interval, time.monotonic())
            host = hosts[turn % len(hosts)]
            turn += 1
            reply = await connection.request(host)
            if reply.status is not None and 200 <= reply.status < 300:
                tally.success()
            else:
                tally.failure(host, reply.status, reply.router_error, reply.error)
    finally:
        connection.close()


async def ticker(tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        tally.flush_second()


async def run(args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.seconds
    hosts = args.hosts.split(",")
    interval = args.connections / args.rate
    with open(args.out, "a") as out:  # noqa: ASYNC230 - opened once, before any request
        tally = Tally(out)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(lane(args.port, hosts, interval, index, deadline, tally, stop))
            for index in range(args.connections)
        ]
        tasks.append(asyncio.create_task(ticker(tally, deadline)))

        def on_stop_signal() -> None:
            stop.set()  # a lane between requests sees this even if a cancel went astray
            for task in tasks:
                task.cancel()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_stop_signal)
        await asyncio.gather(*tasks, return_exceptions=True)
        tally.flush_second()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak_traffic")
    parser.add_argument("--port", type=int, required=True, help="routerd's port on 127.0.0.1")
    parser.add_argument("--hosts", required=True, help="comma-separated Host headers, in turn")
    parser.add_argument("--rate", type=float, default=400.0, help="requests per second in all")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, required=True, help="stop after this long")
    parser.add_argument("--out", required=True, help="file to append JSON lines to")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.connections <= 0 or args.seconds <= 0:
        parser.error("--rate, --connections and --seconds must be positive")
    uvloop.run(run(args))


if __name__ == "__main__":
    main()

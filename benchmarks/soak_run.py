"""One soak, once its processes are up: register, drive traffic, heartbeat, probe, sample, rotate
the faults, then the final check. `Soak.run()` returns the results (a JSON-ready dict).

The loops run side by side on one event loop and are cancelled together at the end; a fault
runs as a task of its own, so a slow one never holds up heartbeats, probes or samples. The
traffic process writes its counts and failures to a file that is read as the run goes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.faults import FAULTS, ROUTED_TIMEOUT, FaultSettings, Stage
from benchmarks.nats_wire import Bus
from benchmarks.processes import BENCHMARK_FAILURES, BenchmarkError, children_of, status_kib
from benchmarks.proxies import repo_root
from benchmarks.run import git_commit
from benchmarks.soak_probe import Prober
from benchmarks.soak_report import progress_line
from benchmarks.soak_routes import Kind, RouteBook
from benchmarks.soak_verdict import Failure, Outcome, Timeline, classify
from tests.support.launcher import ProcessGroup
from tests.support.nats import NatsCluster
from tests.support.routerd import STATUS_PASS, STATUS_USER, Routerd

REGISTERED_TIMEOUT = 30.0
PROBE_LANES = 4
TRAFFIC_MARGIN = 30.0  # the traffic process stops by itself this long after the soak's end
KEPT_PER_GROUP = 200  # failures in the JSON per fault turn, source and outcome; all are counted
# What the summary shows of routerd's own account at the end.
VARZ_KEPT = (
    "requests",
    "responses_2xx",
    "responses_4xx",
    "responses_5xx",
    "bad_gateways",
    "bad_gateways_by_cause",
    "retries",
    "router_errors",
    "nats",
    "pruned_endpoints",
)
TURN_SLACK = 0.5  # a last turn may end this much after the soak's end


@dataclass(frozen=True)
class SoakSettings:
    seconds: float
    fault_every: float
    faults: tuple[str, ...]
    warmup: float
    rate: float
    connections: int
    probe_rate: float
    traffic_routes: int
    watched_routes: int
    churn_routes: int
    nats_nodes: int
    workers: int
    settle: float
    sample_every: float
    print_every: float
    fault: FaultSettings


class TrafficFile:
    """Reads what the traffic process appended since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.ok = 0
        self.failed = 0
        self.failures: list[Failure] = []

    def read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            record = json.loads(line)
            if "second" in record:
                self.ok += record["ok"]
                self.failed += record["failed"]
                continue
            outcome = classify(record["status"], record["router_error"], record["error"])
            if outcome is not None:
                failure = Failure(record["at"], "traffic", outcome[0], record["host"], outcome[1])
                self.failures.append(failure)


class Soak:
    def __init__(
        self,
        settings: SoakSettings,
        group: ProcessGroup,
        cluster: NatsCluster,
        router: Routerd,
        book: RouteBook,
        timeline: Timeline,
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.group = group
        self.cluster = cluster
        self.router = router
        self.book = book
        self.timeline = timeline
        self.say = say
        self.prober = Prober(router.port, router.status_port, (STATUS_USER, STATUS_PASS))
        self.bus = Bus(cluster)
        self.traffic = TrafficFile(group.workdir / "traffic.jsonl")
        self.samples: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.harness_errors: list[str] = []
        self.heartbeat_rounds = 0
        self.heartbeat_rounds_dropped = 0
        self.varz_at_end: dict[str, Any] | None = None
        self.stage = Stage(
            cluster=cluster,
            bus=self.bus,
            router=router,
            book=book,
            prober=self.prober,
            timeline=timeline,
            settings=settings.fault,
            say=say,
        )

    def __repr__(self) -> str:
        return f"Soak({self.book!r}, {len(self.faults)} faults, {len(self.samples)} samples)"

    def all_failures(self) -> list[Failure]:
        self.traffic.read()
        return self.traffic.failures + self.prober.failures

    def elapsed(self, moment: float | None = None) -> float:
        return (time.monotonic() if moment is None else moment) - self.timeline.started

    async def run(self) -> dict[str, Any]:
        await self.bus.open()
        try:
            await self._register_all()
            traffic = self._start_traffic()
            self.timeline.started = time.monotonic()  # the soak's clock starts with traffic
            try:
                lost, listed = await self._drive()
            finally:
                self.group.stop(traffic)
        finally:
            self.bus.close()
        return self._results(lost, listed)

    async def _drive(self) -> tuple[list[str], int | None]:
        """Heartbeats, probes and samples run until cancelled; the faults rotate meanwhile.
        A loop that ends has failed, and ends the run; the final check comes either way."""
        loops = [
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(
                self.prober.probe_forever(self.book, self.settings.probe_rate, PROBE_LANES)
            ),
            asyncio.create_task(self._sample_loop()),
        ]
        rotation = asyncio.create_task(self._rotate_faults())
        try:
            await asyncio.wait([rotation, *loops], return_when=asyncio.FIRST_COMPLETED)
            rotation.cancel()
            await asyncio.gather(rotation, return_exceptions=True)
            self.timeline.finish(time.monotonic())
            return await self._final_check()
        finally:
            for task in [rotation, *loops]:
                task.cancel()
            await asyncio.gather(rotation, *loops, return_exceptions=True)
            for task in [*loops, rotation]:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    self.harness_errors.append(f"stopped early: {task.exception()}")

    async def _register_all(self) -> None:
        routes = list(self.book.routes.values())
        node = await self.bus.publish("router.register", [route.message() for route in routes])
        if node is None:
            raise BenchmarkError("no NATS node took the registrations")
        self.book.registered(routes, time.monotonic())
        expected = len(routes)
        deadline = time.monotonic() + REGISTERED_TIMEOUT
        while time.monotonic() < deadline:
            varz = await self.prober.status_json("/varz")
            if varz and varz.get("urls", 0) >= expected:
                self.say(f"{expected:,} routes registered and listed by routerd")
                return
            await asyncio.sleep(0.2)
        raise BenchmarkError(f"routerd did not list the {expected:,} routes within 30 s")

    def _start_traffic(self) -> Any:
        hosts = ",".join(route.host for route in self.book.of_kind(Kind.TRAFFIC))
        argv = [
            sys.executable,
            "-m",
            "benchmarks.soak_traffic",
            "--port",
            str(self.router.port),
            "--hosts",
            hosts,
            "--rate",
            str(self.settings.rate),
            "--connections",
            str(self.settings.connections),
            "--seconds",
            str(self.settings.seconds + TRAFFIC_MARGIN),
            "--out",
            str(self.traffic.path),
        ]
        self.say(f"traffic: {self.settings.rate:g} req/s over {self.settings.connections} lanes")
        return self.group.start("traffic", argv, cwd=str(repo_root()))

    async def _heartbeat_loop(self) -> None:
        """Every second, every heartbeated route, through the next NATS node that is up."""
        while True:
            started = time.monotonic()
            beats = self.book.heartbeats()
            node = await self.bus.publish("router.register", beats)
            self.heartbeat_rounds += 1
            if node is None:
                self.heartbeat_rounds_dropped += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async def _rotate_faults(self) -> None:
        settings = self.settings
        end = self.timeline.started + settings.seconds
        await asyncio.sleep(max(0.0, min(settings.warmup, end - time.monotonic())))
        turn = 0
        # Only whole turns: a fault needs its turn to show what it did and to recover.
        while time.monotonic() + settings.fault_every <= end + TURN_SLACK and settings.faults:
            name = settings.faults[turn % len(settings.faults)]
            turn += 1
            window = self.timeline.begin(name, time.monotonic())
            budget = settings.fault_every
            self.say(f"fault {window.title} at {self.elapsed(window.start):.1f} s")
            try:
                note = await FAULTS[name](self.stage, budget)
            except (*BENCHMARK_FAILURES, OSError, TimeoutError, ConnectionError) as exc:
                note = f"could not be injected: {exc}"
                self.harness_errors.append(f"{window.title}: {note}")
            self.faults.append(
                {
                    "name": name,
                    "number": window.number,
                    "at": round(self.elapsed(window.start), 2),
                    "took": round(time.monotonic() - window.start, 2),
                    "note": note,
                }
            )
            self.say(f"  {window.title}: {note}")
            await asyncio.sleep(max(0.0, min(window.start + budget, end) - time.monotonic()))
        await asyncio.sleep(max(0.0, end - time.monotonic()))

    async def _sample_loop(self) -> None:
        last_print = -1e9
        while True:
            sample = await self._sample()
            self.samples.append(sample)
            if sample["t"] - last_print >= self.settings.print_every - 0.01:
                last_print = sample["t"]
                print(progress_line(sample), flush=True)
            await asyncio.sleep(self.settings.sample_every)

    async def _sample(self) -> dict[str, Any]:
        assert self.router.process is not None
        if not self.router.process.is_running():
            raise BenchmarkError(f"routerd exited with {self.router.process.returncode}")
        now = time.monotonic()
        varz = await self.prober.status_json("/varz")
        self.traffic.read()
        pid = self.router.supervisor_pid
        workers = sorted(
            (worker for worker in (varz or {}).get("workers", []) if worker.get("pid")),
            key=lambda worker: worker["index"],
        )
        worker_pids = [int(worker["pid"]) for worker in workers] if varz else children_of(pid)
        probe_failures = self.prober.failed["probe"]
        keepalive_failures = self.prober.failed["keepalive"]
        return {
            "t": round(self.elapsed(now), 2),
            "phase": self.timeline.phase_at(now),
            "traffic_ok": self.traffic.ok,
            "traffic_failed": self.traffic.failed,
            "probes": self.prober.counts["probe"],
            "probe_failures": probe_failures,
            "keepalive_failures": keepalive_failures,
            "failures": self.traffic.failed + probe_failures + keepalive_failures,
            "urls": varz.get("urls") if varz else None,
            "expected_routes": self.book.expected_count(),
            "nats_connected": varz.get("nats", {}).get("connected") if varz else None,
            "supervisor_rss_kib": status_kib(pid, "VmRSS"),
            "worker_rss_kib": [status_kib(worker, "VmRSS") for worker in worker_pids],
        }

    async def _final_check(self) -> tuple[list[str], int | None]:
        """Once every route has had its settle time: each due route once, and /routes."""
        pending = [r.due_from for r in self.book.routes.values() if r.due_from is not None]
        await asyncio.sleep(max(0.0, max(pending, default=0.0) - time.monotonic()))
        due = [route.host for route in self.book.due(time.monotonic())]
        self.say(f"final check: {len(due):,} due routes, each asked once, and /routes")
        lost = await self.prober.sweep(due)
        listing = await self.prober.status_json("/routes")
        self.varz_at_end = await self.prober.status_json("/varz")
        if listing is None:
            self.harness_errors.append("/routes did not answer at the end")
            return lost, None
        missing = [host for host in due if host not in listing]
        now = time.monotonic()
        for host in missing:
            if host not in lost:
                detail = "not listed in /routes"
                self.prober.failures.append(Failure(now, "final", Outcome.ROUTE_LOST, host, detail))
        return sorted(set(lost) | set(missing)), len(listing)

    def _results(self, lost: list[str], listed: int | None) -> dict[str, Any]:
        failures = sorted(self.all_failures(), key=lambda failure: failure.at)
        return {
            "meta": {
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "commit": git_commit(),
                "seconds": round(self.elapsed(), 1),
                "settings": asdict(self.settings),
                "routerd_config": self.router.config,
                "expected_routes_at_end": self.book.expected_count(),
                "routed_timeout": ROUTED_TIMEOUT,
            },
            "counts": {
                "traffic_ok": self.traffic.ok,
                "traffic_failed": self.traffic.failed,
                **self.prober.counts,
                "heartbeat_rounds": self.heartbeat_rounds,
                "heartbeat_rounds_dropped": self.heartbeat_rounds_dropped,
                "heartbeat_routes": len(self.book.routes),
            },
            "windows": [
                {
                    "name": window.name,
                    "number": window.number,
                    "start": round(self.elapsed(window.start), 2),
                    "end": round(self.elapsed(window.end), 2) if window.end else None,
                }
                for window in self.timeline.windows
            ],
            "kills": [round(self.elapsed(kill), 2) for kill in self.timeline.kills],
            "faults": self.faults,
            "samples": self.samples,
            "failures": [
                {
                    "t": round(self.elapsed(failure.at), 3),
                    "phase": self.timeline.phase_at(failure.at),
                    "excused": self.timeline.is_excused(failure),
                    "source": failure.source,
                    "outcome": failure.outcome.value,
                    "host": failure.host,
                    "detail": failure.detail,
                }
                for failure in self._kept(failures)
            ],
            "lost_at_end": lost,
            "routes_listed_at_end": listed,
            "varz_at_end": {key: self.varz_at_end.get(key) for key in VARZ_KEPT}
            if self.varz_at_end
            else None,
            "harness_errors": self.harness_errors,
        }

    def _kept(self, failures: list[Failure]) -> list[Failure]:
        """The first KEPT_PER_GROUP of each group, so that a late fault's failures are not
        crowded out of the JSON by an early one's."""
        seen: dict[tuple[str, str, Outcome], int] = {}
        kept = []
        for failure in failures:
            key = (self.timeline.phase_at(failure.at), failure.source, failure.outcome)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= KEPT_PER_GROUP:
                kept.append(failure)
        return kept

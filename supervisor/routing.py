"""The supervisor's routing state: applies NATS messages, publishes shards, prunes stale routes.

Message handling is synchronous and cheap: decode, validate, update the authoritative table, mark
shards dirty. Heartbeats, most of the traffic, are cheaper still: an endpoint re-sends the same
bytes every interval, so the registration parsed from them last time is kept (keyed by those
bytes) and, while the table still holds exactly what it made, a heartbeat only marks it seen.
Publishing is coalesced: dirty shards are encoded and published together once per
`route_table.publish_interval`, or at once when many are pending, so a registration storm costs
one publish per interval rather than one per message.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple

from registry.message import Caveat, Registration, parse_registration, validate_message
from registry.prune import plan_prune
from registry.rejection import Rejection
from registry.routekey import RouteKey
from registry.routes import ENDPOINT_UNREGISTERED, ROUTE_REGISTERED, Change, RouteTable
from registry.segments import is_served
from registry.shm.counters import CounterTable
from registry.shm.writer import TableWriter
from runtime.config_model import Config
from runtime.log_rates import LogSampler, Suppressed
from runtime.logs import EventLog
from supervisor.gorouter_metrics import RegistryCounts

# Publish at once when this many shards are dirty, without waiting for the interval.
PUBLISH_BATCH: Final = 1024
# Parsed registrations kept per endpoint in the table (beyond a floor) before the cache is
# emptied: an endpoint whose message changed leaves its old bytes behind until then.
KNOWN_PER_ENDPOINT: Final = 2
KNOWN_FLOOR: Final = 4096
_PAYLOAD_PREVIEW: Final = 512

log = EventLog("vcap.gorouter.registry")


class PruneReport(NamedTuple):
    """A worker's report (control.PRUNE): this endpoint of this route failed to connect or to
    set up TLS."""

    key: RouteKey
    address: str
    error: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PruneReport | None:
        """The report a control message holds, or None when it holds none."""
        host, path = message.get("host"), message.get("path")
        address, error = message.get("address"), message.get("error", "")
        if (
            isinstance(host, str)
            and isinstance(path, str)
            and isinstance(address, str)
            and isinstance(error, str)
        ):
            return cls(RouteKey(host, path), address, error)
        return None


subscriber_log = EventLog("vcap.gorouter.subscriber")


class Routing:
    def __init__(
        self,
        config: Config,
        table: RouteTable,
        writer: TableWriter,
        counters: CounterTable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._known: dict[bytes, Registration] = {}
        self.config = config
        self.table = table
        self.writer = writer
        self.counters = counters
        self.clock = clock
        self._last_seen = counters.supervisor_row
        self.messages: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.rejection_reasons: Counter[tuple[str, str]] = Counter()  # (subject, code)
        self.caveats: Counter[str] = Counter()  # registrations accepted with a warning, by event
        # A flood of bad messages costs a few log lines per interval, not one per message.
        self._rejection_log = LogSampler(
            config.logging.error_samples_per_interval, float(config.logging.error_sample_interval)
        )
        self._suppressed_reasons: Counter[str] = Counter()
        self.pruned_endpoints = 0
        self.registry_counts = RegistryCounts()  # Gorouter's registry metrics
        self.publishes = 0
        self.prune_suspended = False
        self.schedule_publish: Callable[[], None] = lambda: None
        self.schedule_later: Callable[[float, Callable[[], None]], object] = lambda _d, _c: None

    def __repr__(self) -> str:
        return f"Routing({self.table!r}, generation={self.writer.generation})"

    # -- NATS messages -----------------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        # Parsing depends on the config (stale threshold, isolation segments).
        self._config = config
        self._segments = frozenset(config.isolation_segments)
        self._known = {}

    def handle_register(self, data: bytes, subject: str = "router.register") -> bool:
        reg = self._known.get(data)
        if reg is not None:
            self.messages[subject] += 1
            now = self.clock()
            slot = self.table.refresh(reg, now)
            if slot is not None:
                self._last_seen[slot] = int(now * 1000)
                self.registry_counts.register(
                    reg.message.tags, added=0, updated=len(reg.routes), updated_at_ns=0, now_ns=0
                )
                return True
        else:
            reg = self._parse(data, subject, for_unregister=False)
            if reg is None:
                return False
            now = self.clock()
        added = self._routes_new_to(reg)
        result = self.table.register(reg, now)
        if isinstance(result, Rejection):
            self._reject(subject, result, data)
            return False
        message = reg.message
        self.registry_counts.register(
            message.tags,
            added=added,
            updated=len(reg.routes) - added,
            updated_at_ns=message.endpoint_updated_at_ns,
            now_ns=int(now * 1e9),
        )
        self._remember(data, reg)
        slot = self.table.slots.slot_of(reg.address)
        if slot is not None:
            self._last_seen[slot] = int(now * 1000)
        self._log_changes(result)
        self._after_change()
        return True

    def _routes_new_to(self, reg: Registration) -> int:
        """How many of `reg`'s routes do not hold its endpoint yet."""
        pools = self.table.pools
        address = reg.address
        return sum(
            1
            for key in reg.routes
            if (pool := pools.get(key)) is None or address not in pool.endpoints
        )

    def apps_of(self, slots: Iterable[int]) -> dict[int, str]:
        """The app id of the endpoint in each of `slots` that holds an endpoint."""
        wanted = set(slots)
        found: dict[int, str] = {}
        for pool in self.table.pools.values():
            if not wanted:
                break
            for state in pool.endpoints.values():
                slot = state.record.slot
                if slot in wanted:
                    wanted.discard(slot)
                    found[slot] = state.record.app_id
        return found

    def _remember(self, data: bytes, reg: Registration) -> None:
        if len(self._known) >= KNOWN_FLOOR + KNOWN_PER_ENDPOINT * self.table.endpoint_count:
            self._known = {}
        self._known[data] = reg

    def handle_unregister(self, data: bytes, subject: str = "router.unregister") -> bool:
        reg = self._parse(data, subject, for_unregister=True)
        if reg is None:
            return False
        self.registry_counts.unregister(reg.message.tags, len(reg.routes))
        self._log_changes(self.table.unregister(reg, self.clock()))
        self._after_change()
        return True

    def _parse(self, data: bytes, subject: str, for_unregister: bool) -> Registration | None:
        self.messages[subject] += 1
        reg = parse_registration(
            data, self.config.stale_threshold_seconds, for_unregister=for_unregister
        )
        if isinstance(reg, Rejection):
            self._reject(subject, reg, data)
            return None
        if not is_served(
            reg.message.isolation_segment, self.config.routing_table_sharding_mode, self._segments
        ):
            return None
        for caveat in reg.caveats:
            self._warn(subject, caveat, data)
        return reg

    def _reject(self, subject: str, rejection: Rejection, data: bytes) -> None:
        self.rejections[subject] += 1
        self.rejection_reasons[subject, rejection.code] += 1
        if self._admit_log_line(rejection.code):
            subscriber_log.error(
                "validation-error",
                error=rejection.reason[:_PAYLOAD_PREVIEW],
                reason=rejection.code,
                subject=subject,
                payload=data[:_PAYLOAD_PREVIEW].decode("utf-8", "replace"),
            )

    def _warn(self, subject: str, caveat: Caveat, data: bytes) -> None:
        """A registration accepted as Gorouter accepts it, with something the operator should
        hear of; sampled with the rejections, so a flood costs the same few lines."""
        self.caveats[caveat.event] += 1
        if self._admit_log_line(caveat.event):
            subscriber_log.warn(
                caveat.event,
                reason=caveat.reason,
                subject=subject,
                payload=data[:_PAYLOAD_PREVIEW].decode("utf-8", "replace"),
            )

    def _admit_log_line(self, code: str) -> bool:
        """Whether this rejection or caveat is logged whole; if not, it is counted by `code`
        for the window's summary."""
        now = self.clock()
        sampler = self._rejection_log
        admitted, due = sampler.admit(now)
        if due is not None:
            self._log_suppressed(due)
        if admitted:
            return True
        self._suppressed_reasons[code] += 1
        if sampler.suppressed == 1:
            # The summary is due when the window ends, whether or not more rejections come.
            window = sampler.window_started_at
            self.schedule_later(
                max(sampler.window_ends_at - now, 0.0),
                lambda: self.report_suppressed_rejections(window),
            )
        return False

    def report_suppressed_rejections(self, window: float) -> None:
        """Log the summary of the window that started at `window`, unless already logged."""
        sampler = self._rejection_log
        if sampler.window_started_at != window:
            return  # a later rejection closed that window and logged its summary
        due = sampler.close_window(max(self.clock(), sampler.window_ends_at))
        if due is not None:
            self._log_suppressed(due)

    def _log_suppressed(self, due: Suppressed) -> None:
        subscriber_log.error(
            "validation-errors-suppressed",
            count=due.count,
            reasons=dict(self._suppressed_reasons),
            interval=self._rejection_log.interval,
            logged_per_interval=self._rejection_log.limit,
        )
        self._suppressed_reasons.clear()

    def rejections_by_reason(self) -> dict[str, dict[str, int]]:
        """Rejected messages by subject, then by reason code (for /varz and /metrics)."""
        result: dict[str, dict[str, int]] = {}
        for (subject, code), count in sorted(self.rejection_reasons.items()):
            result.setdefault(subject, {})[code] = count
        return result

    def _log_changes(self, changes: list[Change]) -> None:
        for change in changes:
            endpoint = change.endpoint
            if endpoint is None:
                log.info(change.event, uri=change.uri)
                if change.event == ROUTE_REGISTERED:
                    log.debug("uri-added", uri=change.uri)  # Gorouter's older name, kept at debug
                continue
            (log.debug if change.update else log.info)(
                change.event,
                uri=change.uri,
                route_service_url=change.route_service_url,
                backend=endpoint.address,
                application_id=endpoint.app_id,
                instance_id=endpoint.instance_id,
                server_cert_domain_san=endpoint.server_cert_domain_san,
                protocol=endpoint.protocol,
                isolation_segment=endpoint.isolation_segment or "-",
                isTLS=endpoint.tls,
            )

    def _after_change(self) -> None:
        dirty = self.table.dirty_count
        if dirty >= PUBLISH_BATCH:
            self.publish()
        elif dirty:
            self.schedule_publish()

    def load_static_routes(self) -> None:
        """Register the config's static_routes (validated with the config) and pin them."""
        now = self.clock()
        for message in self.config.static_routes:
            reg = validate_message(message, self.config.stale_threshold_seconds)
            if isinstance(reg, Rejection):  # pragma: no cover - the config was validated
                continue
            result = self.table.register(reg, now)
            if isinstance(result, Rejection):
                log.error("static-route-rejected", uris=message.uris, error=result.reason)
                continue
            self.table.pin(reg)
            self._log_changes(result)

    def prune_failed_endpoint(self, report: PruneReport) -> bool:
        """Remove a TLS endpoint a worker could not connect to from the route (Gorouter's
        EndpointFailed for prunable errors), so no worker chooses it until it registers again.
        False when it is gone already (another worker reported it, or it unregistered), or is
        a static route: nothing would register that again, so workers only skip it a while."""
        pool = self.table.pools.get(report.key)
        state = pool.endpoints.get(report.address) if pool is not None else None
        if state is None:
            return False
        if state.last_seen == math.inf:
            log.info(
                "prune-failed-static-endpoint-kept", uri=str(report.key), backend=report.address
            )
            return False
        log.info(
            "prune-failed-endpoint", uri=str(report.key), backend=report.address, error=report.error
        )
        # Gorouter's pool stays, empty, until its next pruning cycle snips it.
        changes = self.table.remove_endpoint(
            report.key, report.address, self.clock(), keep_empty=True
        )
        self._log_changes(changes)
        self._after_change()
        return True

    # -- publishing --------------------------------------------------------------------------

    def publish(self) -> int:
        """Encode and publish every dirty shard; returns how many were published."""
        shards = self.table.take_dirty()
        if not shards:
            return 0
        payloads = [(shard, self.table.shard_payload(shard)) for shard in shards]
        self.writer.publish(
            payloads, routes=len(self.table.pools), endpoints=self.table.endpoint_count
        )
        self.publishes += 1
        return len(shards)

    def publish_all(self) -> None:
        """Publish every shard (start-up, or after static routes were loaded)."""
        payloads = [(shard, self.table.shard_payload(shard)) for shard in self.table.all_shards()]
        self.table.take_dirty()
        self.writer.publish(
            payloads, routes=len(self.table.pools), endpoints=self.table.endpoint_count
        )

    # -- pruning -----------------------------------------------------------------------------

    def prune(self, nats_connected: bool, had_outage: bool = False) -> int:
        """One pruner cycle; returns the number of endpoints removed.

        `nats_connected` is the link's proven state now; `had_outage` says it was not proven at
        some moment since the last cycle, however briefly: routes could not be heard then, so
        this cycle freshens them as after a suspension rather than pruning them.
        """
        now = self.clock()
        suspend = self.config.suspend_pruning_if_nats_unavailable
        plan = plan_prune(
            now,
            self.table.endpoint_ages(),
            nats_connected=nats_connected,
            suspend_when_disconnected=suspend,
            was_suspended=self.prune_suspended or (suspend and had_outage),
        )
        if plan.suspended:
            self.prune_suspended = True
            log.info("prune-suspended")
            return 0
        if plan.freshen_all:
            self.prune_suspended = False
            log.debug("prune-unsuspended-refresh-routes-start")
            self.table.freshen(now)
            now_ms = int(now * 1000)
            for slot in self.table.slots.used_slots():
                self._last_seen[slot] = now_ms
            log.debug("prune-unsuspended-refresh-routes-complete")
            return 0
        removed: dict[str, list[str]] = {}
        segment: dict[str, str] = {}
        for key, address in plan.stale:
            for change in self.table.remove_endpoint(key, address, now):
                if change.event == ENDPOINT_UNREGISTERED and change.endpoint is not None:
                    removed.setdefault(change.uri, []).append(address)
                    segment.setdefault(change.uri, change.endpoint.isolation_segment or "-")
        for change in self.table.drop_expired_empty_pools(now):
            log.info(change.event, uri=change.uri)
        for uri, addresses in removed.items():
            log.info("pruned-route", uri=uri, endpoints=addresses, isolation_segment=segment[uri])
        count = sum(len(addresses) for addresses in removed.values())
        self.pruned_endpoints += count
        if self.table.dirty_count:
            self.publish()
        return count

    def ms_since_last_update(self) -> int:
        if self.table.last_update is None:
            return -1
        return int((self.clock() - self.table.last_update) * 1000)

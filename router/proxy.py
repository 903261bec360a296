"""A worker's proxy core: its configuration and the state every request shares (route lookup,
counters, endpoint health, the upstream pool, the access log).

The request path is three steps on plain values, each in its own module: routing.py (`begin`,
`plan`), attempts.py (one attempt, retries) or route_service_hop.py, and settlement.py
(`finish`, once per exchange). The front end (router/http1/) feeds them exchanges and writes what
they leave; they know nothing of HTTP/1 framing.
"""

from __future__ import annotations

from collections.abc import Callable

from registry.lookup import RouteLookup
from registry.pruned import PrunedEndpoints
from registry.records import EndpointRecord
from registry.shm.counters import CounterRow
from router.accesslog import AccessLog
from router.backend_tls import route_service_tls_context
from router.forwarded import forwarding_for
from router.headers import header_rules
from router.health import WorkerHealth
from router.rewrite import ResponseRewrite, response_rewrite
from router.route_services import HairpinAllowlist, RouteServiceKeys
from router.sticky import StickyRules
from router.tracing import tracing_for
from router.upstream_pool import UpstreamPool
from runtime import error_template
from runtime.config_model import Config
from runtime.error_template import ErrorTemplate
from runtime.logs import EventLog
from runtime.router_ip import router_ip

log = EventLog("vcap.gorouter.proxy")


class Proxy:
    def __init__(
        self,
        config: Config,
        lookup: RouteLookup,
        row: CounterRow,
        health: WorkerHealth,
        upstream: UpstreamPool,
        access_log: AccessLog | None,
    ) -> None:
        self.lookup = lookup
        self.row = row
        self.health = health
        self.upstream = upstream
        self.access_log = access_log
        self.instance_cache: dict[int, tuple[EndpointRecord, bytes, str, str]] = {}
        self.route_services: RouteServiceKeys | None = None
        self.rewrite: ResponseRewrite | None = None
        self.error_template: ErrorTemplate | None = None
        # The router's own health, as the supervisor says (control.HEALTH): what a load
        # balancer's health check on the router's ports is answered.
        self.healthy = False
        # TLS endpoints this worker pruned, hidden until the supervisor's table drops them
        # (as long as a failure mark would last, for one the supervisor keeps).
        self.pruned = PrunedEndpoints(health.marks.retry_after)
        # Sends a control message to the supervisor (the worker sets it once connected).
        self.tell_supervisor: Callable[[bytes], None] = lambda _message: None
        self.apply_config(config)

    def __repr__(self) -> str:
        return f"Proxy({self.upstream!r}, {self.health!r})"

    def apply_config(self, config: Config) -> None:
        """Everything here may change on SIGHUP."""
        self.config = config
        self.max_attempts = max(1, config.backends.max_attempts)
        self.endpoint_timeout = float(config.endpoint_timeout)
        self.websocket_dial_timeout = config.upgrade_dial_timeout
        self.keep_alive_100_continue = config.keep_alive_100_continue_requests
        self.disable_keep_alives = config.disable_keep_alives
        self.upstream.set_keep_alive(
            config.idle_conns_per_endpoint, config.idle_conns_total, not config.disable_keep_alives
        )
        self.rewrite = response_rewrite(config.http_rewrite)
        self.error_template = _error_template(config.html_error_template_file)
        self.default_algorithm = config.balancing_algorithm
        self.empty_pool_503 = config.empty_pool_response_code_503
        # Plain-HTTP connections share one set of rules; TLS ones without a client cert another.
        self.plain_forwarding = forwarding_for(config, tls=False)
        self.tls_forwarding = forwarding_for(config, tls=True)
        tracing = config.tracing
        self.header_rules = header_rules(
            tracing_for(tracing.enable_zipkin, tracing.enable_w3c, tracing.w3c_tenant_id),
            config.hop_by_hop_headers_to_filter,
        )
        self.sticky_names = frozenset(config.sticky_session_cookie_names)
        self.negotiate_sticky = config.sticky_sessions_for_auth_negotiate
        self.sticky_rules = StickyRules(
            self.sticky_names, config.secure_cookies, config.sticky_sessions_for_auth_negotiate
        )
        self.is_sticky_on = bool(self.sticky_names) or self.negotiate_sticky
        # Bytes as Go compares them; None when off: no header value equals it.
        self.trace_key = config.trace_key.encode() if config.trace_key else None
        self.router_ip = router_ip(config).encode() if config.trace_key else b""
        # Bytes as Go compares them (UTF-8, exact); None when off: no header value equals it.
        agent = config.healthcheck_user_agent
        self.healthcheck_user_agent = agent.encode() if agent else None
        self.health.max_conns = config.backends.max_conns
        self.route_service_scheme = "https" if config.route_services_recommend_https else "http"
        self.route_service_attempts = config.route_services.max_attempts
        self.route_service_tls = route_service_tls_context(config)
        self.strict_signatures = config.route_services.strict_signature_validation
        self.hairpinning = config.route_services_hairpinning
        self.hairpin_allowlist = HairpinAllowlist(config.route_services_hairpinning_allowlist)
        if config.route_services_secret:
            self.route_services = RouteServiceKeys(
                config.route_services_secret,
                config.route_services_secret_decrypt_only,
                float(config.route_services_timeout),
            )
        else:
            self.route_services = None


def _error_template(path: str) -> ErrorTemplate | None:
    """The operator's error page, read when the config is applied. The config was validated
    with the same file; if it changed since and no longer loads, answers stay plain text."""
    if not path:
        return None
    try:
        return error_template.load(path)
    except error_template.TemplateError as exc:
        log.error("html-error-template-failed", error=str(exc))
        return None


__all__ = ["Proxy"]

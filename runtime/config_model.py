"""The router's configuration model: one frozen struct, Gorouter's key names, every default once.

Keys follow Gorouter's `config.yml` wherever Gorouter has the feature, so an operator's values carry
over. Where Gorouter's production (BOSH) default differs from its binary default, the production one
is used. Project-specific keys are marked as such. Reading, Gorouter's meanings and the checks
across keys are in config.py.
"""

from __future__ import annotations

import os
from typing import Annotated, Final, Literal

import msgspec

from registry.message import RegistryMessage
from runtime import client_cert_metadata
from runtime.durations import Duration

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
# Gorouter's cap on a request head: Go's http.Server reads no more.
MAX_REQUEST_HEADER_BYTES: Final = 1 << 20
# What Gorouter's backend transport reads of a response head when max_response_header_bytes
# is 0 or less: Go's http.Transport default.
MAX_RESPONSE_HEADER_BYTES: Final = 10 << 20
# What max_idle_conns_per_host 0 means in Gorouter: Go's http.DefaultMaxIdleConnsPerHost.
GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST: Final = 2
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class StatusRoutesConfig(_Model, frozen=True):
    # Gorouter's default: /routes on its own listener, bound to 127.0.0.1 (local tools only).
    port: Port = 8082


class StatusTlsConfig(_Model, frozen=True):
    """Gorouter's TLS health listener: /health over TLS, served once any of these is set."""

    # Gorouter's default port.
    port: Port = 8443
    # PEM text, as in Gorouter: the certificate chain and its private key.
    certificate: str = ""
    key: str = ""

    @property
    def is_enabled(self) -> bool:
        # Gorouter's rule: anything but its defaults turns the listener on (and needs a key pair).
        return self != StatusTlsConfig()


class StatusConfig(_Model, frozen=True):
    # Gorouter's defaults: the status server (/health for load balancers) listens everywhere
    # on 8080.
    host: str = "0.0.0.0"
    port: Port = 8080
    # Empty credentials mean nobody can read /routes, /varz or /metrics: fail closed.
    user: str = ""
    pass_: str = msgspec.field(name="pass", default="")
    routes: StatusRoutesConfig = StatusRoutesConfig()
    # Gorouter's default: /healthz (its old alias of /health) is not served.
    enable_deprecated_varz_healthz_endpoints: bool = False
    # Gorouter's default: /health is served on status.port; false leaves it to status.tls.
    enable_nontls_health_checks: bool = True
    tls: StatusTlsConfig = StatusTlsConfig()


class PrometheusConfig(_Model, frozen=True):
    """Gorouter's Prometheus endpoint: /metrics alone, over mutual TLS, on a port of its own."""

    # Current Gorouter serves it when `enabled`; v0.317, which has no such key, whenever `port`
    # is set. Absent (None), v0.317's rule holds, so files rendered for either release work.
    enabled: bool | None = None
    # Gorouter's default: no port, nothing served.
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    # Files, as in Gorouter: the server's certificate and key, and the CA that signs the
    # scrapers' client certificates (a scraper without one is refused in the handshake).
    cert_path: str = ""
    key_path: str = ""
    ca_path: str = ""

    @property
    def is_enabled(self) -> bool:
        return self.port != 0 if self.enabled is None else self.enabled


class NatsHost(_Model, frozen=True):
    hostname: str
    # NATS's well-known client port.
    port: Port = 4222


class NatsConfig(_Model, frozen=True):
    # A local NATS on its default port, as in Gorouter's example config.
    hosts: tuple[NatsHost, ...] = (NatsHost(hostname="127.0.0.1"),)
    user: str = ""
    pass_: str = msgspec.field(name="pass", default="")
    # TLS to NATS is off unless asked for, as in Gorouter.
    tls_enabled: bool = False
    ca_certs: str = ""
    cert_chain: str = ""
    private_key: str = ""


class BackendsConfig(_Model, frozen=True):
    # Gorouter's production default: beyond 500 concurrent requests one instance is overloaded.
    max_conns: NonNegativeInt = 500
    # Gorouter's production default: the first try plus two retries on other endpoints.
    max_attempts: PositiveInt = 3
    # Client certificate presented to TLS backends that ask for one (Gorouter's keys).
    cert_chain: str = ""
    private_key: str = ""
    # Project-specific. Idle upstream connections are closed before common backends close them
    # (Node.js closes after 5 s, gunicorn after 2 s), so the router rarely reuses a dying one.
    idle_timeout: Duration = Duration(1.5)
    # Project-specific, older name of `max_idle_conns_per_host`: None (absent) leaves that key
    # alone; set, it applies unless the file also sets max_idle_conns_per_host, which then wins.
    max_idle_conns_per_endpoint: PositiveInt | None = None


class TracingConfig(_Model, frozen=True):
    # B3 headers only when asked for, as in Gorouter.
    enable_zipkin: bool = False
    # W3C trace context (`traceparent`, `tracestate`) only when asked for, as in Gorouter. The
    # tenant id, when set, names the router's tracestate entry `<tenant>@gorouter`.
    enable_w3c: bool = False
    w3c_tenant_id: str = ""


class AccessLogConfig(_Model, frozen=True):
    # Empty: no access log file, as in Gorouter.
    file: str = ""
    # Gorouter's default: access log lines go to syslog (logging.syslog_*) only when asked.
    enable_streaming: bool = False


class LogFormatConfig(_Model, frozen=True):
    # Gorouter's production default: human-readable component log timestamps. "unix-epoch"
    # (Gorouter's binary default) and "deprecated" write seconds since the epoch, as a float.
    timestamp: str = "rfc3339"


# Gorouter's `logging.format.timestamp` values.
TIMESTAMP_FORMATS: Final = ("rfc3339", "unix-epoch", "deprecated")
# Gorouter's `extra_access_log_fields` values.
ExtraAccessLogField = Literal["local_address"]
# Networks a syslog line can be sent over as one datagram ("": the local syslog socket).
SyslogNetwork = Literal["", "unixgram", "udp", "udp4", "udp6"]


class LoggingConfig(_Model, frozen=True):
    # Gorouter's production level.
    level: Literal["debug", "info", "warn", "error", "fatal"] = "info"
    # Repeating errors (rejected NATS messages, failed access log writes) are counted in /varz
    # and logged as samples: at most this many whole lines per interval, then one summary line
    # with the count. 10 s shows a problem while it lasts; a flood costs a few lines, not GBs.
    error_samples_per_interval: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5
    error_sample_interval: Duration = Duration(10)
    format: LogFormatConfig = LogFormatConfig()
    # Gorouter's production name: the `source` of component log lines (and their children's,
    # `vcap.gorouter.registry`), and the syslog tag of streamed access log lines. Empty: as in
    # Gorouter, `gorouter.stdout`.
    syslog: str = "vcap.gorouter"
    # Where access_log.enable_streaming sends lines. Gorouter's binary default, both empty: the
    # local syslog socket (/dev/log), which journald or rsyslog always listens on; BOSH renders
    # udp to localhost:514 for its own rsyslog.
    syslog_addr: str = ""
    syslog_network: SyslogNetwork = ""
    # Gorouter's default: a syslog line is sent whole; > 0 cuts it to this many bytes.
    syslog_truncate: NonNegativeInt = 0
    # Gorouter's defaults: the access log shows the client's address and X-Forwarded-For.
    # Either can be replaced by "-" where logging personal data is not allowed.
    disable_log_forwarded_for: bool = False
    disable_log_source_ip: bool = False
    # Gorouter's default: GET query strings are logged as sent; "all" drops them, "hash"
    # logs `hash=<sha1 hex of the query>`.
    redact_query_params: Literal["none", "all", "hash"] = "none"
    # Gorouter's default: no per-attempt fields (failed_attempts, backend_time, ...) in the line.
    enable_attempts_details: bool = False
    extra_access_log_fields: tuple[ExtraAccessLogField, ...] = ()


class RouteServicesConfig(_Model, frozen=True):
    """Gorouter's `route_services` block: how the router talks to route services."""

    # Gorouter's production default: a route-service request is tried this many times (dial
    # and TLS-setup failures, and idempotent requests lost before any response byte).
    max_attempts: PositiveInt = 3
    # Gorouter's default: a signature on a request for a route without a route service is
    # passed on unchecked; true checks it (decrypts, not expired) and refuses a bad one.
    strict_signature_validation: bool = False
    # PEM text, as in Gorouter: the client certificate presented to route services that ask
    # for one (backends.cert_chain is for apps only).
    cert_chain: str = ""
    private_key: str = ""


class RouteTableConfig(_Model, frozen=True):
    """Project-specific: sizing of the shared-memory route table."""

    # Many small shards: at 100k routes a shard holds ~6, so a worker re-decodes one in a few
    # microseconds and a registration re-encodes little (measured in benchmarks/table.py).
    shards: Annotated[int, msgspec.Meta(ge=1, le=1 << 20)] = 16384
    # Endpoint counter slots; the file is sparse, so unused slots cost no memory.
    max_endpoints: Annotated[int, msgspec.Meta(ge=16, le=1 << 24)] = 1 << 20
    # Coalescing window: dirty shards are published together this often.
    publish_interval: Duration = Duration(0.005)


class TlsPem(_Model, frozen=True):
    """One certificate chain served on the TLS listener, with its key (Gorouter's `tls_pem`)."""

    cert_chain: str
    private_key: str


class CertSubject(_Model, frozen=True):
    """A certificate subject (Gorouter's CertSubject: the fields of Go's pkix.Name)."""

    country: tuple[str, ...] = ()
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    common_name: str = ""
    serial_number: str = ""
    locality: tuple[str, ...] = ()
    province: tuple[str, ...] = ()
    street_address: tuple[str, ...] = ()
    postal_code: tuple[str, ...] = ()

    @property
    def subject(self) -> client_cert_metadata.Subject:
        return client_cert_metadata.Subject(
            country=self.country,
            province=self.province,
            locality=self.locality,
            street_address=self.street_address,
            postal_code=self.postal_code,
            organization=self.organization,
            organizational_unit=self.organizational_unit,
            common_name=self.common_name,
            serial_number=self.serial_number,
        )


class ClientCertMetadataRule(_Model, frozen=True):
    """One of Gorouter's `verify_client_certificate_metadata` rules: a client whose chain holds
    the CA `issuer_in_chain` must have one of `valid_cert_subjects` (none: every such client is
    refused, as in Gorouter). runtime/client_cert_metadata.py has the whole contract."""

    # None only when absent from the file, which validate() refuses while the rules are on.
    issuer_in_chain: CertSubject | None = None
    valid_cert_subjects: tuple[CertSubject, ...] = ()

    @property
    def rule(self) -> client_cert_metadata.Rule:
        issuer = self.issuer_in_chain
        return client_cert_metadata.Rule(
            issuer=client_cert_metadata.EMPTY_SUBJECT if issuer is None else issuer.subject,
            valid_subjects=tuple(subject.subject for subject in self.valid_cert_subjects),
        )


class HeaderNameValue(_Model, frozen=True):
    """One header of `http_rewrite` (Gorouter's shape: `value` is ignored for removals)."""

    name: str
    value: str = ""


class HttpRewriteResponses(_Model, frozen=True):
    # Gorouter's defaults: responses pass unchanged. Removals apply first, then each header
    # to add is added when the response has none of that name (HSTS is the usual one).
    add_headers_if_not_present: tuple[HeaderNameValue, ...] = ()
    remove_headers: tuple[HeaderNameValue, ...] = ()


class HttpRewriteConfig(_Model, frozen=True):
    responses: HttpRewriteResponses = HttpRewriteResponses()


ShardingMode = Literal["all", "segments", "shared-and-segments"]
TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
ClientCertValidation = Literal["none", "request", "require"]
ForwardedClientCert = Literal["always_forward", "forward", "sanitize_set"]
BalancingAlgorithm = Literal["round-robin", "least-connection"]
AzPreference = Literal["none", "locally-optimistic"]
LOCALLY_OPTIMISTIC: Final = "locally-optimistic"


class Config(_Model, frozen=True):
    # Gorouter's binary default port; production puts a load balancer in front.
    port: Port = 8081
    # Gorouter's key and default: this router's number among its peers (BOSH's instance
    # index), shown as /varz `index` and as the first part of /varz `uuid` and of the `id` in
    # router.start and router.greet replies.
    index: NonNegativeInt = 0
    # Project-specific: listen on every interface, as Gorouter does.
    bind_address: str = "0.0.0.0"
    # Project-specific: one worker per CPU; 0 means "the CPU count".
    workers: NonNegativeInt = 0
    # Project-specific: systemd's RuntimeDirectory=routerd; holds the table, the PID and lock files.
    run_dir: str = "/run/routerd"
    # Gorouter's key and default: empty, no PID file but run_dir's. A path: the supervisor's PID
    # is written there at start (atomically; a path it cannot write stops the start) and removed
    # at a clean stop while it still holds that PID.
    pid_file: str = ""

    status: StatusConfig = StatusConfig()
    nats: NatsConfig = NatsConfig()
    # Gorouter's default: the NATS link must prove itself alive this often (probes to our own
    # inbox, and nats-py's PINGs); a silent link suspends pruning and moves to the next server.
    nats_client_ping_interval: Duration = Duration(20)
    logging: LoggingConfig = LoggingConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    backends: BackendsConfig = BackendsConfig()
    tracing: TracingConfig = TracingConfig()
    access_log: AccessLogConfig = AccessLogConfig()
    route_table: RouteTableConfig = RouteTableConfig()

    # Gorouter's defaults: a route not heard from for 2 minutes is stale; look every 30 s.
    droplet_stale_threshold: Duration = Duration(120)
    prune_stale_droplets_interval: Duration = Duration(30)
    # Gorouter's default: give backends time to re-register before taking traffic.
    start_response_delay_interval: Duration = Duration(5)
    # Gorouter's production default: a NATS outage must not empty the routing table.
    suspend_pruning_if_nats_unavailable: bool = True
    balancing_algorithm: BalancingAlgorithm = "round-robin"
    # Gorouter's defaults: the router's availability zone is unset and no zone is preferred.
    # With locally-optimistic, a request's first attempt goes to an endpoint whose
    # `availability_zone` is `zone` when one can take it; retries may go anywhere.
    zone: str = ""
    balancing_algorithm_az_preference: AzPreference = "none"

    # Gorouter's defaults for a whole backend round trip and for connecting.
    endpoint_timeout: Duration = Duration(60)
    endpoint_dial_timeout: Duration = Duration(5)
    # Gorouter's default: 0, connecting for a WebSocket upgrade takes endpoint_dial_timeout
    # (see `upgrade_dial_timeout`).
    websocket_dial_timeout: Duration = Duration(0)
    # Gorouter's keys for its backend transport (Go's http.Transport), with its production
    # (BOSH) values: its binary's true/100/2 close every backend connection after one request.
    # true: no backend connection is reused, and each request says `Connection: close`.
    disable_keep_alives: bool = False
    # Idle backend connections kept, over all endpoints, per worker (Go counts per process);
    # past it the longest idle one is closed. 0: no limit, as in Go; below 0: none kept.
    max_idle_conns: int = 100
    # Idle connections kept per endpoint, per worker (Go counts per process). 0 is Go's
    # default, 2; below 0: none kept. HTTP/2 backends multiplex on their connections: neither
    # cap applies to them, as in Go, but disable_keep_alives does.
    max_idle_conns_per_host: int = 100
    # Gorouter's default TCP keepalive probe interval to backends.
    endpoint_keep_alive_probe_interval: Duration = Duration(1)
    # Gorouter's default idle timeout for client connections; 0 means never, as in Gorouter.
    frontend_idle_timeout: Duration = Duration(900)
    # Gorouter's name; a whole request head (request line and header lines) must arrive within
    # this long of its first byte. 0 means never, as in Gorouter (Go's zero), and is Gorouter's
    # default; but that leaves slowloris clients holding connections for the whole idle
    # timeout, so routerd's default is 30 s, ample for any real client.
    read_header_timeout: Duration = Duration(30)
    # Project-specific: a request body that stops arriving for this long is abandoned (nginx's
    # client_body_timeout idea: measured between reads, so large slow uploads still finish).
    request_body_timeout: Duration = Duration(60)
    # Gorouter's key and default: request line plus header lines, counted as Gorouter counts
    # them; larger heads are answered 431. As in Gorouter, 0 means its 1 MiB cap (its
    # http.Server's limit), and a larger value is lowered to the cap.
    max_request_header_bytes: NonNegativeInt = MAX_REQUEST_HEADER_BYTES
    # Gorouter's key: more header lines than this are answered 431; 0 means no count limit
    # (Gorouter's default; the byte limit still bounds the head). routerd's default is 512:
    # each line costs a parser callback and a dict entry, and no real client sends that many.
    max_request_headers: NonNegativeInt = 512
    # Gorouter's keys and defaults for a backend's response head (status line, header lines,
    # and any 1xx heads before it): larger is a 502, as any other backend failure. 0 or less
    # means Go's transport limit, 10 MiB, as in Gorouter.
    max_response_header_bytes: int = MAX_RESPONSE_HEADER_BYTES
    # More header lines than this in a backend's response is a 502; 0 or less: no limit.
    max_response_headers: int = 0
    # Gorouter's default: a request with `Expect: 100-continue` goes to the backend with
    # `Connection: close`, and that backend connection is not reused; true keeps it.
    keep_alive_100_continue_requests: bool = False
    # Gorouter's default: responses pass with their own headers (see HttpRewriteConfig).
    http_rewrite: HttpRewriteConfig = HttpRewriteConfig()
    # Gorouter's default: the router's own error answers are plain text. A path: they are
    # rendered from this Go-template HTML file ({{.Status}}, {{.StatusText}}, {{.Message}},
    # {{.Header.Get "Name"}}); a file that cannot be read or parsed stops routerd at start.
    html_error_template_file: str = ""
    # Gorouter's production default: an empty pool is "temporarily unavailable", not "unknown".
    empty_pool_response_code_503: bool = True

    # Gorouter's default: no grace for emptied pools; they are deleted at once.
    empty_pool_timeout: Duration = Duration(0)
    # Gorouter's default: re-announce router.start so new route emitters learn about us.
    publish_start_message_interval: Duration = Duration(30)

    # Gorouter's default: a request with exactly this User-Agent, on the HTTP or TLS port and
    # whatever its Host, is a load balancer's health check, answered by the router itself
    # (200 "ok", 503 while starting or draining). Empty: no such check.
    healthcheck_user_agent: str = "HTTP-Monitor/1.1"
    # Gorouter's production default (its BOSH job's post-start waits this long): once serving,
    # routerd waits this long before telling systemd it has started (READY=1), so a rolling
    # restart moves on only after the load balancer has seen this router healthy.
    load_balancer_healthy_threshold: Duration = Duration(20)

    # Gorouter's production defaults: let the load balancer notice /health before closing.
    drain_wait: Duration = Duration(20)
    # Gorouter's production default: in-flight requests get up to 15 minutes to finish.
    # 0 means endpoint_timeout, as in Gorouter.
    drain_timeout: Duration = Duration(900)

    # Project-specific: SIGTERM/SIGINT let in-flight requests finish for at most this long.
    shutdown_timeout: Duration = Duration(10)
    # Project-specific: a worker silent on its control channel this long is killed and replaced.
    worker_liveness_timeout: Duration = Duration(5)

    route_services_secret: str = ""
    route_services_secret_decrypt_only: str = ""
    # Gorouter's default: route service signatures are valid for 60 s.
    route_services_timeout: Duration = Duration(60)
    # Gorouter's production default: tell route services the app was asked for over https.
    route_services_recommend_https: bool = True
    # Gorouter's production default: a route service that is itself a route in the table is
    # reached through the router's own routing, not over the network (router/hairpin.py).
    route_services_hairpinning: bool = True
    # Gorouter's default: empty, every route service in the table is hairpinned; otherwise
    # only those whose route's host is listed (`host.domain` or `*.domain`).
    route_services_hairpinning_allowlist: tuple[str, ...] = ()
    route_services: RouteServicesConfig = RouteServicesConfig()

    # TLS termination is off unless asked for, as in Gorouter; 443 is Gorouter's ssl_port.
    enable_ssl: bool = False
    # Gorouter's default: the plain-HTTP listener on `port` serves; true leaves only ssl_port
    # (and needs enable_ssl).
    disable_http: bool = False
    ssl_port: Port = 443
    # Chosen by SNI; the first one when the client names no host or an unknown one.
    tls_pem: tuple[TlsPem, ...] = ()
    # Gorouter's defaults: TLS 1.2 only.
    min_tls_version: TlsVersion = "TLSv1.2"
    max_tls_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    # Gorouter requires a list; this is its production list plus the ECDSA twins, so ECDSA
    # certificates work too. OpenSSL or RFC names, colon-separated (TLS 1.3 suites are fixed).
    cipher_suites: str = (
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
    )
    # Gorouter's production default: verify a client certificate when one is offered.
    client_cert_validation: ClientCertValidation = "request"
    # PEM text of the CAs that sign client certificates, trusted besides the system store
    # unless only_trust_client_ca_certs.
    client_ca_certs: str = ""
    only_trust_client_ca_certs: bool = False
    # Gorouter's default.
    tls_handshake_timeout: Duration = Duration(10)
    # Gorouter's default: off. On, the rules below decide which client certificates (verified
    # by client_cert_validation request/require) the TLS listener serves; with "none" no
    # certificate is asked for and the rules have nothing to check.
    enable_verify_client_certificate_metadata: bool = False
    verify_client_certificate_metadata: tuple[ClientCertMetadataRule, ...] = ()
    # Gorouter's default (since routing-release 0.270): the TLS listener offers HTTP/2 by ALPN
    # (`h2`) besides HTTP/1.1; false offers HTTP/1.1 only. The plain port is HTTP/1.1 only.
    enable_http2: bool = True
    # Gorouter's default: X-Forwarded-Client-Cert passes through untouched.
    forwarded_client_cert: ForwardedClientCert = "always_forward"
    # PROXY protocol (v1 and v2) in front of HTTP and TLS; off as in Gorouter. As in Gorouter
    # the header is optional: a connection without one is served with its own address.
    enable_proxy: bool = False
    # Project-specific (Gorouter has no such key): true closes, without an answer, every
    # connection that does not open with a PROXY header, so that no client can reach the
    # router around the load balancer and be logged under its own address.
    proxy_protocol_required: bool = False
    # Project-specific: a load balancer sends the PROXY header at once. A header begun and not
    # finished within this long closes the connection; a connection silent this long is served
    # as it came (or closed, when the header is required).
    proxy_protocol_timeout: Duration = Duration(5)
    # Gorouter's default: a client's X-Forwarded-Proto is kept (set only when absent).
    sanitize_forwarded_proto: bool = False

    # PEM strings, as in Gorouter, trusted for TLS backends in addition to the system store.
    ca_certs: tuple[str, ...] = ()
    skip_ssl_validation: bool = False
    force_forwarded_proto_https: bool = False

    # Gorouter's isolation-segment sharding; "all" serves every route.
    routing_table_sharding_mode: ShardingMode = "all"
    isolation_segments: tuple[str, ...] = ()
    # Project-specific: routes served without NATS, in router.register's format (uris, host,
    # port, tls_port, route_service_url, ...). They are never pruned.
    static_routes: tuple[RegistryMessage, ...] = ()
    # Gorouter's default sticky-session trigger cookie.
    sticky_session_cookie_names: tuple[str, ...] = ("JSESSIONID",)
    # Gorouter's default: __VCAP_ID__ is Secure only when the app's session cookie is.
    secure_cookies: bool = False
    # Gorouter's default: a `WWW-Authenticate: Negotiate` answer (SPNEGO, Kerberos) does not pin
    # the client; true pins it for 60 s, and a request with `Authorization: Negotiate` and a
    # __VCAP_ID__ then goes to that instance only (502 when it is gone).
    sticky_sessions_for_auth_negotiate: bool = False
    # Gorouter's default: no debug headers. A request whose X-Vcap-Trace equals this (non-empty)
    # value gets X-Vcap-Router, X-Vcap-Backend and X-Cf-RouteEndpoint on its response.
    trace_key: str = ""
    # Gorouter's default: none. Request headers a client cannot have removed by naming them in
    # its Connection header; the router's own (X-Forwarded-*, X-Request-Start, B3, ...) never
    # can be, listed or not.
    hop_by_hop_headers_to_filter: tuple[str, ...] = ()
    # Gorouter's default: no request headers appended to the access log line.
    extra_headers_to_log: tuple[str, ...] = ()

    @property
    def client_cert_rules(self) -> tuple[client_cert_metadata.Rule, ...]:
        """The metadata rules in force (Gorouter's: enabled, and a list given)."""
        if not self.enable_verify_client_certificate_metadata:
            return ()
        return tuple(rule.rule for rule in self.verify_client_certificate_metadata)

    @property
    def worker_count(self) -> int:
        """`workers`, with 0 resolved to the CPU count."""
        return self.workers or os.cpu_count() or 1

    @property
    def idle_conns_per_endpoint(self) -> int:
        """Idle connections a worker keeps per endpoint (max_idle_conns_per_host resolved)."""
        if self.disable_keep_alives:
            return 0
        per_host = self.max_idle_conns_per_host
        return GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST if per_host == 0 else max(0, per_host)

    @property
    def idle_conns_total(self) -> int | None:
        """Idle connections a worker keeps over all endpoints; None: no limit."""
        if self.disable_keep_alives:
            return 0
        return None if self.max_idle_conns == 0 else max(0, self.max_idle_conns)

    @property
    def upgrade_dial_timeout(self) -> float:
        """`websocket_dial_timeout`, with 0 (or less) resolved to endpoint_dial_timeout."""
        timeout = float(self.websocket_dial_timeout)
        return timeout if timeout > 0 else float(self.endpoint_dial_timeout)

    @property
    def stale_threshold_seconds(self) -> int:
        return int(self.droplet_stale_threshold)

"""Gorouter's `logging` options that change the access log line, decided once per config.

What each does to the line, as Gorouter v0.317 writes it (compared line for line):

- `redact_query_params`: on a GET whose target has a query, "all" drops the query (with its
  "?"), "hash" writes `?hash=<sha1 hex of the query>`. Other methods are logged as sent.
- `disable_log_source_ip`: the client's address is `"-"`; `disable_log_forwarded_for`:
  `x_forwarded_for:"-"`.
- `enable_attempts_details`: before `x_cf_routererror`, `failed_attempts:N
  failed_attempts_time:S dns_time:S dial_time:S tls_time:S backend_time:S` (seconds, 6
  decimals; `"-"` for a time that does not apply). backend_time is the answering attempt's,
  from its request head to the end of its response; failed_attempts_time runs from the start
  of the request to the start of that attempt, or to the end when no attempt answered. The
  connection's DNS, dial and TLS times are not measured apart, so they are `"-"` (Gorouter
  writes `"-"` for them too when no attempt answered).
- `extra_access_log_fields: [local_address]` (Gorouter after v0.317): `local_address:"ip:port"`,
  the router's end of the backend connection, before `x_cf_routererror`.
- `extra_headers_to_log`: after `x_cf_routererror`, ` x_foo_bar:"value"` per configured header
  (the name lower-cased, "-" as "_"; the request's first value, `"-"` when absent). With
  `tracing.enable_zipkin` X-B3-TraceId, X-B3-SpanId, X-B3-ParentSpanId and b3 follow, with
  `enable_w3c` traceparent and tracestate (each name once), valued as the backend got them.

With none set, `line_format` gives the plain functions of router.accesslog, which pay nothing
for any of this.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, NamedTuple

from router.accesslog import (
    PLAIN,
    AccessLog,
    LineFormat,
    LineValues,
    Timestamps,
    access_line,
    go_escape,
    line_values,
    seconds,
)
from router.accesslog_syslog import SyslogStream
from router.headers import RequestFacts
from router.tracing import logged_headers, tracing_for

if TYPE_CHECKING:
    from router.exchange import Exchange
    from runtime.config_model import Config

# Extra values taken when the exchange settles: the extra headers' values (raw bytes, b"" when
# absent) and the backend connection's local address ("" when none).
Taken = tuple[LineValues, tuple[bytes, ...], str]
_ROUTER_ERROR = ' x_cf_routererror:"'
_NOT_MEASURED = 'dns_time:"-" dial_time:"-" tls_time:"-"'


class LineOptions(NamedTuple):
    """Gorouter's access log options; the defaults are Gorouter's."""

    redact_query_params: str = "none"
    hide_source_ip: bool = False
    hide_forwarded_for: bool = False
    attempts_details: bool = False
    local_address: bool = False
    extra_headers: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> LineOptions:
        logging = config.logging
        return cls(
            redact_query_params=logging.redact_query_params,
            hide_source_ip=logging.disable_log_source_ip,
            hide_forwarded_for=logging.disable_log_forwarded_for,
            attempts_details=logging.enable_attempts_details,
            local_address="local_address" in logging.extra_access_log_fields,
            extra_headers=logged_headers(
                config.extra_headers_to_log,
                tracing_for(
                    config.tracing.enable_zipkin,
                    config.tracing.enable_w3c,
                    config.tracing.w3c_tenant_id,
                ),
            ),
        )

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_OPTIONS


DEFAULT_OPTIONS = LineOptions()


def line_format(options: LineOptions) -> LineFormat:
    """How lines are taken and formatted under `options`."""
    if options.is_default:
        return PLAIN
    lines = OptionedLines(options)
    return LineFormat(lines.take, lines.format)


def open_access_log(config: Config, stats: memoryview | None = None) -> AccessLog:
    """A worker's access log as `config` asks: to `access_log.file`, and to syslog when
    `access_log.enable_streaming`, lines shaped by the `logging` options."""
    logging = config.logging
    syslog = None
    if config.access_log.enable_streaming:
        syslog = SyslogStream(
            logging.syslog_network,
            logging.syslog_addr,
            logging.syslog,
            logging.syslog_truncate,
            float(logging.error_sample_interval),
            stats,
        )
    return AccessLog(
        config.access_log.file,
        float(logging.error_sample_interval),
        stats,
        line_format(LineOptions.from_config(config)),
        syslog,
    )


def redacted(method: str, target: str, mode: str) -> str:
    """The target as Gorouter logs it under `redact_query_params` `mode`."""
    if method != "GET" or mode == "none":
        return target
    path, _, query = target.partition("?")
    if not query:
        return target
    if mode == "all":
        return path
    return f"{path}?hash={hashlib.sha1(query.encode('utf-8', 'surrogateescape')).hexdigest()}"


def local_address(ex: Exchange) -> str:
    """The router's end of the exchange's backend connection, as Go writes a net.Addr."""
    conn = ex.conn
    transport = conn.transport if conn is not None else None
    if transport is None:
        return ""
    sockname = transport.get_extra_info("sockname")
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return ""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OptionedLines:
    """Takes and formats lines under options other than Gorouter's defaults."""

    __slots__ = ("_header_keys", "_labels", "options")

    def __init__(self, options: LineOptions) -> None:
        self.options = options
        self._header_keys = tuple(name.lower().encode("latin-1") for name in options.extra_headers)
        # X-Something-Cool: x_something_cool, as Gorouter names the field.
        self._labels = tuple(name.lower().replace("-", "_") for name in options.extra_headers)

    def __repr__(self) -> str:
        return f"OptionedLines({self.options!r})"

    def take(self, ex: Exchange, received: int, sent: int, elapsed: float) -> Taken:
        headers: tuple[bytes, ...] = ()
        if self._header_keys:
            found: dict[bytes, bytes] = {}
            wanted = self._header_keys
            for name, value in ex.request.raw_headers:
                key = name.lower()
                if key in wanted and key not in found:
                    found[key] = value
            traced = ex.facts.traced if ex.facts is not None else None
            if traced:
                found.update((key, value) for key, value in traced.items() if key in wanted)
            headers = tuple(found.get(key, b"") for key in wanted)
        local = local_address(ex) if self.options.local_address else ""
        return line_values(ex, received, sent, elapsed), headers, local

    def format(self, taken: Taken, timestamps: Timestamps) -> str:
        values, headers, local = taken
        options = self.options
        (host, received_at, method, target, version, client_ip, client_port) = values[:7]
        facts = values[10]
        if options.redact_query_params != "none":
            target = redacted(method, target, options.redact_query_params)
        if options.hide_source_ip:
            client_port = 0  # written as "-"
        if options.hide_forwarded_for and facts is not None:
            shown = RequestFacts()
            shown.referer = facts.referer
            shown.user_agent = facts.user_agent
            shown.forwarded_proto = facts.forwarded_proto
            facts = shown
        values = (
            *(host, received_at, method, target, version, client_ip, client_port),
            *values[7:10],
            facts,
            *values[11:],
        )
        line = access_line(values, timestamps)
        middle = ""
        if options.attempts_details:
            middle = self._attempts(values)
        if options.local_address:
            middle += f' local_address:"{go_escape(local)}"'
        if middle:
            cut = line.rindex(_ROUTER_ERROR)  # the last field's value cannot hold it unescaped
            line = f"{line[:cut]}{middle}{line[cut:]}"
        if headers:
            tail = " ".join(
                f'{label}:"{go_escape(value.decode("latin-1"))}"'
                for label, value in zip(self._labels, headers, strict=True)
            )
            line = f"{line[:-1]} {tail}\n"
        return line

    @staticmethod
    def _attempts(values: LineValues) -> str:
        backend, response_time, gorouter_time, failed = (
            values[11],
            values[13],
            values[14],
            values[16],
        )
        answered = bool(backend) and response_time >= 0
        backend_time = response_time - gorouter_time if answered else -1.0
        failed_time = -1.0
        if failed:
            failed_time = gorouter_time if answered else response_time
        return (
            f" failed_attempts:{failed} failed_attempts_time:{seconds(failed_time)} "
            f"{_NOT_MEASURED} backend_time:{seconds(backend_time)}"
        )

"""CPU microseconds per access log line, as a worker makes it: the values taken when the
exchange settles, then a batch of 256 formatted, joined and encoded. Gorouter's default options
and a line with every option on. `python -m benchmarks.accesslog_line` (median of 7 runs).
"""

from __future__ import annotations

import gc
import statistics
import time

from registry.records import EndpointRecord
from router.accesslog import FLUSH_LINES, Timestamps
from router.accesslog_options import LineOptions, line_format
from router.exchange import Exchange, ProxyRequest
from router.headers import RequestFacts

LINES = 102_400
EVERY_OPTION = LineOptions(
    redact_query_params="hash",
    hide_source_ip=True,
    hide_forwarded_for=True,
    attempts_details=True,
    extra_headers=("X-Trace-Tag",),
)


def proxied_exchange() -> Exchange:
    request = ProxyRequest(
        method="GET",
        target="/items/7?q=1",
        host_header="app.example.com",
        version="HTTP/1.1",
        raw_headers=[(b"User-Agent", b"curl/8.0"), (b"X-Trace-Tag", b"blue")],
        client_ip="127.0.0.1",
        client_port=50000,
        local_ip="127.0.0.1",
        received_at=time.time(),
    )
    ex = Exchange(request, t0=100.0)
    ex.facts = RequestFacts()
    ex.facts.user_agent = b"curl/8.0"
    ex.facts.forwarded_for = b"10.1.2.3, 127.0.0.1"
    ex.facts.forwarded_proto = b"http"
    ex.request_id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    ex.endpoint = EndpointRecord(
        slot=3, host="10.0.0.5", port=8080, app_id="app", instance_id="i", instance_index="2"
    )
    ex.backend = "10.0.0.5:8080"
    ex.backend_started = 100.0004
    ex.status = 200
    return ex


def microseconds_per_line(options: LineOptions) -> float:
    take, format_line = line_format(options)
    ex = proxied_exchange()
    timestamps = Timestamps()
    started = time.process_time()
    for _ in range(LINES // FLUSH_LINES):
        held = [take(ex, 5, 42, 0.003121) for _ in range(FLUSH_LINES)]
        "".join([format_line(values, timestamps) for values in held]).encode("utf-8", "replace")
    return (time.process_time() - started) / LINES * 1e6


def main() -> None:
    gc.disable()  # the worker's collector is tuned to stay out of the way (runtime/gc_tuning)
    for name, options in (("default", LineOptions()), ("every option", EVERY_OPTION)):
        runs = [microseconds_per_line(options) for _ in range(7)]
        print(f"{name}: {statistics.median(runs):.2f} µs CPU per line")


if __name__ == "__main__":
    main()

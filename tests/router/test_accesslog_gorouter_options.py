"""Gorouter's access log options in a real routerd's lines: query redaction, the client's address
and X-Forwarded-For suppressed, extra request headers, attempt details, the backend connection's
local address, and the same lines streamed to syslog over a UNIX datagram socket."""

from __future__ import annotations

import hashlib
import re
import signal
import socket
from pathlib import Path

import pytest

from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

UUID = r"[0-9a-f-]{36}"
SECONDS = r"\d+\.\d{6}"


def lines_with(path: Path, marker: str) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if marker in line]


def test_redacted_query_and_hidden_addresses_and_extra_headers(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory("--mode", "record", name="logged")
    access_log = tmp_path / "access.log"
    syslog_path = str(tmp_path / "syslog.sock")
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(syslog_path)
    syslog.settimeout(10)
    try:
        router = routerd_factory(
            {
                "workers": 1,
                "access_log": {"file": str(access_log), "enable_streaming": True},
                "logging": {
                    "redact_query_params": "hash",
                    "disable_log_source_ip": True,
                    "disable_log_forwarded_for": True,
                    "enable_attempts_details": True,
                    "extra_access_log_fields": ["local_address"],
                    "syslog": "edge-router",
                    "syslog_network": "unixgram",
                    "syslog_addr": syslog_path,
                },
                "extra_headers_to_log": ["X-Trace-Tag", "X-Absent"],
            }
        )
        register(
            nats_client,
            backend.port,
            ["opts.example.com"],
            app="app-7",
            private_instance_id="inst-7",
            private_instance_index="0",
        )
        wait_routed(router, "opts.example.com")
        response = router.request(
            "GET",
            "/search?user=alice&token=s3cret",
            host="opts.example.com",
            headers={
                "User-Agent": "agent/2",
                "X-Forwarded-For": "203.0.113.9",
                "X-Trace-Tag": 'blue "7"',
            },
        )
        assert response.status == 200
        request_id = response.header("X-Vcap-Request-Id")
        line = wait_until(
            lambda: next(iter(lines_with(access_log, request_id or "?")), None),
            what="the access log line",
        )
        digest = hashlib.sha1(b"user=alice&token=s3cret").hexdigest()
        expected = (
            r"opts\.example\.com - \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\] "
            + re.escape(f'"GET /search?hash={digest} HTTP/1.1" 200 0 2 "-" "agent/2" "-" ')
            + re.escape(f'"{backend.address}" x_forwarded_for:"-" x_forwarded_proto:"http" ')
            + re.escape(f'vcap_request_id:"{request_id}" ')
            + f"response_time:{SECONDS} gorouter_time:{SECONDS} "
            + re.escape('app_id:"app-7" app_index:"0" instance_id:"inst-7" ')
            + 'failed_attempts:0 failed_attempts_time:"-" dns_time:"-" dial_time:"-" '
            + f'tls_time:"-" backend_time:{SECONDS} local_address:"127\\.0\\.0\\.1:\\d+" '
            + re.escape('x_cf_routererror:"-" x_trace_tag:"blue \\"7\\"" x_absent:"-"')
        )
        assert re.fullmatch(expected, line), line
        # Nothing of the query, the client's address or X-Forwarded-For is in the line.
        assert "alice" not in line and "s3cret" not in line
        assert "203.0.113.9" not in line

        # The same line, one datagram, in Go's local syslog format with logging.syslog's tag.
        def streamed() -> bytes | None:
            message = syslog.recv(65536)
            return message if request_id and request_id.encode() in message else None

        message = wait_until(streamed, what="the syslog message")
        assert re.match(rb"<6>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d edge-router\[\d+\]: ", message)
        assert message.endswith(line.encode() + b"\n")
        # A POST's query is logged as sent, as Gorouter does.
        router.request("POST", "/form?keep=1", host="opts.example.com", body=b"x")
        posted = wait_until(
            lambda: next(iter(lines_with(access_log, '"POST /form?keep=1 HTTP/1.1"')), None),
            what="the POST line",
        )
        assert ' 200 1 2 "-" "-" "-" ' in posted
    finally:
        syslog.close()


def test_gorouters_default_line_has_no_option_fields(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory("--mode", "record", name="plain")
    access_log = tmp_path / "access.log"
    router = routerd_factory({"workers": 1, "access_log": {"file": str(access_log)}})
    register(nats_client, backend.port, ["plain.example.com"], app="app-8")
    wait_routed(router, "plain.example.com")
    router.request(
        "GET", "/q?user=bob", host="plain.example.com", headers={"X-Forwarded-For": "198.51.100.4"}
    )
    line = wait_until(
        lambda: next(iter(lines_with(access_log, "/q?user=bob")), None), what="the line"
    )
    assert re.search(r' "GET /q\?user=bob HTTP/1\.1" 200 0 2 "-" "[^"]*" "127\.0\.0\.1:\d+" ', line)
    assert 'x_forwarded_for:"198.51.100.4, 127.0.0.1" ' in line
    assert re.search(r'instance_id:"[^"]*" x_cf_routererror:"-"$', line), line


def test_sighup_applies_new_options_to_the_next_lines(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory("--mode", "record", name="reloaded")
    access_log = tmp_path / "access.log"
    router = routerd_factory({"workers": 1, "access_log": {"file": str(access_log)}})
    register(nats_client, backend.port, ["hup.example.com"])
    wait_routed(router, "hup.example.com")
    router.get("/before?pin=1234", host="hup.example.com")
    wait_until(lambda: lines_with(access_log, "/before?pin=1234"), what="the line before")
    router.config["logging"] = {"redact_query_params": "all", "disable_log_source_ip": True}
    router.write_config()
    router.signal(signal.SIGHUP)
    wait_until(lambda: router.events_named("worker-config-reloaded"), what="the reload")
    router.get("/after?pin=1234", host="hup.example.com")
    line = wait_until(
        lambda: next(iter(lines_with(access_log, '"GET /after HTTP/1.1"')), None),
        what="the redacted line",
    )
    assert "pin=1234" not in line
    assert re.search(r' 200 0 2 "-" "[^"]*" "-" "127\.0\.0\.1:\d+" ', line), line

"""Gorouter's access log line, and 499 when the client leaves first."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LINE = re.compile(
    r"^(?P<host>\S+) - \[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)\] "
    r'"(?P<request>[^"]*)" (?P<status>\d+|"-") (?P<received>\d+) (?P<sent>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" "(?P<remote>[^"]*)" "(?P<backend>[^"]*)" '
    r'x_forwarded_for:"(?P<xff>[^"]*)" x_forwarded_proto:"(?P<xfp>[^"]*)" '
    r'vcap_request_id:"(?P<id>[^"]*)" response_time:(?P<rt>[\d.]+|"-") '
    r'gorouter_time:(?P<gt>[\d.]+|"-") app_id:"(?P<app>[^"]*)" app_index:"(?P<index>[^"]*)" '
    r'instance_id:"(?P<instance>[^"]*)" x_cf_routererror:"(?P<error>[^"]*)"$'
)


def log_lines(path: Path) -> list[re.Match[str]]:
    if not path.exists():
        return []
    matches = []
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        assert match, f"access log line does not match Gorouter's format: {line}"
        matches.append(match)
    return matches


def test_access_log_line_has_gorouter_fields(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory()
    access_log = tmp_path / "access.log"
    router = routerd_factory({"access_log": {"file": str(access_log)}})
    register(
        nats_client,
        backend.port,
        ["logged.example.com"],
        app="app-guid-1",
        private_instance_id="inst-1",
        private_instance_index="2",
    )
    wait_routed(router, "logged.example.com")
    response = router.request(
        "POST",
        "/form?a=1",
        host="logged.example.com",
        body=b"hello",
        headers={
            "Referer": "http://ref.example/",
            "User-Agent": "agent/1.0",
            "X-Forwarded-For": "10.1.2.3",
        },
    )
    request_id = response.header("X-Vcap-Request-Id")
    router.get("/", host="unknown.example.com")

    def lines():
        found = [m for m in log_lines(access_log) if m["request"].startswith("POST /form")]
        unknown = [m for m in log_lines(access_log) if m["host"] == "unknown.example.com"]
        return (found, unknown) if found and unknown else None

    found, unknown = wait_until(lines, what="access log lines")
    line = found[-1]
    assert line["host"] == "logged.example.com"
    assert line["request"] == "POST /form?a=1 HTTP/1.1"
    assert line["status"] == "200"
    assert line["received"] == "5"
    assert int(line["sent"]) == len(response.body)
    assert line["referer"] == "http://ref.example/"
    assert line["agent"] == "agent/1.0"
    assert line["remote"].startswith("127.0.0.1:")
    assert line["backend"] == backend.address
    assert line["xff"] == "10.1.2.3, 127.0.0.1"
    assert line["xfp"] == "http"
    assert line["id"] == request_id
    assert float(line["rt"]) >= float(line["gt"]) >= 0
    assert (line["app"], line["index"], line["instance"]) == ("app-guid-1", "2", "inst-1")
    assert line["error"] == "-"
    miss = unknown[-1]
    assert miss["status"] == "404"
    assert miss["error"] == "unknown_route"
    assert miss["backend"] == "-"


def test_client_gone_is_499_and_frees_the_endpoint(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory()
    access_log = tmp_path / "access.log"
    router = routerd_factory(
        {"workers": 1, "access_log": {"file": str(access_log)}, "backends": {"max_conns": 1}}
    )
    register(nats_client, backend.port, ["gone.example.com"])
    wait_routed(router, "gone.example.com")
    with socket.create_connection(("127.0.0.1", router.port)) as sock:
        sock.sendall(b"GET /slow?seconds=30 HTTP/1.1\r\nHost: gone.example.com\r\n\r\n")
        wait_until(
            lambda: any(r["path"].startswith("/slow") for r in backend.requests_seen()),
            what="the backend to receive the slow request",
        )
    line = wait_until(
        lambda: next(
            (m for m in log_lines(access_log) if m["request"].startswith("GET /slow")), None
        ),
        what="the 499 access log line",
    )
    assert line["status"] == "499"
    assert line["error"] == "endpoint_failure (context canceled)"
    # The upstream request was cancelled: with max_conns 1 the endpoint is free again at once.
    response = router.get("/after", host="gone.example.com")
    assert response.status == 200
    metrics = router.status_request("GET", "/metrics").text
    assert "routerd_client_closed_total 1" in metrics

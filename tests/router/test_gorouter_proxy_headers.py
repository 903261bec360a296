"""Gorouter's request-header behaviours an operator notices, through a real routerd: process
instance routing, W3C and B3 trace headers, trace_key debug headers, hop_by_hop_headers_to_filter,
and the sticky cookie's Secure / Partitioned / Negotiate rules. Each expectation is what Gorouter
v0.317 answers to the same request (X-Cf-Process-Instance: current Gorouter's, newer than it)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.nats import NatsClient
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

APP = "5a1d7a6a-7d5c-4c5e-9b8e-6f3f1f0c2d4e"
PROCESS = "1a1b1c1d-2e2f-4333-8444-5a5b5c5d5e5f"
CANARY = "9a9b9c9d-2e2f-4333-8444-5a5b5c5d5e5f"
HOST = "traced.example.com"
INSTANCE_OF = {"web0": "web-0", "web1": "web-1", "canary": "canary-0"}


@pytest.fixture(scope="module")
def access_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("access") / "access.log"


@pytest.fixture(scope="module")
def router(module_nats, module_backends, access_log):
    backends = [module_backends(name=f"web{index}") for index in range(2)]
    canary = module_backends(name="canary")
    router = new_routerd(
        module_nats.port,
        {
            "tracing": {"enable_zipkin": True, "enable_w3c": True, "w3c_tenant_id": "t1"},
            "trace_key": "sekret",
            "hop_by_hop_headers_to_filter": ["X-Keep-Me"],
            "secure_cookies": True,
            "sticky_sessions_for_auth_negotiate": True,
            "access_log": {"file": str(access_log)},
            "extra_headers_to_log": ["X-Foo", "traceparent"],
        },
    )
    router.start()
    with NatsClient(module_nats.port) as nats:
        for index, backend in enumerate(backends):
            register(
                nats,
                backend.port,
                [HOST],
                app=APP,
                private_instance_id=f"web-{index}",
                private_instance_index=str(index),
                tags={"process_id": PROCESS},
            )
        register(
            nats,
            canary.port,
            [HOST],
            app=APP,
            private_instance_id="canary-0",
            private_instance_index="0",
            tags={"process_id": CANARY},
        )
        wait_routed(router, HOST)
    yield router
    router.stop()


def echoed(router: Routerd, headers: dict[str, str] | None = None) -> dict[str, list[str]]:
    response = router.get("/echo", host=HOST, headers=headers)
    assert response.status == 200, response.text
    got: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        got.setdefault(name.lower(), []).append(value)
    return got


def backend_of(router: Routerd, headers: dict[str, str]) -> str:
    response = router.get("/", host=HOST, headers=headers)
    assert response.status == 200, response.text
    return response.header("X-Backend") or ""


def test_process_instance_header_routes_to_that_instance(router):
    for _ in range(4):
        assert backend_of(router, {"X-CF-Process-Instance": f"{PROCESS}:1"}) == "web1"
        assert backend_of(router, {"X-CF-Process-Instance": f"{CANARY}:0"}) == "canary"
    # The process alone: any of its instances, never the other process's.
    # (Each request starts the two instances' round-robin at random, as Gorouter does.)
    seen = {backend_of(router, {"X-CF-Process-Instance": PROCESS}) for _ in range(40)}
    assert seen == {"web0", "web1"}


def test_process_instance_header_reaches_the_backend(router):
    got = echoed(router, {"X-CF-Process-Instance": f"{CANARY}:0"})
    assert got["x-cf-process-instance"] == [f"{CANARY}:0"]


@pytest.mark.parametrize(
    "value", ["not-a-guid", f"{PROCESS}:", f"{PROCESS}:x", f"{PROCESS.upper()}:1", ":1"]
)
def test_malformed_process_instance_header_is_400(router, value):
    response = router.get("/", host=HOST, headers={"X-CF-Process-Instance": value})
    assert response.status == 400
    assert response.text == "400 Bad Request: Invalid X-CF-Process-Instance Header\n"
    assert response.header("X-Cf-RouterError") == "invalid_cf_process_instance_header"


def test_unknown_process_instance_is_400_unknown_route(router):
    response = router.get("/", host=HOST, headers={"X-CF-Process-Instance": f"{CANARY}:3"})
    assert response.status == 400
    assert response.text == (
        f"400 Bad Request: Requested instance ('3') with process guid ('{CANARY}') does not "
        f"exist for route ('{HOST}')\n"
    )
    assert response.header("X-Cf-RouterError") == "unknown_route"


def test_app_instance_header_wins_over_process_instance(router):
    headers = {"X-CF-App-Instance": f"{APP}:1", "X-CF-Process-Instance": f"{CANARY}:0"}
    assert backend_of(router, headers) == "web1"


def test_w3c_traceparent_keeps_the_trace_with_a_new_parent(router):
    got = echoed(
        router,
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE,t1@gorouter=old, rojo=00f067aa0ba902b7",
        },
    )
    (traceparent,) = got["traceparent"]
    match = re.fullmatch(r"00-0af7651916cd43dd8448eb211c80319c-([0-9a-f]{16})-01", traceparent)
    assert match is not None and match[1] != "b7ad6b7169203331"
    assert got["tracestate"] == [f"t1@gorouter={match[1]},congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]


def test_w3c_traceparent_is_made_from_the_b3_trace_when_absent(router):
    got = echoed(router)
    (trace,) = got["x-b3-traceid"]
    (span,) = got["x-b3-spanid"]
    assert got["traceparent"] == [f"00-{trace}-{span}-01"]
    assert got["tracestate"] == [f"t1@gorouter={span}"]
    assert got["x-vcap-request-id"][0].replace("-", "") == trace


def test_single_b3_header_is_built_from_incoming_x_b3_headers(router):
    trace, span, parent = "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "05e3ac9a4f6e3b90"
    got = echoed(
        router,
        {
            "X-B3-TraceId": trace,
            "X-B3-SpanId": span,
            "X-B3-ParentSpanId": parent,
            "X-B3-Sampled": "1",
            "b3": "not-a-b3-context",
        },
    )
    assert got["b3"] == [f"{trace}-{span}-1-{parent}"]
    assert got["x-b3-traceid"] == [trace]
    assert got["x-vcap-request-id"] == ["80f198ee-5634-3ba8-64fe-8b2a57d3eff7"]
    assert got["traceparent"] == [f"00-{trace}-{span}-01"]


def test_malformed_x_b3_headers_pass_untouched_and_start_no_b3(router):
    sent = {"X-B3-TraceId": "463ac35c9f6413ad", "X-B3-SpanId": "a2fb4a1d", "X-B3-Sampled": "yes"}
    got = echoed(router, sent)
    assert "b3" not in got
    assert {name: got[name.lower()] for name in sent} == {k: [v] for k, v in sent.items()}
    # W3C starts a trace of its own, as in Gorouter.
    assert "463ac35c9f6413ad" not in got["traceparent"][0]


def test_trace_key_gets_debug_headers(router):
    response = router.get("/", host=HOST, headers={"X-Vcap-Trace": "sekret"})
    backend = response.header("X-Vcap-Backend")
    assert backend is not None and backend.startswith("127.0.0.1:")
    assert response.header("X-Cf-RouteEndpoint") == backend
    assert response.header("X-Vcap-Router") == "127.0.0.1"  # the bind address
    streamed = router.get("/bytes/10", host=HOST, headers={"X-Vcap-Trace": "sekret"})
    assert streamed.header("X-Vcap-Backend") is not None
    for headers in ({"X-Vcap-Trace": "wrong"}, {}):
        plain = router.get("/", host=HOST, headers=headers)
        assert plain.header("X-Vcap-Backend") is None
        assert plain.header("X-Vcap-Router") is None


def test_listed_headers_survive_the_clients_connection_header(router):
    got = echoed(
        router,
        {
            "Connection": "X-Keep-Me, X-Drop-Me, X-Forwarded-Proto",
            "X-Keep-Me": "kept",
            "X-Drop-Me": "dropped",
        },
    )
    assert got["x-keep-me"] == ["kept"]
    assert "x-drop-me" not in got
    assert got["x-forwarded-proto"] == ["http"]  # the router's own: never strippable


def vcap_cookie(response) -> str:
    cookies = [c for c in response.headers.get_all("Set-Cookie") or [] if "__VCAP_ID__=" in c]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_sticky_cookie_is_secure_and_copies_partitioned(router):
    session = "JSESSIONID=abc; Path=/; SameSite=None; Partitioned"
    response = router.get(f"/?echo-cookie={quote(session)}", host=HOST)
    instance = INSTANCE_OF[response.header("X-Backend") or ""]
    assert vcap_cookie(response) == (
        f"__VCAP_ID__={instance}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    )


def test_negotiate_answer_pins_the_client_for_a_minute(router):
    response = router.get(
        "/?echo-header=" + quote("WWW-Authenticate: Negotiate oRQwEqADCgEBoQsGCSqGSIb3EgECAg=="),
        host=HOST,
    )
    cookie = vcap_cookie(response)
    assert re.fullmatch(
        r"__VCAP_ID__=[\w-]+; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict", cookie
    )
    instance = cookie.split(";")[0].split("=", 1)[1]
    headers = {"Authorization": "Negotiate YIIC", "Cookie": f"__VCAP_ID__={instance}"}
    served = {backend_of(router, headers) for _ in range(6)}
    assert len(served) == 1


def test_negotiate_request_for_a_gone_instance_is_502(router):
    headers = {"Authorization": "Negotiate YIIC", "Cookie": "__VCAP_ID__=gone-7"}
    response = router.get("/", host=HOST, headers=headers)
    assert response.status == 502
    assert response.header("X-Cf-RouterError") == "endpoint_failure (No endpoints available)"
    # Without Negotiate the same cookie is only a preference.
    assert router.get("/", host=HOST, headers={"Cookie": "__VCAP_ID__=gone-7"}).status == 200


def test_access_log_gets_the_trace_headers_the_backend_got(router, access_log):
    response = router.get("/logged", host=HOST, headers={"X-Foo": "bar", "X-B3-TraceId": "1"})
    request_id = response.header("X-Vcap-Request-Id")
    trace = (request_id or "").replace("-", "")
    line = wait_until(
        lambda: next(
            (line for line in access_log.read_text().splitlines() if "/logged" in line), None
        ),
        what="the access log line",
    )
    # Gorouter's order: the configured headers, then Zipkin's, then W3C's, each once.
    tail = line.split(' x_cf_routererror:"-"', 1)[1]
    assert re.fullmatch(
        f' x_foo:"bar" traceparent:"00-{trace}-{trace[16:]}-01" x_b3_traceid:"{trace}"'
        f' x_b3_spanid:"{trace[16:]}" x_b3_parentspanid:"-" b3:"{trace}-{trace[16:]}"'
        f' tracestate:"t1@gorouter={trace[16:]}"',
        tail,
    ), tail

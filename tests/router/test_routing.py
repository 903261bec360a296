"""Which backend a request reaches: hosts, wildcards, context paths, instances, sticky sessions."""

from __future__ import annotations

import pytest

from tests.support.nats import NatsClient
from tests.support.rawhttp import body_of, raw_request, status_of
from tests.support.routerd import new_routerd
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    names = ["exact", "wild", "deepwild", "root", "api", "apiv2", "inst0", "inst1"]
    backends = {name: module_backends(name=name) for name in names}
    router = new_routerd(module_nats.port)
    router.start()
    with NatsClient(module_nats.port) as nats:
        register(nats, backends["exact"].port, ["a.b.example.com"])
        register(nats, backends["wild"].port, ["*.example.com"])
        register(nats, backends["deepwild"].port, ["*.b.example.com"])
        register(nats, backends["root"].port, ["ctx.example.com"])
        register(nats, backends["api"].port, ["ctx.example.com/api"])
        register(nats, backends["apiv2"].port, ["ctx.example.com/api/v2/"])
        for index in (0, 1):
            register(
                nats,
                backends[f"inst{index}"].port,
                ["inst.example.com"],
                app=APP,
                private_instance_id=f"instance-{index}",
                private_instance_index=str(index),
            )
        for host in ("a.b.example.com", "x.example.com", "ctx.example.com"):
            wait_routed(router, host)
        wait_routed(router, "ctx.example.com", "/api/v2")
    yield router, backends
    router.stop()


def backend_of(router, host, path="/", headers=None) -> str:
    response = router.get(path, host=host, headers=headers)
    assert response.status == 200, (response.status, response.text)
    return response.header("X-Backend")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.b.example.com", "exact"),
        ("A.B.Example.COM", "exact"),
        ("a.b.example.com:8080", "exact"),
        ("a.b.example.com.", "exact"),
        ("z.b.example.com", "deepwild"),
        ("q.z.b.example.com", "deepwild"),
        ("x.example.com", "wild"),
        ("y.x.example.com", "wild"),
    ],
)
def test_exact_beats_wildcard_and_deeper_wildcard_wins(setup, host, expected):
    router, _ = setup
    assert backend_of(router, host) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "root"),
        ("/apiary", "root"),  # whole segments only
        ("/api", "api"),
        ("/API/things", "api"),
        ("/api/v1/x?q=/api/v2", "api"),
        ("/api/v2", "apiv2"),
        ("/api/v2/deeper/still", "apiv2"),
    ],
)
def test_longest_context_path_wins(setup, path, expected):
    router, _ = setup
    assert backend_of(router, "ctx.example.com", path) == expected


def test_absolute_form_target_wins_over_host_header(setup):
    router, _ = setup
    response = raw_request(
        router.port,
        b"GET http://a.b.example.com/abs?x=1 HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n",
    )
    assert status_of(response) == 200
    assert b'"raw_path": "/abs?x=1"' in body_of(response) or b'"/abs?x=1"' in body_of(response)


def test_app_instance_header_targets_one_instance(setup):
    router, _ = setup
    for _ in range(6):
        assert (
            backend_of(router, "inst.example.com", headers={"X-CF-App-Instance": f"{APP}:1"})
            == "inst1"
        )


@pytest.mark.parametrize("value", ["not-a-guid:1", f"{APP}", f"{APP}:x", f"{APP.upper()}:1", ":1"])
def test_malformed_app_instance_header_is_400(setup, value):
    router, _ = setup
    response = router.get("/", host="inst.example.com", headers={"X-CF-App-Instance": value})
    assert response.status == 400
    assert response.text == "400 Bad Request: Invalid X-CF-App-Instance Header\n"
    assert response.header("X-Cf-RouterError") == "invalid_cf_app_instance_header"


def test_unknown_app_instance_is_400(setup):
    router, _ = setup
    response = router.get("/", host="inst.example.com", headers={"X-CF-App-Instance": f"{APP}:9"})
    assert response.status == 400
    assert response.text == (
        f"400 Bad Request: Requested instance ('9') with guid ('{APP}') does not exist for route "
        "('inst.example.com')\n"
    )
    assert response.header("X-Cf-RouterError") == "unknown_route"


def test_sticky_session_pins_the_instance(setup):
    router, _ = setup
    first = router.get("/?echo-cookie=JSESSIONID%3Dabc", host="inst.example.com")
    served_by = first.header("X-Backend")
    cookies = first.headers.get_all("Set-Cookie")
    vcap = [c for c in cookies if c.startswith("__VCAP_ID__=")]
    assert len(vcap) == 1
    instance = vcap[0].split(";")[0].split("=", 1)[1]
    assert instance == f"instance-{served_by[-1]}"
    assert "HttpOnly" in vcap[0] and "Path=/" in vcap[0]
    cookie = f"JSESSIONID=abc; __VCAP_ID__={instance}"
    for _ in range(8):
        assert backend_of(router, "inst.example.com", headers={"Cookie": cookie}) == served_by


def test_without_session_cookie_requests_spread(setup):
    router, _ = setup
    seen = {backend_of(router, "inst.example.com") for _ in range(10)}
    assert seen == {"inst0", "inst1"}

"""`routerctl status` against a real routerd: text, --json, and the exit codes."""

from __future__ import annotations

import json

import pytest

from tests.ctl.conftest import (
    PATIENCE,
    BackendFactory,
    RouterFactory,
    RunCtl,
    assert_one_line_error,
    register_and_wait,
)
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def busy_router(
    routerd_factory: RouterFactory, nats_client: NatsClient, backend_factory: BackendFactory
) -> Routerd:
    """A router with one working route and one whose backend is gone, after some traffic:
    one 200, one 404 (unknown route) and one 502 (dial error)."""
    router = routerd_factory()
    backend = backend_factory()
    register_and_wait(router, nats_client, backend.port, "ok.ctl.test")
    register_and_wait(router, nats_client, free_port(), "gone.ctl.test")
    assert router.get("/", host="ok.ctl.test").status == 200
    assert router.get("/", host="nowhere.ctl.test").status == 404
    assert router.get("/", host="gone.ctl.test").status == 502
    return router


def test_status_text_shows_health_workers_routes_and_502_causes(
    busy_router: Routerd, routerctl: RunCtl
) -> None:
    result = routerctl("status", "--config", str(busy_router.config_path), "--interval", "0.2")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = result.stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "health        healthy, running" in text
    assert f"status server http://127.0.0.1:{busy_router.status_port}" in text
    assert "nats          connected" in text
    assert "routes        2 uris, 2 endpoints" in text
    assert "over the last 0.2 s" in text
    assert "502s          1\n  by cause    dial 1\n" in text
    assert "unknown_route 1" in text
    varz = busy_router.status_json("/varz")
    for worker in varz["workers"]:
        assert any(
            line.split()[:3] == [str(worker["index"]), str(worker["pid"]), "ready"]
            for line in lines
        ), text


def test_status_json_has_the_numbers_and_says_how_the_rate_was_measured(
    busy_router: Routerd, routerctl: RunCtl
) -> None:
    sampled = routerctl(
        "status", "--config", str(busy_router.config_path), "--json", "--interval", "0.1"
    )
    average = routerctl(
        "status", "--config", str(busy_router.config_path), "--json", "--interval", "0"
    )

    assert sampled.returncode == 0, sampled.stderr
    summary = json.loads(sampled.stdout)
    assert summary["healthy"] is True
    assert summary["health_status"] == 200
    assert summary["state"] == "running"
    assert summary["nats"]["connected"] is True
    assert summary["routes"] == 2
    assert summary["endpoints"] == 2
    assert summary["requests"] >= 3
    assert summary["responses"]["2xx"] >= 1
    assert summary["responses"]["4xx"] == 1
    assert summary["bad_gateways"] == 1
    assert summary["bad_gateways_by_cause"]["dial"] == 1
    assert summary["router_errors"]["unknown_route"] == 1
    assert summary["ms_since_last_registry_update"] >= 0
    pids = {worker["pid"] for worker in busy_router.status_json("/varz")["workers"]}
    assert {worker["pid"] for worker in summary["workers"]} == pids
    assert summary["request_rate"]["method"] == "sampled"
    assert 0.1 <= summary["request_rate"]["seconds"] < 5
    assert json.loads(average.stdout)["request_rate"]["method"] == "average"


def test_status_reads_the_url_and_credentials_from_options(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory()
    url = f"http://127.0.0.1:{router.status_port}"
    status = router.config["status"]

    good = routerctl(
        "status",
        "--url",
        url,
        "--user",
        status["user"],
        "--password",
        status["pass"],
        "--json",
        "--interval",
        "0",
    )
    wrong = routerctl("status", "--url", url, "--user", status["user"], "--password", "nope")

    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["url"] == url
    line = assert_one_line_error(wrong, 2)
    assert "refused user 'status-user' (401)" in line


def test_status_exits_1_when_health_is_503(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    # Still waiting out start_response_delay_interval: the status server answers, /health is 503.
    router = routerd_factory({"start_response_delay_interval": 60}, wait_healthy=False)
    wait_until(lambda: router.health().status == 503, timeout=PATIENCE, what="/health 503")

    text = routerctl("status", "--config", str(router.config_path), "--interval", "0")
    as_json = routerctl("status", "--config", str(router.config_path), "--json", "--interval", "0")

    line = assert_one_line_error(text, 1)
    assert "unhealthy: /health answered 503 (state starting)" in line
    assert "UNHEALTHY (/health 503), starting" in text.stdout
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["healthy"] is False


def test_exit_3_and_one_line_when_nothing_listens(routerctl: RunCtl) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    for command in (["status"], ["routes"], ["routes", "--json"]):
        result = routerctl(*command, "--url", url, "--user", "u", "--password", "p")
        line = assert_one_line_error(result, 3)
        assert line == f"routerctl: cannot reach the status server at {url}: connection refused"
        assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--no-such-option"],
        ["routes", "--json", "extra", "args"],
        ["frobnicate"],
        ["status", "--interval", "soon"],
        ["register", "--uri", "a.test", "--port", "80"],  # --host is missing
        ["register", "--host", "10.0.0.1", "--port", "80", "--uri", "a.test", "--tag", "novalue"],
        ["register", "--host", "10.0.0.1", "--port", "70000", "--uri", "a.test"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], routerctl: RunCtl) -> None:
    result = routerctl(*args)

    line = assert_one_line_error(result, 2)
    assert "--help" in line


def test_unreadable_config_is_a_usage_error(routerctl: RunCtl) -> None:
    result = routerctl("status", "--config", "/nonexistent/router.yml")

    line = assert_one_line_error(result, 2)
    assert "/nonexistent/router.yml: cannot read config" in line

"""`routerctl routes`: the table, Gorouter's JSON, and the shared-memory table read directly."""

from __future__ import annotations

import json

import pytest

from tests.ctl.conftest import RouterFactory, RunCtl, register_and_wait
from tests.support.nats import NatsClient
from tests.support.routerd import Routerd

pytestmark = pytest.mark.integration

APP = "5e4d6f8a-1234-4bcd-9876-0123456789ab"
INSTANCE = "a1b2c3d4-aaaa-bbbb-cccc-ddddeeeeffff"
LONG_URI = "a-very-long-host-name-for-an-application.apps.internal.example.com/api/v1/things"


@pytest.fixture
def router(routerd_factory: RouterFactory, nats_client: NatsClient) -> Routerd:
    router = routerd_factory()
    fields = {
        "app": APP,
        "private_instance_id": INSTANCE,
        "private_instance_index": "3",
        "tags": {"component": "ctl-test"},
    }
    register_and_wait(router, nats_client, 8080, "app.ctl.test", host="10.0.0.1", **fields)
    register_and_wait(router, nats_client, 8081, "app.ctl.test", host="10.0.0.2", **fields)
    register_and_wait(router, nats_client, 9000, "app.ctl.test/api", host="10.0.0.3")
    register_and_wait(router, nats_client, 9001, "other.ctl.test", host="10.0.0.4")
    register_and_wait(router, nats_client, 9002, LONG_URI, host="10.0.0.5", app=APP)
    return router


def test_routes_table_fits_80_columns(router: Routerd, routerctl: RunCtl) -> None:
    result = routerctl("routes", "--config", str(router.config_path))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["URI", "ENDPOINT", "TLS", "TTL", "LEFT", "APP", "INSTANCE"]
    assert all(len(line) <= 80 for line in lines), result.stdout
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 5
    first = rows[0]
    assert first[0] == "a-very-long-hos…"  # cut, with an ellipsis
    by_endpoint = {row[1]: row for row in rows}
    assert by_endpoint["10.0.0.1:8080"][0] == "app.ctl.test"
    assert by_endpoint["10.0.0.1:8080"][2] == "no"
    ttl = by_endpoint["10.0.0.1:8080"][3]
    assert ttl.endswith("s") and 100 <= int(ttl[:-1]) <= 120
    assert by_endpoint["10.0.0.1:8080"][4].startswith("5e4d6f8a")
    assert by_endpoint["10.0.0.1:8080"][5].startswith("3/a1b2c3d4")
    assert by_endpoint["10.0.0.3:9000"][0] == "app.ctl.test/api"
    assert by_endpoint["10.0.0.3:9000"][4:] == ["-", "-"]

    wide = routerctl("routes", "--config", str(router.config_path), "--wide")
    assert LONG_URI in wide.stdout
    assert INSTANCE in wide.stdout


def test_routes_prefix_filters(router: Routerd, routerctl: RunCtl) -> None:
    result = routerctl("routes", "APP.ctl.test", "--config", str(router.config_path))

    uris = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert uris == {"app.ctl.test", "app.ctl.test/api"}

    nothing = routerctl("routes", "nowhere.test", "--config", str(router.config_path))
    assert nothing.returncode == 0
    assert nothing.stdout == "no routes\n"


def test_routes_json_is_gorouters_routes(router: Routerd, routerctl: RunCtl) -> None:
    result = routerctl("routes", "--json", "--config", str(router.config_path))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == router.status_json("/routes")
    filtered = json.loads(
        routerctl("routes", "other", "--json", "--config", str(router.config_path)).stdout
    )
    assert list(filtered) == ["other.ctl.test"]


def test_routes_from_shm_match_the_status_server(router: Routerd, routerctl: RunCtl) -> None:
    from_shm = routerctl("routes", "--from-shm", "--json", "--config", str(router.config_path))
    with_ttl = routerctl(
        "routes", "--from-shm", "--json", "--ttl-left", "--run-dir", router.config["run_dir"]
    )
    table = routerctl("routes", "--from-shm", "--config", str(router.config_path))

    assert from_shm.returncode == 0, from_shm.stderr
    assert from_shm.stderr == ""
    assert json.loads(from_shm.stdout) == router.status_json("/routes")
    ttl_left = {
        endpoint["address"]: endpoint["ttl_left"]
        for endpoints in json.loads(with_ttl.stdout).values()
        for endpoint in endpoints
    }
    assert all(100 <= left <= 120 for left in ttl_left.values()), ttl_left
    assert len(table.stdout.splitlines()) == 6


def test_routes_from_shm_after_routerd_stopped(router: Routerd, routerctl: RunCtl) -> None:
    expected = router.status_json("/routes")
    pid = router.process.pid if router.process else 0
    assert router.stop() == 0

    from_shm = routerctl("routes", "--from-shm", "--json", "--config", str(router.config_path))
    over_http = routerctl("routes", "--config", str(router.config_path))

    assert from_shm.returncode == 0, from_shm.stderr
    assert json.loads(from_shm.stdout) == expected
    assert from_shm.stderr == (
        f"routerctl: routerd (pid {pid}) is not running: this is the table it last published\n"
    )
    assert over_http.returncode == 3


def test_routes_from_shm_without_a_table_exits_3(routerctl: RunCtl, tmp_path: object) -> None:
    result = routerctl("routes", "--from-shm", "--run-dir", str(tmp_path))

    assert result.returncode == 3
    assert result.stderr.startswith(f"routerctl: no route table at {tmp_path}/routes.shm")

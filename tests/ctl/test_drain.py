"""`routerctl drain`: SIGUSR1 to the supervisor, then follow it until routerd has exited 0."""

from __future__ import annotations

import pytest

from tests.ctl.conftest import RouterFactory, RunCtl, assert_one_line_error

pytestmark = pytest.mark.integration


def test_drain_follows_health_until_routerd_exits_0(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory({"drain_wait": 1, "drain_timeout": 5})
    assert router.process is not None
    pid = router.process.pid

    # --timeout: generous on a busy machine; the default budget is unit-tested.
    result = routerctl("drain", "--config", str(router.config_path), "--timeout", "60")

    assert result.returncode == 0, (result.stdout, result.stderr, router.log_text())
    assert router.wait_exit(timeout=10) == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"sent SIGUSR1 to routerd (pid {pid}): drain_wait 1s, then up to 5s for in-flight requests"
    )
    assert "  /health 503: load balancers stop sending new requests" in lines
    assert lines[-1].startswith(f"routerd (pid {pid}) exited after ")
    assert lines[-1].endswith("s: drain complete")
    assert any(event["message"] == "router-draining" for event in router.log_events())


def test_drain_with_run_dir_only(routerd_factory: RouterFactory, routerctl: RunCtl) -> None:
    router = routerd_factory()

    result = routerctl(
        "drain", "--config", "/nonexistent.yml", "--run-dir", router.config["run_dir"]
    )
    without_config = routerctl("drain", "--run-dir", router.config["run_dir"], "--timeout", "60")

    assert_one_line_error(result, 2)
    assert without_config.returncode == 0, without_config.stderr
    assert without_config.stdout.splitlines()[-1].endswith("drain complete")
    assert router.wait_exit(timeout=10) == 0


def test_drain_without_a_running_router_exits_3(routerctl: RunCtl, tmp_path: object) -> None:
    result = routerctl("drain", "--run-dir", str(tmp_path))

    line = assert_one_line_error(result, 3)
    assert (
        line == f"routerctl: no PID file at {tmp_path}/routerd.pid: is routerd running? (--run-dir)"
    )

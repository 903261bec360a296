"""One routerd per run_dir: a second start on the same run_dir exits naming the running one and
changes nothing of it; the running one's workers keep routing by the same table."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

RUN_FILES = ("routes.shm", "counters.shm", "routerd.pid", "routerd.lock")


def fingerprints(run_dir: Path) -> dict[str, tuple[int, int, int]]:
    result = {}
    for name in RUN_FILES:
        stat = os.stat(run_dir / name)
        result[name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return result


def second_start(first: Routerd, tmp_path: Path) -> Routerd:
    """The same config (same run_dir, same ports) started again, as an operator might."""
    workdir = tmp_path / "second"
    workdir.mkdir()
    second = Routerd(config=dict(first.config), workdir=workdir)
    second.start(wait_healthy=False)
    return second


def test_second_routerd_on_the_same_run_dir_exits_and_touches_nothing(
    routerd_factory, nats_client, backend_factory, tmp_path
):
    backend = backend_factory()
    # One worker: after it is killed, every request goes through its replacement.
    first = routerd_factory({"workers": 1})
    run_dir = Path(first.config["run_dir"])
    register(nats_client, backend.port, ["before.lock.test"])
    wait_routed(first, "before.lock.test")
    before = fingerprints(run_dir)
    first_pid = first.process.pid

    second = second_start(first, tmp_path)
    try:
        code = second.wait_exit(timeout=30)
    finally:
        second.stop()

    assert code != 0
    events = list(second.log_events())
    assert [event["message"] for event in events] == ["router-failed-to-start"], events
    fatal = events[0]["data"]
    assert fatal["running_pid"] == first_pid
    assert f"in use by routerd pid {first_pid}" in fatal["error"]
    assert "Traceback" not in second.log_text()
    assert fingerprints(run_dir) == before
    assert (run_dir / "routerd.pid").read_text() == f"{first_pid}\n"

    # The first keeps serving, and a respawned worker maps the very table the supervisor writes.
    register(nats_client, backend.port, ["after.lock.test"])
    wait_routed(first, "after.lock.test")
    victim = first.status_json("/varz")["workers"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(
        lambda: (
            (worker := first.status_json("/varz")["workers"][0])["pid"] != victim["pid"]
            and worker["state"] == "ready"
        ),
        timeout=15,
        what="worker 0 to be respawned",
    )
    for host in ("before.lock.test", "after.lock.test") * 5:
        response = first.get("/", host=host)
        assert response.status == 200, (host, response.status, response.text)
    assert first.health().status == 200


def test_routerd_leaves_a_pid_file_that_is_not_its_own(routerd_factory):
    router = routerd_factory()
    pid_file = Path(router.config["run_dir"]) / "routerd.pid"
    assert pid_file.read_text() == f"{router.process.pid}\n"
    pid_file.write_text("4242\n")  # someone else's, however it got there

    assert router.stop() == 0

    assert pid_file.read_text() == "4242\n"


def test_routerd_removes_its_own_pid_file_and_a_new_one_can_start(routerd_factory):
    first = routerd_factory()
    run_dir = first.config["run_dir"]
    assert first.stop() == 0
    assert not (Path(run_dir) / "routerd.pid").exists()

    again = routerd_factory({"run_dir": run_dir})

    assert (Path(run_dir) / "routerd.pid").read_text() == f"{again.process.pid}\n"

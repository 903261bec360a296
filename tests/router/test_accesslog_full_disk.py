"""A full disk under the access log: requests keep answering, the file holds only whole lines,
the losses are counted in /varz and reported in the component log, and writing resumes by
itself once there is room again. Uses a real 256 KiB tmpfs, so it needs root."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.router.test_accesslog import LINE
from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "full-disk.example.com"
# A bound on the traffic needed to fill what the filler leaves free (~300-byte lines).
MAX_REQUESTS = 3000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; not running as root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        # Lazily, in case a routerd still holds the log open: it is stopped right after.
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: Path, leave: int) -> None:
    """Write zeros until only about `leave` bytes of the filesystem are free."""
    stat = os.statvfs(path.parent)
    free = stat.f_bavail * stat.f_frsize
    path.write_bytes(b"\0" * max(free - leave, 0))


def whole_lines(path: Path) -> list[str]:
    """Every line of the file, asserting each is whole and in Gorouter's format."""
    text = path.read_text()
    assert text.endswith("\n"), f"the access log ends in a cut line: {text[-200:]!r}"
    lines = text.splitlines()
    for line in lines:
        assert LINE.match(line), f"not a whole access log line: {line!r}"
    return lines


def dropped_lines(router: Routerd) -> int:
    return int(router.status_json("/varz")["access_log"]["dropped_lines"])


def test_full_disk_loses_whole_lines_counted_and_recovers(
    small_disk: Path, routerd_factory, nats_client, backend_factory
) -> None:
    access_log = small_disk / "access.log"
    filler = small_disk / "filler"
    fill(filler, leave=48 * 1024)
    backend = backend_factory()
    router = routerd_factory({"access_log": {"file": str(access_log)}})
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)

    statuses: list[int] = []
    for number in range(MAX_REQUESTS):
        statuses.append(router.get(f"/filling/{number}", host=HOST).status)
        if number % 50 == 49 and dropped_lines(router) > 0:
            break
    assert set(statuses) == {200}
    wait_until(lambda: dropped_lines(router), what="/varz to count dropped access log lines")
    written = [line for line in whole_lines(access_log) if "/filling/" in line]
    assert 0 < len(written) < len(statuses)
    failed = wait_until(
        lambda: router.events_named("access-log-write-failed"), what="the failure log line"
    )
    assert failed[0]["data"]["lost_lines"] > 0
    assert "ENOSPC" in failed[0]["data"]["error"]
    # One line per report interval, not one per lost line.
    assert len(failed) <= 2 * int(router.config["workers"])
    metrics = router.status_request("GET", "/metrics").text
    exported = re.search(r"^routerd_access_log_dropped_lines_total (\d+)$", metrics, re.MULTILINE)
    assert exported is not None
    assert int(exported[1]) > 0

    filler.unlink()
    wait_until(
        lambda: (
            router.get("/after-room", host=HOST).status == 200
            and "/after-room" in access_log.read_text()
        ),
        what="lines written again once there is room",
    )

    def resumed_reported() -> list[dict[str, Any]]:
        # Each worker that lost lines says so on its next good write; keep them all writing.
        assert router.get("/after-room", host=HOST).status == 200
        return router.events_named("access-log-write-resumed")

    resumed = wait_until(resumed_reported, what="the resumed log line")
    assert sum(event["data"]["total_lost_lines"] for event in resumed) > 0
    lines = whole_lines(access_log)
    assert any("/after-room" in line for line in lines)

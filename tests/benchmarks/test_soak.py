"""The soak harness (`make soak`) in a tiny run: it must notice a lost route and fail.

The run rotates two faults for ~25 s: `lose-route` unregisters a watched route behind the
bar's back and stops its heartbeats, and `churn` unregisters and registers again every churn
route. The harness must exit 1, charge the loss to `lose-route`, name the route at the end, and
charge nothing else (churned routes are not due while they churn).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_SOAK = [
    "--seconds",
    "24",
    "--warmup",
    "2",
    "--fault-every",
    "10",
    "--faults",
    "lose-route,churn",
    "--watched-routes",
    "20",
    "--churn-routes",
    "100",
    "--churn-rounds",
    "2",
    "--rate",
    "100",
    "--connections",
    "4",
    "--probe-rate",
    "50",
    "--print-every",
    "2",
]


@pytest.fixture(scope="module")
def lost_route_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    results_dir = tmp_path_factory.mktemp("soak")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "soak", *TINY_SOAK, "--results-dir", str(results_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    paths = list(results_dir.glob("soak-*.json"))
    assert len(paths) == 1, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return done, json.loads(paths[0].read_text()), paths[0]


@pytest.mark.timeout(180)
def test_a_route_lost_mid_run_fails_the_soak_and_is_charged_to_its_fault(
    lost_route_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
) -> None:
    done, results, _ = lost_route_run
    output = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 1, output
    [lose] = [fault for fault in results["faults"] if fault["name"] == "lose-route"]
    lost_host = lose["note"].split()[0]
    assert lost_host.startswith("watched-"), lose
    assert results["lost_at_end"] == [lost_host]
    assert f"at the end: 1 due route(s) not routable: {lost_host}" in done.stdout
    assert "RESULT: FAILED" in done.stdout
    # The first failure of the lost route is charged to lose-route, and printed so.
    counted = [failure for failure in results["failures"] if not failure["excused"]]
    assert counted[0]["phase"] == "lose-route #1", counted[0]
    assert counted[0]["outcome"] == "route lost"
    assert "during lose-route #1" in done.stdout
    # Nothing else failed: not the traffic, not the churned routes, not the other routes.
    assert {failure["host"] for failure in counted} == {lost_host}, counted[:5]
    assert results["counts"]["traffic_failed"] == 0
    assert results["harness_errors"] == []


@pytest.mark.timeout(180)
def test_the_run_prints_routes_and_rss_as_it_goes_and_plots_them(
    lost_route_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
) -> None:
    done, results, path = lost_route_run
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(progress) >= 5, done.stdout
    # The route count drops by one when the route is lost, and RSS is read for every process.
    expected = 4 + 1 + 20 + 100
    assert f"routes {expected:,}/{expected:,}" in progress[0]
    assert any(f"routes {expected - 1:,}/{expected:,}" in line for line in progress)
    assert all("rss MiB supervisor" in line for line in progress)
    samples = results["samples"]
    assert all(sample["supervisor_rss_kib"] > 0 for sample in samples)
    assert all(len(sample["worker_rss_kib"]) == 2 for sample in samples)
    churn = [fault for fault in results["faults"] if fault["name"] == "churn"]
    assert churn and churn[0]["note"].startswith("400 messages")
    plot = path.with_suffix(".png")
    if importlib.util.find_spec("matplotlib") is None:
        assert "plots skipped: matplotlib cannot be imported" in done.stdout
    else:
        assert plot.read_bytes().startswith(PNG_MAGIC)
        assert f"plot: {plot}" in done.stdout


def test_an_unknown_fault_is_refused_before_anything_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "soak", "--faults", "worker-kill,meteor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown fault(s) meteor" in done.stderr

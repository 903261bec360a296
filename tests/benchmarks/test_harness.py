"""The benchmark harness runs end to end (tiny mode) and its results say what they claim.

The tiny run starts the real backend nginx, nginx proxy, HAProxy, nats-server and routerd, drives
them with wrk and the open-loop generator, and writes the JSON (and plots when matplotlib is
installed), so a change that breaks the harness fails here instead of on the next `make bench`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.proxy import RATIOS, same_round_ratios
from benchmarks.run import TINY
from benchmarks.sweep import TARGETS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    results_dir = tmp_path_factory.mktemp("results")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--results-dir", str(results_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    [path] = results_dir.glob("*.json")
    return json.loads(path.read_text()), path, done.stdout


@pytest.mark.timeout(300)
def test_tiny_run_measures_every_benchmark_without_errors(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    results, _, stdout = tiny_run
    assert results["meta"]["mode"] == "tiny"
    assert not results.get("errors")
    assert set(results) >= {"proxy", "http2", "sweep", "latency", "table", "storm"}
    for section in ("PROXY", "HTTP2", "SWEEP", "LATENCY", "TABLE", "STORM"):
        assert f"\n{section}  " in stdout
    assert all(value > 0 for value in results["proxy"]["ratios"].values())
    assert all(value > 0 for value in results["proxy"]["same_round_ratios"].values())
    assert "req/s ratio" in stdout and "routerd-log ÷ nginx-log" in stdout
    assert results["storm"]["runs"]["error"]["dropped"] == 0


@pytest.mark.timeout(300)
def test_http2_measures_routerd_beside_nginx_and_grpc_direct(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    http2 = tiny_run[0]["http2"]
    assert set(http2["runs"]) == {"nginx-h2", "routerd-h2", "grpc-direct", "routerd-grpc"}
    for name, runs in http2["runs"].items():
        for run in runs:
            # Every request answered 2xx: a router that fell back to HTTP/1.1, or answered
            # the gRPC route with an error, does not pass for a measurement.
            assert run["rps"] > 0 and run["failed"] == 0 and run["non_2xx"] == 0, name
            assert run["cpu_us_per_request"] > 0, name
    for name in ("nginx-h2", "routerd-h2"):
        for run in http2["runs"][name]:
            assert run["access_log_bytes"] >= 50 * run["requests"], name
    assert list(http2["same_round_ratios"]) == ["routerd-h2/nginx-h2", "routerd-grpc/grpc-direct"]


@pytest.mark.timeout(300)
def test_proxy_measures_each_proxy_with_its_access_log_on_and_off(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    proxy = tiny_run[0]["proxy"]
    logged = {"nginx-log", "haproxy-log", "routerd-log"}
    unlogged = {"direct", "nginx", "haproxy", "naive", "floor", "routerd"}
    assert set(proxy["runs"]) == unlogged | logged
    for name, runs in proxy["runs"].items():
        for run in runs:
            assert run["rps"] > 0 and run["errors"] == 0, name
            assert run["cpu_us_per_request"] > 0, name
            if name in logged:
                # At least one line of ~100 bytes per request: the row really logs.
                assert run["access_log_bytes"] >= 50 * run["requests"], name
            else:
                assert "access_log_bytes" not in run, name
    assert list(proxy["same_round_ratios"]) == [f"{name}/{base}" for name, base in RATIOS]
    assert next(iter(proxy["same_round_ratios"])) == "routerd-log/nginx-log"
    assert proxy["labels"]["routerd-log"] == "routerd (2 workers, access log)"
    # The front end's targets, each with the figure it was judged on.
    stdout = tiny_run[2]
    logged = proxy["same_round_ratios"]["routerd-log/nginx-log"]
    assert f"routerd-log ÷ nginx-log >= 0.6 ({logged:.2f})" in stdout
    assert "routerd log on ÷ log off >= 0.9 (" in stdout
    assert "CPU per request, routerd-log ÷ nginx-log <= 2.0 (" in stdout


@pytest.mark.timeout(300)
def test_storm_times_new_routes_under_churn_and_the_loop_during_routes(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    results, _, stdout = tiny_run
    run = results["storm"]["runs"]["error"]
    churn = run["churn"]
    assert churn["sent"] > 0 and churn["received"] >= churn["sent"]
    assert churn["probes"] > 0 and churn["probes_unseen"] == 0
    assert (
        0
        < churn["routable_ms"]["p50"]
        <= churn["routable_ms"]["p99"]
        <= churn["routable_ms"]["max"]
    )
    fetch = run["routes_fetch"]
    assert fetch["routes_bytes"] > 0 and fetch["health_probes"] > 0
    assert fetch["health_failures"] == 0
    assert "register→routable of" in stdout
    assert "register→routable p99 <= 1000 ms under" in stdout


@pytest.mark.timeout(300)
def test_sweep_gives_positive_ratios_and_cpu_for_every_target(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    sweep = tiny_run[0]["sweep"]
    assert list(sweep["scenarios"]) == [scenario.name for scenario in TINY.sweep.scenarios]
    for name, scenario in sweep["scenarios"].items():
        assert set(scenario["median"]) == set(TARGETS), name
        for target in TARGETS:
            median = scenario["median"][target]
            assert median["rps"] > 0, (name, target)
            assert median["errors"] == 0, (name, target)
            assert median["cpu_us_per_request"] > 0, (name, target)
            ratios = scenario["ratios"][target]
            assert ratios["to_nginx"] > 0 and ratios["to_direct"] > 0, (name, target)
        assert scenario["ratios"]["nginx"]["to_nginx"] == 1.0
    # The worker sweep really ran routerd with one worker.
    assert sweep["scenarios"]["workers-1"]["labels"]["routerd"] == "routerd (1 worker)"
    # A route scenario runs its own number of rounds (the other scenarios run one), and every
    # target also with all requests to one host, in each round.
    assert sweep["settings"]["route_rounds"] == TINY.sweep.route_rounds == 2
    assert [run["round"] for run in sweep["scenarios"]["baseline"]["runs"]["routerd"]] == [1]
    routes = sweep["scenarios"]["routes-1k"]
    for target in TARGETS:
        assert routes["ratios"][target]["to_one_host"] > 0
        assert [run["round"] for run in routes["runs"][target]] == [1, 2]
        one_host = routes["one_host_runs"][target]
        assert [run["round"] for run in one_host] == [1, 2]
        assert all(run["rps"] > 0 and run["errors"] == 0 for run in one_host)
    assert "to_one_host" not in sweep["scenarios"]["baseline"]["ratios"]["routerd"]
    stdout = tiny_run[2]
    assert "routes, spread ÷ one host (same table, same round): direct 1k " in stdout
    assert "routerd, requests spread over 1,000 routes ÷ all to one of them >= 0.9" in stdout


@pytest.mark.timeout(300)
def test_latency_is_paced_open_loop_at_a_fraction_of_each_peak(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    latency = tiny_run[0]["latency"]
    [(fraction, runs)] = latency["fractions"].items()
    assert float(fraction) == TINY.latency.fractions[0]
    assert set(runs) == set(TARGETS)
    for target, report in runs.items():
        peak = latency["peaks"][target]["rps"]
        assert report["target_rps"] == pytest.approx(float(fraction) * peak, rel=0.01)
        assert report["completed"] > 0 and report["errors"] == 0, target
        lat = report["latency_us"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], target
        assert [q for q, _ in report["cdf_us"]] == sorted(q for q, _ in report["cdf_us"])
        # Each round kept; the one reported is the median p99 (the lower of two).
        rounds = [each["p99"] for each in report["rounds_latency_us"]]
        assert len(rounds) == TINY.latency.rounds == 2, target
        assert lat["p99"] == min(rounds), target
    routerd, nginx = (runs[name]["latency_us"]["p99"] / 1000 for name in ("routerd", "nginx"))
    assert (
        f"p99 at half of each one's peak, routerd ÷ nginx <= 2.0 ({routerd:.2f} ÷ {nginx:.2f} ms"
        in tiny_run[2]
    )


@pytest.mark.timeout(300)
def test_plots_are_written_when_matplotlib_is_installed(
    tiny_run: tuple[dict[str, Any], Path, str],
) -> None:
    _, path, stdout = tiny_run
    plots = [Path(f"{path.with_suffix('')}-{name}.png") for name in ("sweep", "latency", "proxy")]
    if importlib.util.find_spec("matplotlib") is None:
        assert "plots skipped: matplotlib cannot be imported" in stdout
        assert not any(plot.exists() for plot in plots)
    else:
        for plot in plots:
            assert plot.read_bytes().startswith(PNG_MAGIC), plot
            assert f"plot: {plot}" in stdout


def test_help_lists_the_subcommands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("run", "plot", "calibrate"):
        assert command in done.stdout


def test_same_round_ratios_pair_each_round_and_take_the_median() -> None:
    # Round 3 is fast for nginx and slow for routerd: best rounds would pair routerd's round 1
    # with nginx's round 3 (0.25); each round alone says 0.5, 0.5 and 0.1.
    def runs(*rps: float) -> list[dict[str, Any]]:
        return [{"round": index + 1, "rps": value} for index, value in enumerate(rps)]

    names = {name for pair in RATIOS for name in pair}
    targets = {name: runs(100.0, 100.0, 100.0) for name in names}
    targets["nginx"] = runs(200.0, 100.0, 400.0)
    targets["routerd"] = runs(100.0, 50.0, 40.0)
    targets["routerd-log"] = runs(90.0, 50.0, 8.0)

    ratios = same_round_ratios(targets, list(RATIOS))

    assert ratios["routerd/nginx"] == 0.5
    assert ratios["routerd/naive"] == 0.5
    # Log on over log off: 0.9, 1.0 and 0.2 in the three rounds.
    assert ratios["routerd-log/routerd"] == 0.9
    assert list(ratios) == [f"{name}/{base}" for name, base in RATIOS]

"""`python -m benchmarks ab`: another commit's routerd beside this checkout's, for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ab import summary

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def ab(*args: str) -> subprocess.CompletedProcess[str]:
    # The other revision built as plain Python: compiling it would add a minute to this test
    # and prove nothing more about the harness.
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "ab", *args],
        cwd=ROOT,
        env={**os.environ, "ROUTERD_COMPILE": "0"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def worktrees() -> str:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
    )
    return listed.stdout


@pytest.mark.timeout(240)
def test_both_trees_serve_and_the_checkout_is_removed() -> None:
    before = worktrees()
    done = ab("HEAD", "--rounds", "1", "--seconds", "0.5")
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    rows = {
        label: float(rps.replace(",", ""))
        for label, rps in re.findall(r"^  (.+?)\s+([\d,]+)\s+[\d.]+\s+[\d.]+x$", done.stdout, re.M)
    }
    assert set(rows) == {
        "routerd, access log (this checkout)",
        "routerd, access log (HEAD)",
        "nginx proxy (2 workers, access log)",
    }
    assert all(rps > 0 for rps in rows.values())
    assert worktrees() == before


def test_an_unknown_revision_is_a_clear_error() -> None:
    done = ab("no-such-revision-here")
    assert done.returncode == 2
    assert "cannot check out 'no-such-revision-here'" in done.stderr


def test_summary_takes_medians_and_same_round_ratios() -> None:
    def run(round_: int, rps: float, cpu: float) -> dict[str, float]:
        return {"round": round_, "rps": rps, "cpu_us_per_request": cpu}

    rows = summary(
        {
            "after": [run(1, 50, 10), run(2, 40, 12), run(3, 30, 20)],
            "nginx-log": [run(1, 100, 5), run(2, 50, 6), run(3, 100, 5)],
        }
    )
    assert rows["after"] == {"rps": 40, "cpu_us": 12, "to_nginx": 0.5}
    assert rows["nginx-log"]["to_nginx"] == 1.0

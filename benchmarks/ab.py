"""`python -m benchmarks ab BEFORE`: this checkout's routerd against another commit's, side by side.

Both routerds (2 workers each, each writing its access log) and nginx with its access log stand
in front of one nginx backend, and wrk loads them in alternating rounds (`proxy`'s method). The
report gives each one's median req/s and CPU per request, and each routerd's same-round ratio
to nginx. BEFORE, any git revision, is checked out into a temporary worktree and run with this
checkout's Python environment; the worktree is removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import wrk
from benchmarks.processes import BenchmarkError
from benchmarks.proxies import check_tools, repo_root, start_backend, start_nginx_proxy
from benchmarks.proxy import (
    CONNECTIONS,
    alternating_rounds,
    measure,
    same_round_ratios,
    start_routerd_target,
)
from benchmarks.routerd import start_nats
from tests.support.launcher import ProcessGroup

NGINX = "nginx-log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("before", help="the git revision to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="seconds per target per round (default 4)"
    )


@contextmanager
def checkout(revision: str, workdir: Path) -> Iterator[Path]:
    """`revision` of this repository, checked out under `workdir` while the block runs."""
    tree = workdir / "before"
    git = ["git", "-C", str(repo_root())]
    added = subprocess.run(
        [*git, "worktree", "add", "--detach", "--quiet", str(tree), revision],
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        raise BenchmarkError(f"cannot check out {revision!r}: {added.stderr.strip()}")
    try:
        if (tree / "setup.py").exists():  # its per-request modules compiled, as `make` does
            built = subprocess.run(
                [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                cwd=tree,
                capture_output=True,
                text=True,
                check=False,
            )
            if built.returncode != 0:
                raise BenchmarkError(f"cannot build {revision!r}: {built.stderr.strip()[-2000:]}")
        yield tree
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per target: median req/s, median CPU µs per request, and the median same-round ratio
    to nginx."""
    ratios = same_round_ratios(runs, [(name, NGINX) for name in runs])
    return {
        name: {
            "rps": statistics.median(run["rps"] for run in results),
            "cpu_us": statistics.median(run["cpu_us_per_request"] for run in results),
            "to_nginx": ratios[f"{name}/{NGINX}"],
        }
        for name, results in runs.items()
    }


def report(labels: dict[str, str], rows: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"  {'target':<44} {'req/s':>9} {'CPU us/req':>11} {'÷ nginx-log':>12}"]
    for name, row in rows.items():
        lines.append(
            f"  {labels[name]:<44} {row['rps']:>9,.0f} {row['cpu_us']:>11.1f}"
            f" {row['to_nginx']:>11.3f}x"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        return compare(args)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def compare(args: argparse.Namespace) -> int:
    check_tools()

    def say(text: str) -> None:
        print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="routerd-ab-") as tmp:
        workdir = Path(tmp)
        run_root = Path(tempfile.mkdtemp(prefix="routerd-ab-", dir="/dev/shm"))
        with checkout(args.before, workdir) as before, ProcessGroup(workdir) as group:
            backend = start_backend(group)
            nats_port = start_nats(group).port
            targets = []
            for name, source in (("after", None), ("before", before)):
                _, target = start_routerd_target(
                    group,
                    backend.port,
                    run_root,
                    nats_port,
                    name=name,
                    access_log=True,
                    source=source,
                )
                label = "this checkout" if source is None else args.before
                targets.append(replace(target, name=name, label=f"routerd, access log ({label})"))
            targets.append(start_nginx_proxy(group, backend.port, name=NGINX, access_log=True))
            for target in targets:
                wrk.run(target.port, target.host, 1.0, CONNECTIONS)  # warm-up
            runs = alternating_rounds(
                targets,
                args.rounds,
                lambda target: measure(target, args.seconds),
                lambda run: f"{run['rps']:.0f} req/s, {run['cpu_us_per_request']} µs/req",
                say,
            )
        shutil.rmtree(run_root, ignore_errors=True)
    labels = {target.name: target.label for target in targets}
    print("\n".join(report(labels, summary(runs))))
    return 0


__all__ = ["add_arguments", "run", "summary"]

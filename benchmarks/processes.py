"""What the benchmarks read from /proc about the processes they start (CPU, memory,
connections), and the error a benchmark raises when something it needs is missing.

Starting and stopping processes is tests/support/launcher.py's, shared with the tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tests.support.launcher import ProcessExited

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(Exception):
    """Something a benchmark needs did not come up; the message says what and where to look."""


# What stops a benchmark (not the harness): its own errors, and the launcher's when a process
# it started exits or a condition it waits on never holds (ConditionTimeout, an AssertionError,
# as the support code's checks are).
BENCHMARK_FAILURES = (BenchmarkError, ProcessExited, AssertionError)


# -- /proc readings ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Direct children, from every thread's children list."""
    result: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return result
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                result += [int(child) for child in handle.read().split()]
        except OSError:
            continue
    return result


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    tree = [pid]
    index = 0
    while index < len(tree):
        tree += children_of(tree[index])
        index += 1
    return tree


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status, such as VmRSS or VmHWM (0 if unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()

"""`routerctl drain`: SIGUSR1 to the supervisor, then follow the drain until routerd has exited.

The PID comes from routerd_process.routerd_pid(), which proves it is routerd's before the signal.

routerd answers SIGUSR1 by failing /health at once, waiting `drain_wait` (load balancers notice and
stop sending), closing its listeners, letting in-flight requests finish for up to `drain_timeout`,
and exiting 0. routerctl is not routerd's parent, so it cannot read that exit code; it watches the
PID instead (a zombie counts as exited) and reports what /health says on the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from registry.shm.reader import is_pid_alive
from supervisor.ctl.errors import Unhealthy

# routerd's own margins: workers get 5 s beyond drain_timeout to exit, then NATS and the status
# server close. Anything beyond this means the drain is stuck.
MARGIN: Final = 15.0
POLL: Final = 0.1
PROGRESS_EVERY: Final = 10.0


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (exited, not yet reaped by its parent)."""
    if not is_pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return True  # no procfs: trust kill(0)
    # "pid (comm) S ...": the state follows the last ')' (comm may contain parentheses).
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"]


def follow(
    pid: int,
    health: Callable[[], int | None],
    budget: float,
    report: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait for `pid` to exit, reporting /health changes; returns the seconds it took.

    `health()` is /health's status code, or None once the status server no longer answers.
    Raises Unhealthy if routerd still runs after `budget` seconds.
    """
    started = clock()
    last_health: int | str | None = "unknown"
    next_progress = started + PROGRESS_EVERY
    while is_running(pid):
        now = clock()
        if now - started > budget:
            raise Unhealthy(
                f"routerd (pid {pid}) still running {budget:.0f}s after SIGUSR1 "
                "(drain_wait + drain_timeout + margin): see its log (journalctl -u routerd)"
            )
        current = health()
        if current not in (last_health, 200):  # 200: the signal is not handled yet
            if current is None:
                report("status server closed; waiting for routerd to exit")
            else:
                report(f"/health {current}: load balancers stop sending new requests")
            last_health = current
        if now >= next_progress:
            report(f"still draining after {now - started:.0f}s")
            next_progress += PROGRESS_EVERY
        sleep(POLL)
    return clock() - started

"""Which process is routerd for a run_dir, proven before routerctl sends it a signal.

A PID file alone proves nothing: after a supervisor is killed with SIGKILL its routerd.pid stays
behind, and the PID in it may since belong to anything. routerd holds an exclusive lock on
`run_dir/routerd.lock` for as long as it lives (supervisor/run_lock.py), so:

- lock held: that routerd is running; its PID is the one recorded in the lock file;
- lock free: no routerd runs on this run_dir, whatever the PID file says;
- no lock file: only a routerd from before the lock existed could be running; its PID file is
  believed only if /proc shows that PID is a routerd supervisor.
"""

from __future__ import annotations

import os
import signal
from typing import Final

from supervisor.ctl.errors import Unreachable, UsageProblem, describe_os_error
from supervisor.ctl.target import PID_FILE
from supervisor.run_lock import LOCK_FILE, MAX_PID_TEXT, LockState, parse_pid, probe

# What setproctitle makes /proc/PID/cmdline of routerd's supervisor start with.
SUPERVISOR_TITLE: Final = b"routerd: supervisor"


def routerd_pid(run_dir: str) -> int:
    """The PID of the routerd that owns `run_dir`; Unreachable when none is running."""
    try:
        lock = probe(run_dir)
    except OSError as exc:
        path = os.path.join(run_dir, LOCK_FILE)
        raise UsageProblem(f"cannot read {path}: {describe_os_error(exc)}") from None
    if lock.state is LockState.HELD:
        if lock.pid is None:
            raise Unreachable(f"routerd for run_dir {run_dir} is starting: try again in a moment")
        return lock.pid
    pid = read_pid(os.path.join(run_dir, PID_FILE))
    if lock.state is LockState.ABSENT and is_routerd_supervisor(pid):
        return pid
    raise Unreachable(
        f"no routerd is running for run_dir {run_dir} (stale PID file names PID {pid})"
    )


def read_pid(path: str) -> int:
    try:
        with open(path) as handle:
            text = handle.read(MAX_PID_TEXT + 1)
    except FileNotFoundError:
        raise Unreachable(f"no PID file at {path}: is routerd running? (--run-dir)") from None
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {describe_os_error(exc)}") from None
    pid = parse_pid(text)
    if pid is None:
        raise Unreachable(f"{path} does not hold a PID: {text.strip()[:40]!r}")
    return pid


def is_routerd_supervisor(pid: int) -> bool:
    """True if /proc shows `pid` is a routerd supervisor (False when that cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read(len(SUPERVISOR_TITLE)) == SUPERVISOR_TITLE
    except OSError:
        return False


def send(pid: int, signum: signal.Signals) -> None:
    """Signal routerd's supervisor, with permission errors said plainly."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        raise Unreachable(f"routerd (pid {pid}) is not running") from None
    except PermissionError:
        raise UsageProblem(
            f"not permitted to signal routerd (pid {pid}): run as root or as the routerd user"
        ) from None

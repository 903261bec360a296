"""One routerd per run_dir: an exclusive flock on `run_dir/routerd.lock`, held for life.

The supervisor takes the lock before it creates or writes anything in run_dir, so a second
routerd started on the same run_dir leaves the running one's route table, counters and PID file
alone. The lock file holds the owner's PID; it is never truncated by a start that fails and
never deleted (unlinking a lock file lets two processes lock two different files).

The kernel drops the lock when the owner dies, even by SIGKILL, and nothing else holds it: the
descriptor is close-on-exec, so no worker inherits it. That is why `routerctl` trusts the lock,
not the PID file, before it signals anything (`probe()`).
"""

from __future__ import annotations

import enum
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

LOCK_FILE: Final = "routerd.lock"
# routerctl's probe holds the lock shared for a moment; a start that meets one tries again
# for this long before it concludes that another routerd owns run_dir.
PROBE_GRACE: Final = 0.5
RETRY_EVERY: Final = 0.01
# A PID and a newline; anything longer is not what routerd wrote.
MAX_PID_TEXT: Final = 32


class RunDirBusy(Exception):
    """Another routerd holds run_dir's lock."""

    def __init__(self, run_dir: str, pid: int | None) -> None:
        owner = f"routerd pid {pid}" if pid is not None else "another routerd (starting)"
        super().__init__(
            f"run_dir {run_dir} is in use by {owner}, which holds "
            f"{os.path.join(run_dir, LOCK_FILE)}: stop it first, or give this one another run_dir"
        )
        self.run_dir = run_dir
        self.pid = pid


class RunDirLock:
    """The supervisor's exclusive lock on its run_dir."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def __repr__(self) -> str:
        state = f"held by pid {os.getpid()}" if self.is_held else "released"
        return f"RunDirLock({self.path!r}, {state})"

    @property
    def is_held(self) -> bool:
        return self._fd is not None

    @classmethod
    def acquire(
        cls,
        run_dir: str,
        grace: float = PROBE_GRACE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunDirLock:
        """Lock run_dir (creating the directory and the lock file if missing) and record our PID.

        Raises RunDirBusy if another routerd holds it, OSError if run_dir is unusable.
        """
        os.makedirs(run_dir, exist_ok=True)
        path = os.path.join(run_dir, LOCK_FILE)
        # No O_TRUNC: a start that loses must leave the owner's file exactly as it was.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = clock() + grace
            while not _try_lock(fd, fcntl.LOCK_EX):
                if clock() >= deadline:
                    raise RunDirBusy(run_dir, _recorded_pid(fd))
                sleep(RETRY_EVERY)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def release(self) -> None:
        """Unlock (the file stays, with our PID in it; the next owner overwrites it)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


class LockState(enum.Enum):
    HELD = "held"  # a routerd owns run_dir
    FREE = "free"  # the file is there, nobody holds it: no routerd runs on this run_dir
    ABSENT = "absent"  # no lock file: no routerd ran here, or one from before the lock existed


@dataclass(frozen=True)
class LockProbe:
    state: LockState
    pid: int | None  # the PID recorded in the lock file (the owner's, when HELD)


def probe(run_dir: str) -> LockProbe:
    """Whether a routerd holds run_dir's lock, without creating or changing anything.

    Raises OSError when the lock file exists but cannot be opened (permissions).
    """
    try:
        fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LockProbe(LockState.ABSENT, None)
    try:
        pid = _recorded_pid(fd)
        if _try_lock(fd, fcntl.LOCK_SH):
            return LockProbe(LockState.FREE, pid)
        return LockProbe(LockState.HELD, pid)
    finally:
        os.close(fd)  # also drops our shared lock, if we took it


def parse_pid(text: str) -> int | None:
    """The PID in a lock or PID file's text, or None if it holds none."""
    text = text.strip()
    if not text.isdigit() or len(text) > MAX_PID_TEXT or int(text) <= 0:
        return None
    return int(text)


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _recorded_pid(fd: int) -> int | None:
    return parse_pid(os.pread(fd, MAX_PID_TEXT, 0).decode("ascii", "replace"))

"""A worker's OS process: started with SIGHUP and SIGINT blocked, awaited through a pidfd.

The supervisor coordinates reload and stop; a worker ignores SIGHUP and SIGINT for its whole
life, so that a signal to the process group (a terminal's hangup or Ctrl-C, `pkill -HUP
routerd`) kills none. Its first instructions are the interpreter's start-up, tens of
milliseconds before any of our code runs, so the supervisor starts it with both signals
*blocked*: a blocked signal stays pending, and the worker discards it when it ignores the
signal and unblocks (router/__main__.py). A mask survives fork and exec. uvloop's spawn
(libuv) resets every signal's mask and disposition in the child, so workers are started with
the standard library's `subprocess.Popen`, which keeps the mask, and their exit is awaited on
the event loop through a pidfd (Linux 5.3 and later).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Final

# What the worker ignores from its first instruction (it unblocks them once they are ignored).
BLOCKED_AT_START: Final = frozenset({signal.SIGHUP, signal.SIGINT})


class WorkerProcess:
    """One spawned worker process; `wait()` may be awaited by several tasks."""

    def __init__(self, popen: subprocess.Popen[bytes], pidfd: int) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._pidfd: int | None = pidfd
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(pidfd, self._on_exit)

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"exited {self.returncode}"
        return f"WorkerProcess(pid={self.pid}, {state})"

    @classmethod
    def spawn(cls, args: Sequence[str], pass_fds: Sequence[int]) -> WorkerProcess:
        """Start `args` with SIGHUP and SIGINT blocked; raises OSError if it cannot start."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_AT_START)
        try:
            # Blocked here for the fork only: one arriving meanwhile is delivered on restore.
            popen = subprocess.Popen(args, pass_fds=pass_fds, stdin=subprocess.DEVNULL)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        try:
            pidfd = os.pidfd_open(popen.pid)
        except OSError:
            popen.kill()
            popen.wait()
            raise
        return cls(popen, pidfd)

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: the signal that killed it), None while it runs."""
        return self._popen.returncode

    async def wait(self) -> int:
        # Shielded: a waiter being cancelled must not cancel the exit for the other waiters.
        return await asyncio.shield(self._exit)

    def send_signal(self, signum: int) -> None:
        """Signal the process; a no-op once it has been reaped (its PID may be reused)."""
        if self.returncode is None:
            self._popen.send_signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _on_exit(self) -> None:
        # A pidfd turns readable when the process exits; poll() reaps it.
        code = self._popen.poll()
        if code is None or self._pidfd is None:
            return
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        if not self._exit.done():
            self._exit.set_result(code)

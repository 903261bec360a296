"""A worker's OS process starts with SIGHUP and SIGINT blocked, and its exit is awaited on the
event loop (through a pidfd) by as many waiters as need it."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from supervisor.worker_process import WorkerProcess
from tests.support.processes import proc_status

# Sleeps until SIGTERM (which it does not block).
CHILD = "import time; time.sleep(60)"


def blocked_signals(pid: int) -> set[signal.Signals]:
    (value,) = [line.split(":")[1] for line in proc_status(pid) if line.startswith("SigBlk:")]
    mask = int(value, 16)
    return {signum for signum in signal.Signals if mask & (1 << (signum - 1))}


@pytest.mark.asyncio
async def test_starts_with_sighup_and_sigint_blocked_and_reports_its_exit() -> None:
    process = WorkerProcess.spawn([sys.executable, "-c", CHILD], pass_fds=())
    try:
        # Blocked from the first instruction: a hangup now stays pending instead of killing it.
        process.send_signal(signal.SIGHUP)
        assert {signal.SIGHUP, signal.SIGINT} <= blocked_signals(process.pid)
        assert process.returncode is None
        assert repr(process) == f"WorkerProcess(pid={process.pid}, running)"
        first, second = asyncio.ensure_future(process.wait()), asyncio.ensure_future(process.wait())
        first.cancel()  # one waiter giving up leaves the others waiting

        process.send_signal(signal.SIGTERM)

        assert await asyncio.wait_for(second, 30) == -signal.SIGTERM
        assert process.returncode == -signal.SIGTERM
        assert repr(process) == f"WorkerProcess(pid={process.pid}, exited -15)"
        assert await process.wait() == -signal.SIGTERM
        process.kill()  # reaped: a no-op, never a signal to a reused PID
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 30)


def test_the_supervisor_keeps_its_own_signal_mask() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])

    async def spawn_and_stop() -> None:
        process = WorkerProcess.spawn([sys.executable, "-c", "pass"], pass_fds=())
        await asyncio.wait_for(process.wait(), 30)

    asyncio.run(spawn_and_stop())

    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before

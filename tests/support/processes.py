"""Other processes, as routerd's neighbours: one that must never be signalled, and /proc views
(signals, state, a process's TCP peers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

from tests.support.waiting import wait_until


@contextlib.contextmanager
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    """A `sleep 60`, stopped: a signal sent to it stays pending (see pending_signals), so a test
    can tell it was never signalled without waiting to see whether it dies."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        process.send_signal(signal.SIGSTOP)
        wait_until(lambda: process_state(process.pid) == "T", what="sleep to be stopped")
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def pending_signals(pid: int) -> set[signal.Signals]:
    """Signals sent to `pid` and not yet delivered (thread- and process-directed)."""
    mask = 0
    for line in proc_status(pid):
        name, _, value = line.partition(":")
        if name in ("SigPnd", "ShdPnd"):
            mask |= int(value, 16)
    return _signals_in(mask)


def ignored_signals(pid: int) -> set[signal.Signals]:
    for line in proc_status(pid):
        name, _, value = line.partition(":")
        if name == "SigIgn":
            return _signals_in(int(value, 16))
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


def process_state(pid: int) -> str:
    """One letter: R, S, T (stopped), Z (zombie), ..."""
    for line in proc_status(pid):
        name, _, value = line.partition(":")
        if name == "State":
            return value.split()[0]
    raise AssertionError(f"no State in /proc/{pid}/status")


def proc_status(pid: int) -> list[str]:
    with open(f"/proc/{pid}/status") as handle:
        return handle.read().splitlines()


def _signals_in(mask: int) -> set[signal.Signals]:
    return {signum for signum in signal.Signals if mask & (1 << (signum - 1))}


TCP_ESTABLISHED = "01"


def tcp_peer_ports(pid: int) -> set[int]:
    """Remote ports of the established IPv4 TCP connections `pid` holds: its socket inodes
    (/proc/<pid>/fd) looked up in its network namespace's table (/proc/<pid>/net/tcp)."""
    inodes: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            if link.startswith("socket:["):
                inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    ports: set[int] = set()
    try:
        with open(f"/proc/{pid}/net/tcp") as handle:
            next(handle, None)  # the column titles
            for line in handle:
                # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
                fields = line.split()
                if fields[3] == TCP_ESTABLISHED and fields[9] in inodes:
                    ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    except OSError:
        return set()
    return ports

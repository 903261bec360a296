"""Starting and stopping the processes a benchmark needs, and reading their CPU and memory.

Every process is started in its own session (so a Ctrl-C in the terminal reaches only the
harness, which then stops them in order) and is registered with a `ProcessGroup` that stops
everything it started, in reverse order, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(Exception):
    """Something a benchmark needs did not come up; the message says what and where to look."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the usual small race is acceptable for a benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy; raise BenchmarkError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchmarkError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def is_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """One started process, its log file and how to stop it."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.popen.returncode}"
        return f"Process({self.name!r}, pid={self.pid}, {state})"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> bool:
        """True while running; raises BenchmarkError with the log's tail once it has exited."""
        if not self.is_running():
            raise BenchmarkError(
                f"{self.name} exited with {self.popen.returncode}; log {self.log_path}:\n"
                f"{self.log_tail()}"
            )
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole session (children too)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # The process led its own session: anything it left behind is in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


class ProcessGroup:
    """Starts processes with logs under `workdir`; `stop_all()` (or leaving the `with`) stops
    them in reverse order of starting."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[Process] = []

    def __repr__(self) -> str:
        return f"ProcessGroup({len(self.processes)} processes in {self.workdir})"

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Process:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        with contextlib.suppress(ValueError):
            self.processes.remove(process)

    def stop_all(self) -> None:
        while self.processes:
            process = self.processes.pop()
            # Keep going even if one stop is interrupted: the rest must still be stopped.
            with contextlib.suppress(Exception):
                process.stop()


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

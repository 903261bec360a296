"""Starting and stopping the processes tests and benchmarks need: one launcher for both.

Every process is started in its own session with its output in a log file, so a Ctrl-C in the
terminal reaches only the test run or the benchmark harness, and stopping a process can take
the whole session with it (routerd's workers, nginx's workers). A `ProcessGroup` stops what it
started in reverse order, whatever happened. nats-server (tests/support/nats.py), routerd
(tests/support/routerd.py) and the test backends (tests/support/backends.py) start here; the
benchmarks start nginx, HAProxy and Gorouter here too. Nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


class ProcessExited(RuntimeError):
    """A process that should be running has exited; the message holds its log's tail."""


class Process:
    """One started process, its log file and how to stop it."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Process:
        """Start `argv` in a session of its own, stdout and stderr appended to `log_path`;
        `env` is added to this process's environment."""
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
        return cls(name, popen, log_path)

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.popen.returncode}"
        return f"Process({self.name!r}, pid={self.pid}, {state})"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited (negative: the signal that ended it), else None."""
        return self.popen.poll()

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_running(self) -> bool:
        """True while running; raises ProcessExited with the log's tail once it has exited."""
        if not self.is_running():
            raise ProcessExited(
                f"{self.name} exited with {self.popen.returncode}; log {self.log_path}:\n"
                f"{self.log_tail()}"
            )
        return True

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Its exit status; subprocess.TimeoutExpired if it still runs after `timeout`."""
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole session (children too); the
        exit status the process itself gave (None if it would not exit)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        returncode = self.popen.poll()
        # The process led its own session: anything it left behind is in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        return returncode


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
        """Start `argv` with its output in <workdir>/<name>.log."""
        process = Process.start(name, argv, self.workdir / f"{name}.log", env, cwd)
        self.processes.append(process)
        return process

    def stop(self, process: Process, timeout: float = 15.0) -> int | None:
        with contextlib.suppress(ValueError):
            self.processes.remove(process)
        return process.stop(timeout)

    def stop_all(self) -> None:
        while self.processes:
            process = self.processes.pop()
            # Keep going even if one stop is interrupted: the rest must still be stopped.
            with contextlib.suppress(Exception):
                process.stop()

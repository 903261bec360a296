"""routerctl's exit codes and its one small error family.

Every failure becomes one line on stderr and one of these exit codes; never a traceback.
"""

from __future__ import annotations

import os
import socket
from typing import Final

EXIT_OK: Final = 0
# The router answered, but /health is not 200 (starting, draining), or a drain did not finish.
EXIT_UNHEALTHY: Final = 1
# Bad options or option values (click's own code for usage errors), an unreadable config,
# credentials the status server refused, or a registration that fails validation.
EXIT_USAGE: Final = 2
# Nothing answered: the status server, NATS, or the route table file is not there, or no
# routerd holds run_dir's lock (a stale PID file).
EXIT_UNREACHABLE: Final = 3
# Interrupted by Ctrl-C outside `register --heartbeat` (the shell's convention, 128 + SIGINT).
EXIT_INTERRUPTED: Final = 130


class CtlError(Exception):
    """A failure to report as one line; `exit_code` says which kind."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageProblem(CtlError):
    exit_code = EXIT_USAGE


class Unreachable(CtlError):
    exit_code = EXIT_UNREACHABLE


class Unhealthy(CtlError):
    exit_code = EXIT_UNHEALTHY


def describe_os_error(exc: BaseException) -> str:
    """`connection refused`, `timed out`, `name or service not known`: short and lower-case."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    errno = getattr(exc, "errno", None)
    strerror: object = getattr(exc, "strerror", None)
    if isinstance(exc, OSError) and not isinstance(exc, socket.gaierror) and errno and errno > 0:
        # asyncio words refusals as "Connect call failed (...)"; the errno says it plainly.
        strerror = os.strerror(errno)
    if isinstance(strerror, str) and strerror:
        return strerror[:1].lower() + strerror[1:]
    text = str(exc).strip()
    return text or type(exc).__name__

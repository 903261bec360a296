"""Running one of benchmarks/'s own proxies as several processes on one port (SO_REUSEPORT), as
routerd runs its workers: this process serves, and starts the others."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any

import uvloop


def serve_copies(
    module: str, args: list[str], copies: int, serve: Coroutine[Any, Any, None]
) -> None:
    """Start `copies - 1` more `python -m <module> <args>` (each one copy), then run `serve` on
    uvloop here until it returns; the others are stopped on the way out."""
    extra = [subprocess.Popen([sys.executable, "-m", module, *args]) for _ in range(copies - 1)]
    try:
        uvloop.run(serve)
    finally:
        for child in extra:
            child.terminate()
        for child in extra:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)

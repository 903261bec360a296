"""Running one of benchmarks/'s own proxies as several processes on one port (SO_REUSEPORT), as
routerd runs its workers: this process serves, and starts the others.

    python -m benchmarks.<module> --port 8080 --backend-port 9000 [--processes 2]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

Serve = Callable[[int, int], Coroutine[Any, Any, None]]


def run_copies(module: str, argv: list[str] | None, serve: Serve) -> None:
    """Parse the command line; start `--processes` - 1 more `python -m <module>` (one copy
    each), then run `serve(port, backend_port)` on uvloop here until it returns. The others
    are stopped on the way out."""
    parser = argparse.ArgumentParser(prog=module.rpartition(".")[2])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend-port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    own = ["--port", str(args.port), "--backend-port", str(args.backend_port)]
    extra = [
        subprocess.Popen([sys.executable, "-m", module, *own]) for _ in range(args.processes - 1)
    ]
    try:
        uvloop.run(serve(args.port, args.backend_port))
    finally:
        for child in extra:
            child.terminate()
        for child in extra:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)

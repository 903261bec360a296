"""routerd raises its own soft RLIMIT_NOFILE to the hard limit at start; workers inherit it.

A router holds two descriptors per proxied request (client and backend) plus idle pooled ones,
so a shell's soft 1024 runs out at a few hundred clients per worker while the hard limit (what
the operator or systemd's LimitNOFILE allows) is far above. Raising soft to hard needs no
privilege. An unlimited hard limit is capped at the kernel's fs.nr_open, the most setrlimit takes.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from runtime.logs import EventLog

log = EventLog("vcap.gorouter.supervisor")

NR_OPEN_PATH = "/proc/sys/fs/nr_open"


@dataclass(frozen=True)
class FdLimit:
    soft_before: int
    hard_before: int
    soft: int
    hard: int
    error: str | None = None


def target_soft_limit(soft: int, hard: int, nr_open: int | None) -> int:
    """The soft limit to ask for: the hard limit (capped at nr_open if unlimited), never lower."""
    if soft == resource.RLIM_INFINITY:
        return soft
    if hard == resource.RLIM_INFINITY:
        if nr_open is None:
            return soft
        hard = nr_open
    return max(soft, hard)


def raise_fd_limit() -> FdLimit:
    """Raise the soft limit as far as allowed, log the result once (`fd-limit`), return it."""
    soft_before, hard_before = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target_soft_limit(soft_before, hard_before, _nr_open())
    error = None
    if wanted != soft_before:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard_before))
        except (OSError, ValueError) as exc:
            error = str(exc)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    result = FdLimit(soft_before, hard_before, soft, hard, error)
    fields = {
        "soft_before": _shown(soft_before),
        "hard_before": _shown(hard_before),
        "soft": _shown(soft),
        "hard": _shown(hard),
    }
    if error is not None:
        log.error("fd-limit", **fields, error=error)
    else:
        log.info("fd-limit", **fields)
    return result


def _nr_open() -> int | None:
    try:
        with open(NR_OPEN_PATH) as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None


def _shown(limit: int) -> int | str:
    return "unlimited" if limit == resource.RLIM_INFINITY else limit

"""Garbage-collector settings for routerd's processes, in one place.

Both kinds of process allocate many short-lived objects (a request's, a registration's) that
reference counting frees at once; the collector only needs to find cycles, and Python's default
gen-0 threshold (700 allocations) would run it every few dozen requests. Long-lived data — route
table records in workers (untracked, see registry/records.py), the supervisor's route table —
would make frequent full passes long.
"""

from __future__ import annotations

import gc
from typing import Final

# Workers: a pass every ~10k container allocations; start-up objects are frozen.
WORKER: Final = (10_000, 20, 20)
# The supervisor: registration storms create the table's objects in bursts.
SUPERVISOR: Final = (50_000, 20, 20)


def tune_worker() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER)


def tune_supervisor() -> None:
    gc.set_threshold(*SUPERVISOR)

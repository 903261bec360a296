"""Worker lifecycle as data: the states and the only transitions allowed between them."""

from __future__ import annotations

import enum
from typing import Final


class WorkerState(enum.Enum):
    STARTING = "starting"  # process spawned, not yet serving
    READY = "ready"  # serving requests
    STOPPING = "stopping"  # asked to stop (drain or shutdown)
    BACKOFF = "backoff"  # died unexpectedly; waiting before a respawn
    STOPPED = "stopped"  # exited as asked; not coming back


class IllegalTransition(Exception):
    def __init__(self, current: WorkerState, target: WorkerState) -> None:
        super().__init__(f"worker cannot go from {current.value} to {target.value}")


TRANSITIONS: Final[dict[WorkerState, frozenset[WorkerState]]] = {
    WorkerState.STARTING: frozenset({WorkerState.READY, WorkerState.BACKOFF, WorkerState.STOPPING}),
    WorkerState.READY: frozenset({WorkerState.BACKOFF, WorkerState.STOPPING}),
    WorkerState.BACKOFF: frozenset({WorkerState.STARTING, WorkerState.STOPPED}),
    WorkerState.STOPPING: frozenset({WorkerState.STOPPED}),
    WorkerState.STOPPED: frozenset(),
}


def transition(current: WorkerState, target: WorkerState) -> WorkerState:
    """Return `target` if the move is legal; raise IllegalTransition otherwise."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target

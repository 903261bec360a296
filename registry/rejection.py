"""A rejected input, as a value: callers log and count it; nothing is raised."""

from __future__ import annotations

import msgspec


class Rejection(msgspec.Struct, frozen=True):
    """Why an input was skipped: `reason` for people, `code` a stable key to count it by."""

    reason: str
    code: str = "invalid"

    def __bool__(self) -> bool:
        return False

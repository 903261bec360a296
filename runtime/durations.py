"""Durations as Gorouter writes them: a number of seconds, or a Go string like "5s"."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class Duration(float):
    """Seconds, as a float; a distinct type so the config decoder knows to parse strings."""

    def __repr__(self) -> str:
        return f"Duration({float(self)!r})"


def parse_duration(value: object) -> Duration:
    """Parse `5`, `2.5`, `"5s"`, `"500ms"` or `"1m30s"`; ValueError says what was expected."""
    if isinstance(value, bool):
        raise ValueError(_EXPECTED)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_string(value.strip())
    else:
        raise ValueError(_EXPECTED)
    if not math.isfinite(seconds):  # float() takes "nan" and "inf"; no timer can use them
        raise ValueError(_EXPECTED)
    if seconds < 0:
        raise ValueError("expected a duration >= 0")
    return Duration(seconds)


_EXPECTED = 'expected a duration: seconds as a number, or a string like "5s", "500ms", "1m30s"'


def _parse_string(text: str) -> float:
    if not text:
        raise ValueError(_EXPECTED)
    # Plain numbers in quotes are seconds, as with unquoted ones.
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    negative = text.startswith("-")
    if negative:
        pos = 1
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(_EXPECTED)
        total += float(match[1]) * _UNIT_SECONDS[match[2]]
        pos = match.end()
    if pos == int(negative):
        raise ValueError(_EXPECTED)
    return -total if negative else total

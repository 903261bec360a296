"""Component ids: the small numbers workers count Gorouter's per-`component` metrics under.

Gorouter labels request, response and latency metrics with the endpoint's `component` tag
(`route-emitter` for apps, `CloudController`, `uaa`, ...). Workers cannot share a dict of names,
so the supervisor gives each name an id, carries it in the endpoint's record, and workers count
under `COMPONENT_BASE + id * COMPONENT_WORDS` (registry/shm/counters.py).

An id is never given to another name: counters keep counting up under the name they started
with. The ids run out after `MAX_COMPONENTS - 2` distinct names; later names are counted under
`OVERFLOW`, which every total includes but no per-component series shows.
"""

from __future__ import annotations

from typing import Final

from registry.shm.counters import MAX_COMPONENTS

OVERFLOW: Final = 0
UNTAGGED: Final = 1  # endpoints without a component tag: Gorouter's component=""


class ComponentIds:
    def __init__(self, capacity: int = MAX_COMPONENTS) -> None:
        self.capacity = capacity
        self._ids: dict[str, int] = {"": UNTAGGED}
        self.names: list[str | None] = [None, ""]  # by id; OVERFLOW has no name

    def __repr__(self) -> str:
        return f"ComponentIds({len(self.names) - 2} named, capacity={self.capacity})"

    def id_of(self, tags: dict[str, str]) -> int:
        """The id for an endpoint with these tags, given one now if the name is new."""
        name = tags.get("component", "")
        found = self._ids.get(name)
        if found is not None:
            return found
        if len(self.names) >= self.capacity:
            return OVERFLOW
        new = len(self.names)
        self._ids[name] = new
        self.names.append(name)
        return new

    def named(self) -> list[tuple[int, str]]:
        """(id, name) of every id that has a name, the untagged one first."""
        return [(index, name) for index, name in enumerate(self.names) if name is not None]

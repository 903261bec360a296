"""Choosing instances on request: `X-Cf-App-Instance`, `X-Cf-Process-Instance` and sticky
sessions (`__VCAP_ID__`)."""

from __future__ import annotations

import re
from typing import Final

from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection

# Gorouter's format: a lower-case UUID, a colon, an index.
APP_INSTANCE: Final = re.compile(r"^(?P<id>[\da-f]{8}-(?:[\da-f]{4}-){3}[\da-f]{12}):(?P<idx>\d+)$")
# Gorouter's format: a lower-case process UUID, then optionally a colon and an index.
PROCESS_INSTANCE: Final = re.compile(
    r"^(?P<id>[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})(?::(?P<idx>[0-9]+))?$"
)
# The registration tag naming an endpoint's process (Diego's route emitter sets it).
PROCESS_ID_TAG: Final = "process_id"


class AppInstance:
    def __init__(self, app_id: str, index: str) -> None:
        self.app_id = app_id
        self.index = index

    def __repr__(self) -> str:
        return f"AppInstance({self.app_id}:{self.index})"


def parse_app_instance(value: str) -> AppInstance | Rejection:
    match = APP_INSTANCE.match(value.strip())
    if match is None:
        return Rejection("Invalid X-CF-App-Instance Header")
    return AppInstance(match["id"], match["idx"])


def find_app_instance(pool: PoolRecord, wanted: AppInstance) -> EndpointRecord | None:
    for endpoint in pool.endpoints:
        if endpoint.app_id == wanted.app_id and endpoint.instance_index == wanted.index:
            return endpoint
    return None


def parse_process_instance(value: str) -> AppInstance | Rejection:
    """`PROCESS_GUID:INDEX`, or `PROCESS_GUID` alone (any instance of the process: index "")."""
    match = PROCESS_INSTANCE.match(value.strip())
    if match is None:
        return Rejection("Invalid X-CF-Process-Instance Header")
    return AppInstance(match["id"], match["idx"] or "")


def find_process_instances(pool: PoolRecord, wanted: AppInstance) -> tuple[EndpointRecord, ...]:
    """The endpoints of the process `wanted.app_id` (its instance `wanted.index`, if given)."""
    return tuple(
        endpoint
        for endpoint in pool.endpoints
        if endpoint.tags.get(PROCESS_ID_TAG) == wanted.app_id
        and (not wanted.index or endpoint.instance_index == wanted.index)
    )


def find_sticky(pool: PoolRecord, instance_id: str) -> EndpointRecord | None:
    for endpoint in pool.endpoints:
        if endpoint.instance_id == instance_id:
            return endpoint
    return None

"""X-Cf-Process-Instance values and the endpoints they choose (registry/instances.py)."""

from __future__ import annotations

import pytest

from registry.instances import AppInstance, find_process_instances, parse_process_instance
from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection

PROCESS = "1a1b1c1d-2e2f-4333-8444-5a5b5c5d5e5f"
OTHER = "9a9b9c9d-2e2f-4333-8444-5a5b5c5d5e5f"


@pytest.mark.parametrize(
    ("value", "index"), [(f"{PROCESS}:3", "3"), (PROCESS, ""), (f" {PROCESS}:12 ", "12")]
)
def test_valid_values(value, index):
    parsed = parse_process_instance(value)
    assert isinstance(parsed, AppInstance)
    assert (parsed.app_id, parsed.index) == (PROCESS, index)


INVALID = [
    f"{PROCESS}:",
    f"{PROCESS}:x",
    PROCESS.upper(),
    f"{PROCESS}:1:2",
    ":1",
    "",
    f"{PROCESS}:\u0661",  # a digit outside ASCII, which Go's \d does not match
]


@pytest.mark.parametrize("value", INVALID)
def test_invalid_values(value):
    parsed = parse_process_instance(value)
    assert isinstance(parsed, Rejection)
    assert parsed.reason == "Invalid X-CF-Process-Instance Header"


def endpoint(slot: int, process: str, index: str) -> EndpointRecord:
    return EndpointRecord(
        slot, "127.0.0.1", 8000 + slot, instance_index=index, tags={"process_id": process}
    )


POOL = PoolRecord(
    "a.example.com",
    "",
    (endpoint(0, PROCESS, "0"), endpoint(1, PROCESS, "1"), endpoint(2, OTHER, "0")),
)


def test_process_and_index_choose_one_endpoint():
    chosen = find_process_instances(POOL, AppInstance(PROCESS, "1"))
    assert [e.slot for e in chosen] == [1]


def test_process_alone_chooses_all_its_instances():
    chosen = find_process_instances(POOL, AppInstance(PROCESS, ""))
    assert [e.slot for e in chosen] == [0, 1]


def test_unknown_process_or_index_chooses_none():
    assert find_process_instances(POOL, AppInstance(PROCESS, "7")) == ()
    assert find_process_instances(POOL, AppInstance("0" * 8 + PROCESS[8:], "")) == ()

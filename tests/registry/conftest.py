"""Fixtures for registry tests: a route table published into shared memory and read back."""

from __future__ import annotations

import pytest

from tests.registry.tables import SharedTable


@pytest.fixture
def shared() -> SharedTable:
    return SharedTable()


@pytest.fixture
def shared_keeping_empty_pools() -> SharedTable:
    """Gorouter's empty_pool_timeout > 0: an emptied pool stays (and answers 503) for a while."""
    return SharedTable(empty_pool_timeout=60.0)

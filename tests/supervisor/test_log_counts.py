"""/varz `log_counts`: every process's component log lines by level, the workers' summed with the
supervisor's (each worker counts its own in its shared-memory row)."""

from __future__ import annotations

from collections import Counter

import pytest

from runtime.logs import LEVELS
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NAMES = {level: name for name, level in LEVELS.items()}
HOST = "gone.example.com"


def counted_in_the_log(router: Routerd) -> dict[str, int]:
    return dict(Counter(NAMES[event["log_level"]] for event in router.log_events()))


def test_log_counts_sum_the_lines_of_every_process(nats_server):
    router = new_routerd(nats_server.port, {"workers": 2})
    router.start()
    try:
        with NatsClient(nats_server.port) as nats:
            register(nats, free_port(), [HOST])  # nothing listens there
        # Each failed attempt is an error line from the worker that made it.
        wait_until(lambda: router.get("/", host=HOST).status == 502, what=f"{HOST} to fail")
        assert len(router.events_named("backend-endpoint-failed")) >= 1

        def counts_agree() -> dict[str, int] | None:
            counts = router.varz()["log_counts"]
            return counts if counts == counted_in_the_log(router) else None

        counts = wait_until(counts_agree, what="log_counts to match the lines logged")
        assert counts["error"] >= 1
        # Both workers' "worker-serving" lines are among the info lines counted.
        assert len(router.events_named("worker-serving")) == 2
    finally:
        router.stop()

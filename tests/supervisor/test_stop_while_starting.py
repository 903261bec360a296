"""Ctrl-C (SIGINT) while routerd is still starting stops it cleanly: exit 0, no start failure,
no forced stop. The hardest moment is the one at which the workers become ready; a signal then
used to leave the start task running into "router cannot go from stopping to running", exit 1
and killed workers. Each attempt lands on that moment about a third of the time."""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.routerd import new_routerd

pytestmark = pytest.mark.integration

ATTEMPTS = 3


def test_sigint_as_the_workers_become_ready_stops_cleanly(nats_server):
    for attempt in range(ATTEMPTS):
        router = new_routerd(nats_server.port, {"workers": 1})
        router.start(wait_healthy=False)
        try:
            # The worker logs worker-serving just before it reports ready to the supervisor.
            deadline = time.monotonic() + 30
            while router.log_text().count('"worker-serving"') < 1:
                assert time.monotonic() < deadline, router.log_text()
                assert router.process is not None and router.process.is_running()
            router.signal(signal.SIGINT)
            code = router.wait_exit(timeout=30)
        finally:
            router.stop()
        names = [event["message"] for event in router.log_events()]
        assert code == 0, (attempt, router.log_text())
        assert "router-failed-to-start" not in names, attempt
        assert "router-stop-forced" not in names, attempt
        assert names[-1] == "router-stopped"

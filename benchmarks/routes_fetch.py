"""What fetching the status server's /routes costs the supervisor's event loop.

The supervisor's one event loop also applies NATS messages and answers /health, so while a
large /routes is built, /health is asked again and again on another connection: its slowest
answer is how long the loop stood still (a loop-lag probe seen from outside).
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

from tests.support.routerd import Routerd

HEALTH_PAUSE = 0.001


class HealthProbe(threading.Thread):
    """Times GET /health over one keep-alive connection until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(name="health-probe", daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while not self._halt.is_set():
                started = time.perf_counter()
                try:
                    connection.request("GET", "/health")
                    response = connection.getresponse()
                    response.read()
                except OSError:
                    self.failures += 1
                    connection.close()
                    continue
                self.latencies.append(time.perf_counter() - started)
                time.sleep(HEALTH_PAUSE)
        finally:
            connection.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=60)


def fetch_routes(router: Routerd, fetches: int) -> dict[str, Any]:
    """Fetch /routes `fetches` times, one after another, with the /health probe running."""
    probe = HealthProbe(router.status_port)
    probe.start()
    time.sleep(0.2 if fetches else 3)  # the probe's idle baseline
    took, size = [], 0
    try:
        for _ in range(fetches):
            started = time.perf_counter()
            response = router.status_request("GET", "/routes?ttl_left=1", timeout=60)
            took.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"/routes answered {response.status}")
            size = len(response.body)
    finally:
        probe.stop()
    latencies = sorted(probe.latencies)
    return {
        "fetches": fetches,
        "routes_bytes": size,
        "routes_seconds_max": round(max(took), 3) if took else None,
        "health_probes": len(latencies),
        "health_failures": probe.failures,
        "health_max_ms": round(1000 * latencies[-1], 1) if latencies else None,
        "health_p99_ms": (
            round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
            if latencies
            else None
        ),
    }

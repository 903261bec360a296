"""100 MB each way passes through a worker without the worker's memory growing with it."""

from __future__ import annotations

import hashlib
import http.client

import pytest

from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration
SIZE = 100 * 1024 * 1024
BLOCK = 256 * 1024
HOST = "large.example.com"


def memory_kib(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def test_100mb_upload_and_download_keep_worker_memory_flat(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory(name="large")
    router = routerd_factory({"workers": 1})
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    worker_pid = router.status_json("/varz")["workers"][0]["pid"]
    before = memory_kib(worker_pid)["VmRSS"]

    block = bytes(range(256)) * (BLOCK // 256)
    digest = hashlib.sha256()

    def upload_body():
        for _ in range(SIZE // BLOCK):
            digest.update(block)
            yield block

    connection = http.client.HTTPConnection("127.0.0.1", router.port, timeout=60)
    connection.request(
        "POST", "/upload", body=upload_body(), headers={"Host": HOST, "Content-Length": str(SIZE)}
    )
    echo = __import__("json").loads(connection.getresponse().read())
    assert echo["body_len"] == SIZE
    assert echo["body_sha256"] == digest.hexdigest()

    connection.request("GET", f"/bytes/{SIZE}", headers={"Host": HOST})
    response = connection.getresponse()
    assert response.status == 200
    received = 0
    while chunk := response.read(BLOCK):
        received += len(chunk)
    connection.close()
    assert received == SIZE

    peak = memory_kib(worker_pid)["VmHWM"]
    growth_mib = (peak - before) / 1024
    assert growth_mib < 50, f"worker peak RSS grew by {growth_mib:.1f} MiB"

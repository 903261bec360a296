"""A gRPC unary echo service (grpcio), the backend of the HTTP/2 benchmark's gRPC rows.

`python -m benchmarks.grpc_echo --port N` serves `/bench.Echo/Say` over prior-knowledge h2c on
127.0.0.1:N and answers each request with its own message. The message stays bytes (no
protobuf): grpcio passes raw bytes through when a handler has no (de)serializer, and the
benchmark measures the router, not message decoding.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from typing import Any

import grpc

SERVICE = "bench.Echo"
METHOD = "Say"
PATH = f"/{SERVICE}/{METHOD}"


def say(request: bytes, context: Any) -> bytes:
    return request


def frame(message: bytes) -> bytes:
    """One uncompressed gRPC message as it travels in an HTTP/2 DATA frame."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.threads))
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(say)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()

"""Throughput and latency harness: routerd against nginx, HAProxy, a naive aiohttp proxy, the
Python floor (floor_proxy.py) and a direct connection, plus shared-table micro benchmarks and a
NATS registration storm.

Run from the repository root: `python -m benchmarks.run [--quick] [--only proxy|table|storm]`.
Every figure that compares implementations is a ratio measured side by side in one run.
"""

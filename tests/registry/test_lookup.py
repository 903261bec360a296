"""Lookup semantics, end to end: RouteTable → TableWriter → shared memory → TableReader → find."""

from __future__ import annotations

import pytest

from registry.instances import AppInstance, find_app_instance, find_sticky, parse_app_instance
from registry.rejection import Rejection
from tests.registry.tables import SharedTable

A, B, C, D = "10.0.0.1:8001", "10.0.0.2:8002", "10.0.0.3:8003", "10.0.0.4:8004"


def test_unknown_host_finds_nothing(shared: SharedTable) -> None:
    shared.register("app.example.com", address=A)
    shared.publish()
    assert shared.find("other.example.com") is None
    assert shared.find("example.com") is None


def test_registered_route_is_found_only_after_publish(shared: SharedTable) -> None:
    shared.register("app.example.com", address=A)
    assert shared.find("app.example.com") is None
    shared.publish()
    assert shared.addresses("app.example.com") == {A}


def test_request_host_is_matched_case_insensitively(shared: SharedTable) -> None:
    shared.register("App.Example.COM.", address=A)
    shared.publish()
    assert shared.addresses("APP.example.com:8080") == {A}
    assert shared.addresses("app.example.com.") == {A}


def test_exact_host_beats_wildcard(shared: SharedTable) -> None:
    shared.register("*.example.com", address=A)
    shared.register("app.example.com", address=B)
    shared.publish()
    assert shared.addresses("app.example.com") == {B}
    assert shared.addresses("other.example.com") == {A}
    assert shared.addresses("deep.other.example.com") == {A}
    assert shared.find("example.com") is None  # a wildcard never matches the bare domain


def test_deeper_wildcard_beats_shallower(shared: SharedTable) -> None:
    shared.register("*.example.com", address=A)
    shared.register("*.b.example.com", address=B)
    shared.publish()
    assert shared.addresses("x.b.example.com") == {B}
    assert shared.addresses("y.x.b.example.com") == {B}
    assert shared.addresses("x.c.example.com") == {A}
    assert shared.addresses("b.example.com") == {A}


def test_wildcard_chain_falls_back_label_by_label(shared: SharedTable) -> None:
    chain = [("*.com", A), ("*.c.com", B), ("*.b.c.com", C), ("a.b.c.com", D)]
    for uri, address in chain:
        shared.register(uri, address=address)
        shared.publish()
        assert shared.addresses("a.b.c.com") == {address}, uri
    for (uri, address), (_, fallback) in zip(chain[:0:-1], chain[-2::-1], strict=True):
        shared.unregister(uri, address=address)
        shared.publish()
        assert shared.addresses("a.b.c.com") == {fallback}, uri
    shared.unregister("*.com", address=A)
    shared.publish()
    assert shared.find("a.b.c.com") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "root"),
        ("", "root"),
        ("/foo", "foo"),
        ("/foo/", "foo"),
        ("/FOO", "foo"),
        ("/foo/bar", "foo/bar"),
        ("/foo/bar/", "foo/bar"),
        ("/Foo/Bar/baz/qux", "foo/bar"),
        ("/foo/barn", "foo"),
        ("/foo/ba", "foo"),
        ("/foobar", "root"),
        ("/fo", "root"),
        ("/other/foo", "root"),
    ],
)
def test_longest_context_path_by_whole_segments(
    shared: SharedTable, path: str, expected: str
) -> None:
    shared.register("app.example.com", address=A)
    shared.register("app.example.com/foo", address=B)
    shared.register("app.example.com/foo/bar", address=C)
    shared.publish()
    pool = shared.find("app.example.com", path)
    assert pool is not None
    assert {"root": "", "foo": "/foo", "foo/bar": "/foo/bar"}[expected] == pool.path
    assert {e.address for e in pool.endpoints} == {"root": {A}, "foo": {B}, "foo/bar": {C}}[
        expected
    ]


def test_context_path_without_root_route(shared: SharedTable) -> None:
    shared.register("app.example.com/foo", address=A)
    shared.publish()
    assert shared.addresses("app.example.com", "/foo/x") == {A}
    assert shared.find("app.example.com", "/") is None
    assert shared.find("app.example.com", "/foobar") is None


def test_escaped_request_path_matches_route_registered_unescaped(shared: SharedTable) -> None:
    shared.register("app.example.com/ünï", address=A)
    shared.register("app.example.com/a b", address=B)
    shared.publish()
    # Clients send paths percent-escaped, in either case of hex digits.
    assert shared.addresses("app.example.com", "/%C3%BCn%C3%AF/page") == {A}
    assert shared.addresses("app.example.com", "/%c3%bcn%c3%af") == {A}
    assert shared.addresses("app.example.com", "/a%20b") == {B}


def test_exact_host_with_no_matching_path_falls_through_to_wildcard(shared: SharedTable) -> None:
    shared.register("app.example.com/foo", address=A)
    shared.register("*.example.com", address=B)
    shared.publish()
    assert shared.addresses("app.example.com", "/foo") == {A}
    assert shared.addresses("app.example.com", "/bar") == {B}


def test_exact_host_root_beats_wildcard_with_longer_path(shared: SharedTable) -> None:
    shared.register("app.example.com", address=A)
    shared.register("*.example.com/api", address=B)
    shared.publish()
    assert shared.addresses("app.example.com", "/api") == {A}
    assert shared.addresses("other.example.com", "/api") == {B}
    assert shared.find("other.example.com", "/") is None


def test_emptied_context_path_falls_back_to_root(
    shared_keeping_empty_pools: SharedTable,
) -> None:
    shared = shared_keeping_empty_pools
    shared.register("app.example.com", address=A)
    shared.register("app.example.com/foo", address=B)
    shared.unregister("app.example.com/foo", address=B)
    shared.publish()
    assert shared.addresses("app.example.com", "/foo") == {A}


def test_emptied_pool_still_answers_when_nothing_else_matches(
    shared_keeping_empty_pools: SharedTable,
) -> None:
    shared = shared_keeping_empty_pools
    shared.register("app.example.com/foo", address=A)
    shared.unregister("app.example.com/foo", address=A)
    shared.publish()
    pool = shared.find("app.example.com", "/foo/x")
    assert pool is not None  # the worker answers 503 (empty pool), not 404 (unknown route)
    assert (pool.path, pool.endpoints) == ("/foo", ())
    shared.now += 61
    assert shared.table.drop_expired_empty_pools(shared.now)
    shared.publish()
    assert shared.find("app.example.com", "/foo/x") is None


def test_unregistered_route_disappears_after_publish(shared: SharedTable) -> None:
    shared.register("app.example.com", address=A)
    shared.register("app.example.com", address=B)
    shared.publish()
    assert shared.addresses("app.example.com") == {A, B}
    shared.unregister("app.example.com", address=A)
    shared.publish()
    assert shared.addresses("app.example.com") == {B}
    shared.unregister("app.example.com", address=B)
    shared.publish()
    assert shared.find("app.example.com") is None


def test_pool_carries_route_service_and_algorithm(shared: SharedTable) -> None:
    shared.register(
        "app.example.com",
        address=A,
        route_service_url="https://rs.example.com",
        options={"loadbalancing": "least-connection"},
    )
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    assert (pool.route_service_url, pool.load_balancing) == (
        "https://rs.example.com",
        "least-connection",
    )


def test_unknown_algorithm_joins_the_pool_and_keeps_its_algorithm(shared: SharedTable) -> None:
    # Gorouter's setPoolLoadBalancingAlgorithm: an invalid algorithm changes nothing.
    shared.register("app.example.com", address=A, options={"loadbalancing": "least-connection"})
    shared.register("app.example.com", address=B, options={"loadbalancing": "magic"})
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    assert pool.load_balancing == "least-connection"
    assert shared.addresses("app.example.com") == {A, B}


def test_hash_properties_reach_workers_and_leave_with_the_algorithm(shared: SharedTable) -> None:
    hashed = {"loadbalancing": "hash", "hash_header": "X-Tenant", "hash_balance": 1.5}
    shared.register("app.example.com", address=A, options=hashed)
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    assert (pool.load_balancing, pool.hash_header, pool.hash_balance) == ("hash", "X-Tenant", 1.5)
    # An endpoint without options leaves the pool as it is; a new header is taken at once.
    shared.register("app.example.com", address=B)
    shared.register("app.example.com", address=A, options={**hashed, "hash_header": "X-User"})
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    assert (pool.load_balancing, pool.hash_header) == ("hash", "X-User")
    # Gorouter clears the hash properties when the pool switches algorithm.
    shared.register("app.example.com", address=B, options={"loadbalancing": "round-robin"})
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    assert (pool.load_balancing, pool.hash_header, pool.hash_balance) == ("round-robin", "", 0.0)


def test_unchanged_shards_are_not_decoded_again(shared: SharedTable) -> None:
    shared.register("app.example.com", address=A)
    shared.publish()
    assert shared.find("app.example.com") is not None
    decodes = shared.reader.decodes
    for _ in range(10):
        assert shared.find("app.example.com") is not None
    assert shared.reader.decodes == decodes
    shared.register("app.example.com", address=B)
    shared.publish()
    assert shared.addresses("app.example.com") == {A, B}
    assert shared.reader.decodes == decodes + 1


APP_ID = "7c8a4bd2-7f8b-4b1f-9d52-3a1e2d9c0b6f"


@pytest.mark.parametrize(
    "header",
    [
        f"{APP_ID}:0",
        f" {APP_ID}:12 ",
    ],
)
def test_valid_app_instance_header(header: str) -> None:
    instance = parse_app_instance(header)
    assert isinstance(instance, AppInstance)
    assert instance.app_id == APP_ID


@pytest.mark.parametrize(
    "header",
    [
        "",
        APP_ID,
        f"{APP_ID}:",
        f"{APP_ID}:x",
        f"{APP_ID.upper()}:0",
        "not-a-guid:0",
        f"{APP_ID}:1:2",
    ],
)
def test_invalid_app_instance_header(header: str) -> None:
    assert parse_app_instance(header) == Rejection("Invalid X-CF-App-Instance Header")


def test_app_instance_and_sticky_session_pick_one_endpoint(shared: SharedTable) -> None:
    for index, address in enumerate((A, B, C)):
        shared.register(
            "app.example.com",
            address=address,
            app=APP_ID,
            private_instance_index=str(index),
            private_instance_id=f"instance-{index}",
        )
    shared.publish()
    pool = shared.find("app.example.com")
    assert pool is not None
    wanted = parse_app_instance(f"{APP_ID}:1")
    assert isinstance(wanted, AppInstance)
    found = find_app_instance(pool, wanted)
    assert found is not None and found.address == B
    assert find_app_instance(pool, AppInstance(APP_ID, "3")) is None
    sticky = find_sticky(pool, "instance-2")
    assert sticky is not None and sticky.address == C
    assert find_sticky(pool, "instance-9") is None

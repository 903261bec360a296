"""Route keys: how registered uris and request hosts are normalised, and the lookup order."""

from __future__ import annotations

import pytest

from registry.hostnames import normalize_host
from registry.rejection import Rejection
from registry.routekey import (
    RouteKey,
    host_candidates,
    normalize_path,
    path_prefixes,
    route_key_from_uri,
)


@pytest.mark.parametrize(
    ("host", "normalised"),
    [
        ("app.example.com", "app.example.com"),
        ("App.Example.COM", "app.example.com"),
        ("app.example.com:8080", "app.example.com"),
        ("APP.example.com:443", "app.example.com"),
        ("app.example.com.", "app.example.com"),
        ("app.example.com.:80", "app.example.com"),
        ("  app.example.com  ", "app.example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("", ""),
    ],
)
def test_normalize_host(host: str, normalised: str) -> None:
    assert normalize_host(host) == normalised


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("app.example.com", RouteKey("app.example.com")),
        ("App.Example.COM", RouteKey("app.example.com")),
        ("app.example.com:8080", RouteKey("app.example.com")),
        ("app.example.com.", RouteKey("app.example.com")),
        ("app.example.com/", RouteKey("app.example.com")),
        ("app.example.com/api", RouteKey("app.example.com", "/api")),
        ("app.example.com/API/V1", RouteKey("app.example.com", "/api/v1")),
        ("app.example.com/api/", RouteKey("app.example.com", "/api")),
        ("app.example.com/api//", RouteKey("app.example.com", "/api")),
        ("app.example.com/api?version=2", RouteKey("app.example.com", "/api")),
        ("app.example.com:8080/api/", RouteKey("app.example.com", "/api")),
        ("app.example.com/a b", RouteKey("app.example.com", "/a%20b")),
        ("app.example.com/a%20b", RouteKey("app.example.com", "/a%20b")),
        ("app.example.com/ünï", RouteKey("app.example.com", "/%c3%bcn%c3%af")),
        ("app.example.com/%C3%BCn%C3%AF", RouteKey("app.example.com", "/%c3%bcn%c3%af")),
        ("app.example.com/a#b", RouteKey("app.example.com", "/a%23b")),
        ("app.example.com/a:b@c;d=e", RouteKey("app.example.com", "/a:b@c;d=e")),
        ("*.example.com", RouteKey("*.example.com")),
        ("*.Example.com/api", RouteKey("*.example.com", "/api")),
        ("my_app.example.com", RouteKey("my_app.example.com")),
        ("[::1]:8080/x", RouteKey("[::1]", "/x")),
    ],
)
def test_route_key_from_uri(uri: str, key: RouteKey) -> None:
    assert route_key_from_uri(uri) == key


def test_escaped_and_unescaped_paths_make_the_same_key() -> None:
    # A registration may send either form; a request always arrives escaped.
    assert route_key_from_uri("a.com/ünï") == route_key_from_uri("a.com/%c3%bcn%c3%af")
    assert normalize_path("/%C3%BCn%C3%AF/") == "/%c3%bcn%c3%af"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example.com", "must not have a scheme"),
        ("https://app.example.com/x", "must not have a scheme"),
        ("", "has no host"),
        ("/path/only", "has no host"),
        (":8080", "has no host"),
        ("app..example.com", "has an invalid host"),
        ("-app.example.com", "has an invalid host"),
        ("app-.example.com", "has an invalid host"),
        ("app.*.example.com", "has an invalid host"),
        ("*.*.example.com", "has an invalid host"),
        ("app example.com", "has an invalid host"),
        ("app!.example.com", "has an invalid host"),
        ("ä.example.com", "has an invalid host"),
        ("a" * 64 + ".example.com", "has an invalid host"),
        ("a." * 127 + "com", "has an invalid host"),
    ],
)
def test_invalid_uris_are_rejected(uri: str, reason: str) -> None:
    result = route_key_from_uri(uri)
    assert isinstance(result, Rejection)
    assert reason in result.reason


def test_longest_valid_label_is_accepted() -> None:
    assert route_key_from_uri("a" * 63 + ".example.com") == RouteKey("a" * 63 + ".example.com")


@pytest.mark.parametrize(
    ("host", "candidates"),
    [
        ("a.b.c.com", ["a.b.c.com", "*.b.c.com", "*.c.com", "*.com"]),
        ("app.example.com", ["app.example.com", "*.example.com", "*.com"]),
        ("example.com", ["example.com", "*.com"]),
        ("localhost", ["localhost"]),
        ("*.example.com", ["*.example.com", "*.com"]),
    ],
)
def test_host_candidates_try_exact_then_deepest_wildcard_first(
    host: str, candidates: list[str]
) -> None:
    assert list(host_candidates(host)) == candidates


@pytest.mark.parametrize(
    ("path", "prefixes"),
    [
        ("/a/b/c", ["/a/b/c", "/a/b", "/a", ""]),
        ("/a/b/c/", ["/a/b/c", "/a/b", "/a", ""]),
        ("/foobar", ["/foobar", ""]),
        ("/", [""]),
        ("", [""]),
    ],
)
def test_path_prefixes_are_whole_segments_longest_first(path: str, prefixes: list[str]) -> None:
    assert list(path_prefixes(path)) == prefixes

"""route_services_hairpinning_allowlist, matched as Gorouter matches it."""

from __future__ import annotations

import pytest

from router.route_services import HairpinAllowlist

ENTRIES = ("*.apps.example.com", "auth.example.org", "Mixed.Example.NET")

CASES = {
    "a name listed": ("auth.example.org", True),
    "a name, case aside": ("AUTH.example.org", True),
    "an entry written in capitals": ("mixed.example.net", True),
    "one label under a wildcard": ("rs.apps.example.com", True),
    "the wildcard route itself": ("*.apps.example.com", True),
    "the wildcard's bare domain": ("apps.example.com", False),
    "two labels under a wildcard": ("a.rs.apps.example.com", False),
    "a name is not a wildcard": ("x.auth.example.org", False),
    "another domain": ("rs.example.com", False),
    "an IP address": ("127.0.0.1", False),
}


@pytest.mark.parametrize(("host", "allowed"), CASES.values(), ids=CASES.keys())
def test_allowlist_matches_a_routes_host(host: str, allowed: bool) -> None:
    assert HairpinAllowlist(ENTRIES).allows(host) is allowed


def test_an_empty_allowlist_allows_every_route() -> None:
    allowlist = HairpinAllowlist(())
    assert allowlist.allows("anything.example.com")
    assert repr(allowlist) == "HairpinAllowlist([])"
    assert repr(HairpinAllowlist(("*.A.com",))) == "HairpinAllowlist(['.a.com'])"

"""Routing's view of a request's Host: checked and normalized, the last one remembered. Whatever
came before, each lookup must answer as a first one would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from registry.hostnames import normalize_host
from router.hosts import is_valid_host_header, lookup_host_and_path

HOSTS = st.sampled_from(
    ["app.example.com", "APP.example.com.", "app.example.com:8080", "", "a b", "a/b", "x.io"]
) | st.text(max_size=12)


def expected(host_header: str, target: str) -> tuple[str, str] | None:
    if not is_valid_host_header(host_header):
        return None
    return normalize_host(host_header), target.split("?", 1)[0]


@given(st.lists(st.tuples(HOSTS, st.sampled_from(["/", "/a?q=1", "/b/c"])), max_size=20))
def test_each_lookup_answers_as_if_it_were_the_first(requests):
    for host_header, target in requests:
        assert lookup_host_and_path(host_header, target) == expected(host_header, target)


def test_a_malformed_host_after_a_good_one_is_still_refused():
    assert lookup_host_and_path("app.example.com", "/") == ("app.example.com", "/")
    assert lookup_host_and_path("app.example.com ", "/") is None
    assert lookup_host_and_path("App.Example.com", "/x") == ("app.example.com", "/x")

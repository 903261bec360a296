"""The __VCAP_ID__ cookie (router/sticky.py), each case what Gorouter v0.317 answers."""

from __future__ import annotations

import pytest

from router.sticky import StickyRules, parse_set_cookie, vcap_id_cookie

RULES = StickyRules(frozenset({"JSESSIONID"}), secure_cookies=False, negotiate=False)
SECURE = RULES._replace(secure_cookies=True)
NEGOTIATE = RULES._replace(negotiate=True)


def cookie(set_cookies, rules=RULES, requested="", www_authenticate=""):
    return vcap_id_cookie(set_cookies, rules, "inst-1", "/", requested, www_authenticate)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ("JSESSIONID=abc", "__VCAP_ID__=inst-1; Path=/; HttpOnly"),
        (
            "JSESSIONID=abc; Path=/; Secure; SameSite=None; Partitioned",
            "__VCAP_ID__=inst-1; Path=/; HttpOnly; Secure; SameSite=None; Partitioned",
        ),
        (
            "JSESSIONID=abc; Max-Age=3600; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
            "__VCAP_ID__=inst-1; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly",
        ),
        ("JSESSIONID=abc; Max-Age=0", "__VCAP_ID__=inst-1; Path=/; Max-Age=0; HttpOnly"),
        (
            "JSESSIONID=abc; samesite=lax; SECURE",
            "__VCAP_ID__=inst-1; Path=/; HttpOnly; Secure; SameSite=Lax",
        ),
        ("JSESSIONID=abc; SameSite=sometimes", "__VCAP_ID__=inst-1; Path=/; HttpOnly"),
    ],
)
def test_session_cookie_attributes_carry_over(session, expected):
    assert cookie([session]) == expected


def test_secure_cookies_makes_it_secure_always():
    assert cookie(["JSESSIONID=abc"], SECURE) == "__VCAP_ID__=inst-1; Path=/; HttpOnly; Secure"


def test_none_without_a_session_cookie_or_when_the_app_sets_its_own():
    assert cookie(["other=1"]) is None
    assert cookie(["JSESSIONID=abc", "__VCAP_ID__=mine"]) is None
    assert cookie([]) is None


def test_client_pinned_elsewhere_is_re_pinned():
    assert cookie([], requested="inst-9") == "__VCAP_ID__=inst-1; Path=/; HttpOnly"
    assert cookie([], requested="inst-1") is None


def test_negotiate_answer_pins_for_60_seconds_strictly():
    expected = "__VCAP_ID__=inst-1; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
    assert cookie([], NEGOTIATE, www_authenticate="Negotiate abc") == expected
    # The session cookie's attributes do not apply then; secure_cookies does.
    secure = NEGOTIATE._replace(secure_cookies=True)
    assert cookie(["JSESSIONID=a; Secure; Partitioned"], secure, www_authenticate="negotiate") == (
        "__VCAP_ID__=inst-1; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
    )
    # Already pinned here: nothing new, as in Gorouter.
    assert cookie(["JSESSIONID=a"], NEGOTIATE, "inst-1", "Negotiate abc") is None
    # Off, or another scheme: the usual rules.
    assert cookie([], RULES, www_authenticate="Negotiate abc") is None
    assert cookie([], NEGOTIATE, www_authenticate="Basic realm=x") is None


def test_set_cookie_parsing_is_lenient_like_go():
    parsed = parse_set_cookie(" JSESSIONID = abc ;secure; PARTITIONED ; Max-Age= -1")
    assert parsed is not None
    assert (parsed.name, parsed.secure, parsed.partitioned, parsed.max_age) == (
        "JSESSIONID",
        True,
        True,
        "-1",
    )
    assert parse_set_cookie("no-equals-sign") is None

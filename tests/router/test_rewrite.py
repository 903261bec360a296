"""http_rewrite.responses as Gorouter applies it: removals first, then a header added only when
no line of its name is left; the router's framing lines are out of reach."""

from __future__ import annotations

from router.rewrite import ResponseRewrite, response_rewrite
from runtime.config import load_config_text

HSTS = ("Strict-Transport-Security", "max-age=31536000")


def test_nothing_configured_costs_nothing() -> None:
    assert response_rewrite(load_config_text("").http_rewrite) is None


def test_removals_then_additions_on_lines() -> None:
    rewrite = ResponseRewrite(["X-Powered-By", "server"], [HSTS])
    lines = [b"Server: nginx\r\n", b"x-powered-by: php\r\n", b"X-Kept: 1\r\n"]
    assert rewrite.lines(lines) == [
        b"X-Kept: 1\r\n",
        b"Strict-Transport-Security: max-age=31536000\r\n",
    ]
    present = [b"strict-transport-security: max-age=1\r\n"]
    assert rewrite.lines(present) == present


def test_a_removed_header_may_be_added_back_with_the_configured_value() -> None:
    rewrite = ResponseRewrite(["Strict-Transport-Security"], [HSTS])
    lines = [b"Strict-Transport-Security: max-age=1\r\n"]
    assert rewrite.lines(lines) == [b"Strict-Transport-Security: max-age=31536000\r\n"]


def test_every_value_of_a_name_is_added_together() -> None:
    rewrite = ResponseRewrite([], [("X-A", "1"), ("X-B", "2"), ("x-a", "3")])
    assert rewrite.lines([b"X-B: 0\r\n"]) == [b"X-B: 0\r\n", b"X-A: 1\r\n", b"x-a: 3\r\n"]


def test_heads_keep_their_status_line() -> None:
    rewrite = ResponseRewrite(["X-Drop"], [HSTS])
    head = b"HTTP/1.1 200 OK\r\nX-Drop: 1\r\nContent-Length: 2\r\n"
    assert rewrite.head(head) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nStrict-Transport-Security: max-age=31536000\r\n"
    )
    assert rewrite.head(b"HTTP/1.1 204 No Content\r\n") == (
        b"HTTP/1.1 204 No Content\r\nStrict-Transport-Security: max-age=31536000\r\n"
    )


def test_framing_headers_cannot_be_removed() -> None:
    rewrite = ResponseRewrite(["Content-Length", "Transfer-Encoding", "Connection", "X-A"], [])
    assert rewrite.remove == frozenset({b"x-a"})


def test_the_routers_own_answers() -> None:
    rewrite = ResponseRewrite(["X-Content-Type-Options"], [HSTS])
    headers = [("Content-Type", "text/plain"), ("X-Content-Type-Options", "nosniff")]
    assert rewrite.pairs(headers) == [("Content-Type", "text/plain"), HSTS]

"""Responses the router writes itself: Gorouter's status line, body text and headers.

Two writers, as in Gorouter: the error writer for the router's own decisions
(`"<code> <Status Text>: <message>\\n"`, with `X-Cf-RouterError` and a Cache-Control), and the
round-tripper's error handler after backends failed (`http.Error` bodies, and
`X-Cf-RouterError: endpoint_failure (<error>)`).
"""

from __future__ import annotations

import http
from typing import Final, NamedTuple

from registry.shm.counters import Stat
from router import errors
from router.errors import BackendError, RouterError
from router.rewrite import ResponseRewrite
from runtime.error_template import ErrorTemplate

STATUS_TEXT: Final = {
    400: "Bad Request",
    404: "Not Found",
    496: "SSL Certificate Required",
    499: "Request Cancelled",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    525: "SSL Handshake Failed",
    526: "Invalid SSL Certificate",
}
_PLAIN: Final = ("Content-Type", "text/plain; charset=utf-8")
_HTML: Final = ("Content-Type", "text/html; charset=utf-8")
_KNOWN: Final = frozenset(status.value for status in http.HTTPStatus)
_NOSNIFF: Final = ("X-Content-Type-Options", "nosniff")


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    router_error: str  # what the access log's x_cf_routererror shows
    stat: int  # the counter this answer adds to
    close: bool = False  # the connection closes after it (Connection: close)
    # The error writer's message (router_answer only): what html_error_template_file renders.
    message: str | None = None


def count_answer(stats: memoryview | list[int], answer: Answer) -> None:
    """The counters one of the router's own answers adds to: its own, and the 400 and 502
    totals (which a refusal's own counter may already be)."""
    stats[answer.stat] += 1
    if answer.status == 400 and answer.stat != Stat.bad_requests:
        stats[Stat.bad_requests] += 1
    elif answer.status == 502:
        stats[Stat.bad_gateways] += 1


def router_answer(error: RouterError) -> Answer:
    """Gorouter's error writer."""
    body = f"{error.status} {STATUS_TEXT.get(error.status, '')}: {error.message}\n".encode()
    headers = [_PLAIN, _NOSNIFF]
    if error.router_error:
        headers.append(("X-Cf-RouterError", error.router_error))
    if error.cache_control:
        headers.append(("Cache-Control", error.cache_control))
    return Answer(
        error.status, body, headers, error.router_error, error.stat, message=error.message
    )


def as_configured(
    answer: Answer, template: ErrorTemplate | None, rewrite: ResponseRewrite | None
) -> Answer:
    """The answer as the client gets it: the operator's page for the error writer's answers
    (html_error_template_file), then http_rewrite (None: not for this answer)."""
    if answer.message is not None and template is not None:
        answer = templated(answer, template)
    if rewrite is not None:
        answer = answer._replace(headers=rewrite.pairs(answer.headers))
    return answer


def templated(answer: Answer, template: ErrorTemplate) -> Answer:
    """An error writer's answer rendered from the operator's HTML template, as Gorouter's
    HTML error writer renders it: the page as body, served as text/html."""
    assert answer.message is not None
    status_text = http.HTTPStatus(answer.status).phrase if answer.status in _KNOWN else ""
    body = template.render(answer.status, status_text, answer.message, answer.headers)
    headers = [_HTML if header == _PLAIN else header for header in answer.headers]
    return answer._replace(body=body, headers=headers)


def backend_answer(error: BackendError) -> Answer:
    """Gorouter's round-tripper error handler, after every attempt failed."""
    response = errors.response_for(error.kind)
    router_error = f"endpoint_failure ({error.detail})"
    headers = [_PLAIN, _NOSNIFF, ("X-Cf-RouterError", router_error)]
    return Answer(
        response.status, (response.body + "\n").encode(), headers, router_error, response.stat
    )


def malformed_host_answer() -> Answer:
    """Go's server, before any of Gorouter's handlers: its words, no X-Cf-RouterError, closed."""
    return Answer(
        400, b"400 Bad Request: malformed Host header", [_PLAIN], "", Stat.malformed_host, True
    )


_HEALTH_HEADERS: Final = [("Cache-Control", "private, max-age=0"), ("Expires", "0")]


def health_answer(healthy: bool) -> Answer:
    """Gorouter's answer to a load balancer's health check on the router's own ports: "ok"
    while serving, an empty 503 while starting or draining; no Content-Type, as Go writes it."""
    if healthy:
        return Answer(200, b"ok\n", _HEALTH_HEADERS, "", Stat.lb_health_checks)
    return Answer(503, b"", _HEALTH_HEADERS, "", Stat.lb_health_checks)


def refusal_answer(status: int, reason: str) -> Answer:
    """A request refused before routing (the parser's or the wire rules'), answered as Go's
    server, Gorouter's, answers it; the connection closes after it."""
    if status == 400 and "Missing 'Host'" in reason:
        # Gorouter's own handler for a request without Host.
        body = b"400 Bad Request: Request had empty Host header\n"
        headers = [
            _PLAIN,
            ("X-Cf-RouterError", "empty_host"),
            _NOSNIFF,
            ("Cache-Control", "public,max-age=2"),
        ]
        return Answer(
            400, body, headers, "empty_host", Stat.empty_host, True, "Request had empty Host header"
        )
    if status in (414, 431):
        # Gorouter's MaxRequestSize handler: the status and its X-Cf-RouterError, no body.
        headers = [("X-Cf-RouterError", "max-request-size-exceeded")]
        return Answer(
            status, b"", headers, "max-request-size-exceeded", Stat.max_request_size_exceeded, True
        )
    if status == 505:
        # Go's words for a version its HTTP/1 server does not speak.
        body = b"505 HTTP Version Not Supported: unsupported protocol version"
        return Answer(505, body, [_PLAIN], "", Stat.bad_requests, True)
    if status == 400:
        # What Go's server writes for a request it cannot parse.
        duplicate_host = "Duplicate 'Host'" in reason
        body = b"400 Bad Request: too many Host headers" if duplicate_host else b"400 Bad Request"
        return Answer(400, body, [_PLAIN], "", Stat.bad_requests, True)
    body = f"{status} {STATUS_TEXT.get(status, 'Internal Server Error')}\n".encode()
    return Answer(status, body, [_PLAIN], "", Stat.bad_requests, True)

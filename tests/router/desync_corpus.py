"""A regression corpus of raw requests, as data: what a client sends and what may come of it.

Each case is sent on its own connection through a real routerd to a backend that records every
byte it receives (tests/support/record_backend.py); test_desync_corpus.py runs them.

`tier` follows aws/http-desync-guardian's classification of a request:
  compliant  — RFC 9112 as written; must be forwarded;
  acceptable — unusual but with one reading only; forwarded;
  ambiguous  — proxies and servers may frame or route it differently; refused;
  severe     — a known request-smuggling vector; refused.
`family` is the part of RFC 9112 (or of the router's limits) the case is about; `name` reuses
PortSwigger's HTTP Request Smuggler permutation names where one fits (space1, tabprefix1,
vertprefix, nameprefix1, UPPERCASE, multiCase, commaCow, cowComma, quoted, 0dsuffix, tabsuffix,
linewrapped1, doublewrapped, nbsp, accentCH) and HAProxy's h1 reg-test expectations otherwise
(a refused request gets a 400 and the connection is closed; nothing reaches the server).

`status` is what the client must get first (for pipelined requests: every answer), or None when
the router may only close the connection. `forwarded` is how many requests the backend may
see. Bodies that would smuggle carry a request for `/smuggled`, which no backend may ever see.
"""

from __future__ import annotations

from dataclasses import dataclass

HOST = b"corpus.example.com"
_H = b"Host: " + HOST + b"\r\n"
# What a successful desync would make the backend see as a second request.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + _H + b"\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    tier: str
    family: str
    request: bytes
    status: int | None
    forwarded: int
    # Bytes that must not reach the backend at all (e.g. trailers promoted to headers).
    never_seen: tuple[bytes, ...] = ()


def post(*headers: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"POST /upload "
        + version
        + b"\r\n"
        + _H
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
        + body
    )


def get(*headers: bytes, target: bytes = b"/", version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"GET "
        + target
        + b" "
        + version
        + b"\r\n"
        + _H
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED
CL_SMUGGLE = SMUGGLED  # a body that is, byte for byte, a second request
TE = b"Transfer-Encoding: chunked"


def te_variant(name: str, tier: str, header: bytes) -> Case:
    """A Transfer-Encoding obfuscation next to a Content-Length (CL.TE / TE.CL)."""
    body = b"5\r\nhello\r\n" + CHUNKED_SMUGGLE
    return Case(
        name, tier, "transfer-encoding", post(b"Content-Length: 10", header, body=body), 400, 0
    )


CASES: tuple[Case, ...] = (
    # -- compliant: forwarded once, exactly ----------------------------------------------------
    Case("get-minimal", "compliant", "baseline", get(), 200, 1),
    Case("get-http10-with-host", "compliant", "baseline", get(version=b"HTTP/1.0"), 200, 1),
    Case("head", "compliant", "baseline", b"HEAD / HTTP/1.1\r\n" + _H + b"\r\n", 200, 1),
    Case(
        "post-content-length",
        "compliant",
        "content-length",
        post(b"Content-Length: 5", body=b"hello"),
        200,
        1,
    ),
    Case(
        "post-content-length-zero",
        "compliant",
        "content-length",
        post(b"Content-Length: 0"),
        200,
        1,
    ),
    Case(
        "post-body-is-a-request",
        "compliant",
        "content-length",
        post(b"Content-Length: %d" % len(CL_SMUGGLE), body=CL_SMUGGLE),
        200,
        1,
    ),
    Case("post-chunked", "compliant", "chunked", post(TE, body=b"5\r\nhello\r\n0\r\n\r\n"), 200, 1),
    Case(
        "post-chunked-extension",
        "compliant",
        "chunked",
        post(TE, body=b"5;name=value\r\nhello\r\n0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "post-chunked-quoted-extension",
        "compliant",
        "chunked",
        post(TE, body=b'5;name="a b"\r\nhello\r\n0\r\n\r\n'),
        200,
        1,
    ),
    Case(
        "post-chunked-upper-hex",
        "compliant",
        "chunked",
        post(TE, body=b"A\r\nhellohello\r\n0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "post-chunked-leading-zeros",
        "compliant",
        "chunked",
        post(TE, body=b"0005\r\nhello\r\n0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "post-chunked-body-is-a-request",
        "compliant",
        "chunked",
        post(TE, body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
        200,
        1,
    ),
    Case(
        "trailer-dropped",
        "compliant",
        "trailers",
        post(TE, body=b"5\r\nhello\r\n0\r\nX-Injected: 1\r\n\r\n"),
        200,
        1,
        never_seen=(b"X-Injected",),
    ),
    Case(
        "trailer-forwarded-for-dropped",
        "compliant",
        "trailers",
        post(TE, body=b"5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"),
        200,
        1,
        never_seen=(b"6.6.6.6",),
    ),
    Case(
        "absolute-form",
        "compliant",
        "request-target",
        get(target=b"http://" + HOST + b"/x"),
        200,
        1,
    ),
    Case(
        "pipelined-two",
        "compliant",
        "pipelining",
        get() + get(target=b"/second"),
        200,
        2,
    ),
    Case(
        "pipelined-post-then-get",
        "compliant",
        "pipelining",
        post(b"Content-Length: 5", body=b"hello") + get(target=b"/second"),
        200,
        2,
    ),
    Case(
        "expect-continue-body-sent",
        "compliant",
        "content-length",
        post(b"Expect: 100-continue", b"Content-Length: 5", body=b"hello"),
        200,
        1,
    ),
    # -- acceptable: one reading only; forwarded ---------------------------------------------
    Case("leading-empty-line", "acceptable", "message", b"\r\n" + get(), 200, 1),
    Case(
        "UPPERCASE",
        "acceptable",
        "transfer-encoding",
        post(b"Transfer-Encoding: CHUNKED", body=b"0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "multiCase",
        "acceptable",
        "transfer-encoding",
        post(b"tRaNsFeR-eNcOdInG: chunked", body=b"0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "tabprefix1",
        "acceptable",
        "transfer-encoding",
        post(b"Transfer-Encoding:\tchunked", body=b"0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "spacefix1",
        "acceptable",
        "transfer-encoding",
        post(b"Transfer-Encoding: chunked ", body=b"0\r\n\r\n"),
        200,
        1,
    ),
    Case(
        "content-length-leading-zeros",
        "acceptable",
        "content-length",
        post(b"Content-Length: 005", body=b"hello"),
        200,
        1,
    ),
    Case(
        "get-with-body",
        "acceptable",
        "content-length",
        post(b"Content-Length: 5", body=b"hello").replace(b"POST", b"GET", 1),
        200,
        1,
    ),
    Case("obs-text-value", "acceptable", "header-syntax", get(b"X-Name: caf\xe9"), 200, 1),
    Case("no-space-after-colon", "acceptable", "header-syntax", get(b"X-Name:value"), 200, 1),
    # -- Content-Length and Transfer-Encoding together (CL.TE, TE.CL) ------------------------
    Case(
        "cl-te",
        "severe",
        "cl-and-te",
        post(b"Content-Length: 6", TE, body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "te-cl",
        "severe",
        "cl-and-te",
        post(TE, b"Content-Length: 3", body=b"5\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "cl-te-http10",
        "severe",
        "cl-and-te",
        post(b"Content-Length: 5", TE, body=CHUNKED_SMUGGLE, version=b"HTTP/1.0"),
        400,
        0,
    ),
    # -- Content-Length ----------------------------------------------------------------------
    Case(
        "cl-duplicate-same",
        "ambiguous",
        "content-length",
        post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-duplicate-different",
        "severe",
        "content-length",
        post(b"Content-Length: 5", b"Content-Length: 40", body=b"hello" + SMUGGLED),
        400,
        0,
    ),
    Case(
        "cl-comma-list-same",
        "ambiguous",
        "content-length",
        post(b"Content-Length: 5, 5", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-comma-list-different",
        "severe",
        "content-length",
        post(b"Content-Length: 5, 40", body=b"hello" + SMUGGLED),
        400,
        0,
    ),
    Case(
        "cl-plus-sign",
        "ambiguous",
        "content-length",
        post(b"Content-Length: +5", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-negative",
        "severe",
        "content-length",
        post(b"Content-Length: -1", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-hex", "ambiguous", "content-length", post(b"Content-Length: 0x5", body=b"hello"), 400, 0
    ),
    Case(
        "cl-space-inside",
        "ambiguous",
        "content-length",
        post(b"Content-Length: 1 0", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-empty", "ambiguous", "content-length", post(b"Content-Length: ", body=b"hello"), 400, 0
    ),
    Case(
        "cl-quoted",
        "ambiguous",
        "content-length",
        post(b'Content-Length: "5"', body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-overflow",
        "severe",
        "content-length",
        post(b"Content-Length: 18446744073709551621", body=b"hello"),
        400,
        0,
    ),
    Case(
        "cl-space1", "severe", "content-length", post(b"Content-Length : 5", body=b"hello"), 400, 0
    ),
    # -- Transfer-Encoding obfuscations ------------------------------------------------------
    te_variant("space1", "severe", b"Transfer-Encoding : chunked"),
    te_variant("nameprefix1", "severe", b" Transfer-Encoding: chunked"),
    te_variant("vertprefix", "severe", b"Transfer-Encoding:\x0bchunked"),
    te_variant("tabsuffix", "severe", b"Transfer-Encoding: chunked\t"),
    te_variant("0dsuffix", "severe", b"Transfer-Encoding: chunked\r"),
    te_variant("linewrapped1", "severe", b"Transfer-Encoding:\n chunked"),
    te_variant("quoted", "severe", b'Transfer-Encoding: "chunked"'),
    te_variant("nbsp", "severe", b"Transfer-Encoding: chunked\xa0"),
    te_variant("accentCH", "severe", b"Transfer-Encoding: \xe7hunked"),
    te_variant("xchunked", "severe", b"Transfer-Encoding: xchunked"),
    Case(
        "commaCow",
        "severe",
        "transfer-encoding",
        post(b"Transfer-Encoding: chunked, identity", body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "cowComma",
        "ambiguous",
        "transfer-encoding",
        post(b"Transfer-Encoding: identity, chunked", body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "gzip-then-chunked",
        "ambiguous",
        "transfer-encoding",
        post(b"Transfer-Encoding: gzip, chunked", body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "te-gzip-only",
        "severe",
        "transfer-encoding",
        post(b"Transfer-Encoding: gzip", body=SMUGGLED),
        400,
        0,
    ),
    Case(
        "te-identity",
        "severe",
        "transfer-encoding",
        post(b"Transfer-Encoding: identity", body=SMUGGLED),
        400,
        0,
    ),
    Case(
        "doublewrapped",
        "severe",
        "transfer-encoding",
        post(TE, b"Transfer-Encoding: identity", body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "te-duplicate-chunked",
        "ambiguous",
        "transfer-encoding",
        post(TE, TE, body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "te-chunked-chunked",
        "ambiguous",
        "transfer-encoding",
        post(b"Transfer-Encoding: chunked, chunked", body=CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "te-http10",
        "severe",
        "transfer-encoding",
        post(TE, body=CHUNKED_SMUGGLE, version=b"HTTP/1.0"),
        400,
        0,
    ),
    # -- header syntax ---------------------------------------------------------------------------
    Case("obs-fold", "severe", "header-syntax", get(b"X-Name: a", b" folded"), 400, 0),
    Case("obs-fold-tab", "severe", "header-syntax", get(b"X-Name: a", b"\tfolded"), 400, 0),
    Case("bare-cr-in-value", "severe", "header-syntax", get(b"X-Name: a\rX-Injected: b"), 400, 0),
    Case(
        "bare-lf-line-end",
        "severe",
        "header-syntax",
        b"GET / HTTP/1.1\r\n" + _H + b"X-Name: a\nX-Injected: b\r\n\r\n",
        400,
        0,
    ),
    Case(
        "bare-lf-request-line",
        "severe",
        "header-syntax",
        b"GET / HTTP/1.1\n" + _H + b"\r\n",
        400,
        0,
    ),
    Case("bare-lf-head-end", "severe", "header-syntax", b"GET / HTTP/1.1\r\n" + _H + b"\n", 400, 0),
    Case("ctl-in-value", "severe", "header-syntax", get(b"X-Name: a\x01b"), 400, 0),
    Case("del-in-value", "ambiguous", "header-syntax", get(b"X-Name: a\x7fb"), 400, 0),
    Case("nul-in-value", "severe", "header-syntax", get(b"X-Name: a\x00b"), 400, 0),
    Case("ctl-in-name", "severe", "header-syntax", get(b"X\x01Name: a"), 400, 0),
    Case("space-in-name", "ambiguous", "header-syntax", get(b"X Name: a"), 400, 0),
    Case("empty-name", "ambiguous", "header-syntax", get(b": a"), 400, 0),
    Case("no-colon", "ambiguous", "header-syntax", get(b"X-Name"), 400, 0),
    Case("high-byte-in-name", "ambiguous", "header-syntax", get(b"X\xffName: a"), 400, 0),
    Case("duplicate-host", "severe", "host", get(b"Host: other.example.com"), 400, 0),
    Case("missing-host-http11", "ambiguous", "host", b"GET / HTTP/1.1\r\n\r\n", 400, 0),
    # -- chunk syntax ------------------------------------------------------------------------------
    Case(
        "chunk-size-not-hex",
        "severe",
        "chunked",
        post(TE, body=b"zz\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-size-overflow",
        "severe",
        "chunked",
        post(TE, body=b"fffffffffffffffff5\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-size-negative",
        "severe",
        "chunked",
        post(TE, body=b"-5\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-size-0x",
        "severe",
        "chunked",
        post(TE, body=b"0x5\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-size-trailing-space",
        "ambiguous",
        "chunked",
        post(TE, body=b"5 \r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-size-bare-lf",
        "severe",
        "chunked",
        post(TE, body=b"5\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-extension-bare-lf",
        "severe",
        "chunked",
        post(TE, body=b"5;a\nb\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-extension-ctl",
        "severe",
        "chunked",
        post(TE, body=b"5;a=\x01\r\nhello\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "chunk-data-overrun",
        "severe",
        "chunked",
        post(TE, body=b"5\r\nhelloXX\r\n" + CHUNKED_SMUGGLE),
        400,
        0,
    ),
    Case(
        "trailer-content-length",
        "severe",
        "trailers",
        post(TE, body=b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"),
        400,
        0,
    ),
    Case(
        "trailer-bad-name",
        "ambiguous",
        "trailers",
        post(TE, body=b"5\r\nhello\r\n0\r\nX Name: a\r\n\r\n"),
        400,
        0,
    ),
    # -- versions -------------------------------------------------------------------------------
    Case("http-0.9-no-version", "severe", "version", b"GET /\r\n" + _H + b"\r\n", 400, 0),
    Case("http-0.9", "ambiguous", "version", get(version=b"HTTP/0.9"), 400, 0),
    Case("http-1.2", "ambiguous", "version", get(version=b"HTTP/1.2"), 400, 0),
    Case("http-2.0", "ambiguous", "version", get(version=b"HTTP/2.0"), 505, 0),
    Case("http-3.0", "ambiguous", "version", get(version=b"HTTP/3.0"), 400, 0),
    Case("http-lowercase", "ambiguous", "version", get(version=b"http/1.1"), 400, 0),
    Case("http-two-digit", "ambiguous", "version", get(version=b"HTTP/11"), 400, 0),
    Case("h2-prior-knowledge", "ambiguous", "version", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, 0),
    # -- methods and request targets -----------------------------------------------------------
    Case(
        "connect",
        "severe",
        "method",
        b"CONNECT " + HOST + b":443 HTTP/1.1\r\nHost: " + HOST + b":443\r\n\r\n",
        400,
        0,
    ),
    Case("star-with-get", "ambiguous", "request-target", get(target=b"*"), 400, 0),
    Case(
        "authority-form-with-get", "ambiguous", "request-target", get(target=HOST + b":80"), 400, 0
    ),
    Case("lowercase-method", "ambiguous", "method", b"get / HTTP/1.1\r\n" + _H + b"\r\n", 400, 0),
    Case(
        "tab-in-request-line",
        "ambiguous",
        "request-target",
        b"GET\t/ HTTP/1.1\r\n" + _H + b"\r\n",
        400,
        0,
    ),
    Case("space-in-target", "ambiguous", "request-target", get(target=b"/a b"), 400, 0),
    Case("ctl-in-target", "severe", "request-target", get(target=b"/a\x01b"), 400, 0),
    Case("nul-in-target", "severe", "request-target", get(target=b"/a\x00b"), 400, 0),
    # -- limits ---------------------------------------------------------------------------------
    Case(
        "request-line-too-long",
        "acceptable",
        "limits",
        get(target=b"/" + b"a" * (70 * 1024)),
        414,
        0,
    ),
    Case(
        "too-many-headers",
        "acceptable",
        "limits",
        get(*(b"X-H%d: v" % i for i in range(600))),
        431,
        0,
    ),
    Case(
        "head-too-large",
        "acceptable",
        "limits",
        get(*(b"X-Big%d: %s" % (i, b"v" * 60000) for i in range(18))),
        431,
        0,
    ),
    Case(
        "header-line-too-large", "acceptable", "limits", get(b"X-Big: " + b"v" * (1 << 20)), 431, 0
    ),
)

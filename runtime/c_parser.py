"""The workers parse requests with aiohttp's C parser (llhttp); both processes refuse to start
without it, the supervisor before it binds anything.
"""

from __future__ import annotations

import os


def c_parser_problem() -> str | None:
    """Why aiohttp's C request parser is not in use, or None when it is.

    The pure-Python parser is several times slower and has had advisories the C one had not.
    """
    if os.environ.get("AIOHTTP_NO_EXTENSIONS"):
        return "refusing to start with AIOHTTP_NO_EXTENSIONS set: aiohttp's C parser is required"
    from aiohttp.http import HttpRequestParser  # noqa: PLC0415

    # Without its extensions aiohttp exports the pure-Python class, defined in http_parser.py.
    if HttpRequestParser.__module__ == "aiohttp.http_parser":
        return "aiohttp's C HTTP parser is not available (reinstall aiohttp with its extensions)"
    return None

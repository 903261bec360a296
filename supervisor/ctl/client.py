"""A small blocking client for routerd's status server: /health, /varz, /routes.

Failures come back as routerctl errors: nothing answering is `Unreachable` (exit 3), refused
credentials are a `UsageProblem` (exit 2). /health needs no credentials.
"""

from __future__ import annotations

import base64
import http.client
from typing import Any
from urllib.parse import urlsplit

import orjson

from supervisor.ctl.errors import Unreachable, UsageProblem, describe_os_error
from supervisor.ctl.target import StatusTarget

RoutesJson = dict[str, list[dict[str, Any]]]


class StatusClient:
    def __init__(self, target: StatusTarget, timeout: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageProblem(f"--url {target.url!r}: expected http://HOST:PORT")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port or (443 if self._https else 80)
        except ValueError:
            raise UsageProblem(f"--url {target.url!r}: the port is not a number") from None
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        return f"StatusClient({self.target.url!r}, user={self.target.user!r})"

    def health(self) -> int:
        """/health's status code: 200 when serving, 503 while starting or draining."""
        status, _ = self._get("/health", authenticated=False)
        return status

    def varz(self) -> dict[str, Any]:
        data = self._get_json("/varz")
        if not isinstance(data, dict):
            raise Unreachable(f"{self.target.url}/varz: expected a JSON object")
        return data

    def routes(self, ttl_left: bool = False) -> RoutesJson:
        data = self._get_json("/routes?ttl_left=1" if ttl_left else "/routes")
        if not isinstance(data, dict):
            raise Unreachable(f"{self.target.url}/routes: expected a JSON object")
        return data

    def _get_json(self, path: str) -> Any:
        status, body = self._get(path, authenticated=True)
        if status == 401:
            who = f"user {self.target.user!r}" if self.target.user else "no credentials"
            raise UsageProblem(
                f"{self.target.url}{path}: the status server refused {who} (401): "
                "check status.user/status.pass in the config, or --user/--password"
            )
        if status != 200:
            raise Unreachable(f"{self.target.url}{path}: unexpected answer {status}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Unreachable(
                f"{self.target.url}{path}: the answer is not JSON (is this routerd's status port?)"
            ) from None

    def _get(self, path: str, authenticated: bool) -> tuple[int, bytes]:
        connection_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_type(self._host, self._port, timeout=self.timeout)
        headers = {"Accept": "application/json", "User-Agent": "routerctl"}
        if authenticated:
            token = f"{self.target.user}:{self.target.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        try:
            connection.request("GET", self._prefix + path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            reason = describe_os_error(exc) if isinstance(exc, OSError) else type(exc).__name__
            raise Unreachable(
                f"cannot reach the status server at {self.target.url}: {reason}"
            ) from None
        finally:
            connection.close()

"""Caddy's admin API, read over the run's SSH connection: its running config and its /metrics. Never written."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from .caddy import Metrics, parse_metrics
from .config import parse_admin
from .errors import PublicWorksError
from .remote import Remote


class CaddyUnreachable(PublicWorksError):
    pass


class Admin:
    """GETs to Caddy's admin API at `addr` (host:port as seen on the server)."""

    def __init__(self, remote: Remote, addr: str, timeout: float = 3.0) -> None:
        host, port = parse_admin(addr)
        self.addr = addr
        self._base = f"http://{host}:{port}"
        self._remote = remote
        self._timeout = timeout
        self._client: httpx.Client | None = None

    def _get(self, path: str) -> httpx.Response:
        if self._client is None:
            self._client = self._remote.http(timeout=self._timeout)
        try:
            r = self._client.get(self._base + path)
        except httpx.HTTPError as e:
            raise CaddyUnreachable(
                f"Caddy's admin API ({self.addr} on the server) did not answer: {type(e).__name__}: {e}"
            ) from None
        if r.status_code != 200:
            raise CaddyUnreachable(f"Caddy's admin API ({self.addr}) answered {path} with HTTP {r.status_code}")
        return r

    def config(self) -> Any:
        try:
            return self._get("/config/").json()
        except ValueError:
            raise CaddyUnreachable(f"Caddy's admin API ({self.addr}) sent a config that is not JSON") from None

    def metrics(self) -> Metrics:
        return parse_metrics(self._get("/metrics").text)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

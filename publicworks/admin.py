"""Caddy's admin API, read over the run's SSH connection: its running config and its /metrics. Never written.
Also: one request through Caddy's site, to see where it routes (pin.py)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from . import caddy
from . import pin as pin_mod
from .caddy import Metrics, parse_metrics
from .config import ServiceConfig, parse_admin
from .errors import PublicWorksError
from .pin import Pin
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
        self._through: httpx.Client | None = None  # requests through Caddy's sites

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

    def routed_to(self, pin: Pin, value: str) -> str | None:
        """The upstream Caddy routes a request carrying cookie `value` to: the pinned one when it answers 2xx
        without choosing anew, the one its Set-Cookie names when it chose; None when the answer says neither."""
        if self._through is None:
            self._through = self._remote.http(timeout=2.0, verify=False)
        try:
            r = self._through.get(
                pin.url,
                headers={"Host": pin.host, "Cookie": f"{pin.cookie}={value}"},
                extensions={"sni_hostname": pin.host},
            )
        except httpx.HTTPError:
            return None
        for header in r.headers.get_list("set-cookie"):
            chosen = pin.chosen(header)
            if chosen is not None:
                return chosen
        if 200 <= r.status_code < 300:
            return next((d for d, v in pin.values.items() if v == value), None)
        return None

    def close(self) -> None:
        for c in (self._client, self._through):
            if c is not None:
                c.close()
        self._client = self._through = None

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Asking:
    """Asking Caddy's site where it routes (pin.py), where its config allows: one cookie policy, one
    upstream spelling for the new color, a site and listener that reach it — and, checked once per
    config, a request pinned to nothing that Caddy answers by choosing one of the service's upstreams."""

    def __init__(self, admin: Admin, svc: ServiceConfig, color: str, config: object = None) -> None:
        """`config`: Caddy's running config when the caller has just read it (else it is read here)."""
        self.admin = admin
        self.health_path = svc.health_path
        self.dial = ""
        self.pin: Pin | None = None
        self.why = ""
        self.checked = False
        try:
            config = admin.config() if config is None else config
            self.reset(config, caddy.route(config, svc, color))
        except CaddyUnreachable as e:
            self.why = e.message

    def reset(self, config: object, route: caddy.Route) -> None:
        self.pin, self.checked, self.why = None, False, ""
        if len(route.dials) != 1:
            self.why = "the color's upstream is spelt more than one way"
            return
        self.dial = route.dials[0]
        for h in route.handlers:
            self.pin, self.why = pin_mod.pin(config, h, self.health_path)
            if self.pin is not None:
                return

    def routed(self) -> bool | None:
        """True: Caddy routed a request pinned to the new color to it; False: elsewhere; None: not known."""
        if self.pin is None:
            return None
        if not self.checked:
            if self.admin.routed_to(self.pin, pin_mod.NOT_A_DIAL) not in self.pin.values:
                self.why = f"a request through {self.pin.host} at {self.pin.url} did not show Caddy choosing"
                self.pin = None
                return None
            self.checked = True
        got = self.admin.routed_to(self.pin, self.pin.values[self.dial])
        return None if got is None else got == self.dial

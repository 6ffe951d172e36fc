"""Asking Caddy where it routes: one request through Caddy, pinned to one upstream by its own cookie.

With `lb_policy cookie`, Caddy sends a request whose cookie is HMAC-SHA256(secret, dial) of an upstream
to that upstream — if, and only if, Caddy counts it available at that moment (its active health flag).
Otherwise Caddy picks another upstream and says which in `Set-Cookie`. So a request pinned to the new
color's dial answers, in real time, the question the switch asks: does Caddy route to the new color?
Caddy 2.6's health metric answers it only at its next 10 s refresh.

The pure part: from Caddy's running config, the site and listener that reach a service's handler, the
cookie's name and secret, and what a response says. The request itself is `Admin.pinned`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from .caddy import Handler, JsonPath

NOT_A_DIAL = "public-works-probe"  # a cookie value that pins nothing: Caddy must choose, and say so


@dataclass(frozen=True)
class Pin:
    """One request through Caddy to a service's health path, and the cookie values that pin each upstream."""

    url: str  # on the server, e.g. https://127.0.0.1:443/health/
    host: str  # the site: Host header and TLS server name
    cookie: str  # the cookie's name
    values: dict[str, str]  # dial -> the cookie value that pins it

    def chosen(self, set_cookie: str | None) -> str | None:
        """The dial a `Set-Cookie` names (None: none, or not one of these upstreams)."""
        if not set_cookie:
            return None
        name, _, rest = set_cookie.partition("=")
        if name.strip() != self.cookie:
            return None
        value = rest.split(";", 1)[0].strip()
        return next((d for d, v in self.values.items() if v == value), None)


def cookie_value(secret: str, dial: str) -> str:
    """What Caddy 2.6's cookie policy sets for an upstream (reverseproxy/selectionpolicies.go hashCookie)."""
    return hmac.new(secret.encode(), dial.encode(), hashlib.sha256).hexdigest()


def _at(config: Any, path: JsonPath) -> Any:
    node = config
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _listener(server: dict[str, Any], http_port: int) -> tuple[str, str, int] | None:
    """(scheme, address, port) to reach a Caddy server from the machine it runs on."""
    listen = server.get("listen")
    if not isinstance(listen, list) or not listen or not isinstance(listen[0], str):
        return None
    addr = listen[0].split("/", 1)[1] if "/" in listen[0] else listen[0]  # "tcp/:443" -> ":443"
    host, sep, port_text = addr.rpartition(":")
    port_text = port_text.split("-", 1)[0]
    if not sep or not port_text.isdigit():
        return None
    host = host.strip("[]")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    auto_off = isinstance(server.get("automatic_https"), dict) and server["automatic_https"].get("disable") is True
    tls = "tls_connection_policies" in server or (int(port_text) != http_port and not auto_off)
    return ("https" if tls else "http", host if ":" not in host else f"[{host}]", int(port_text))


def _site(route: Any) -> str | None:
    """The first plain host name a route matches."""
    for matcher in route.get("match", []) if isinstance(route, dict) else []:
        for host in matcher.get("host", []) if isinstance(matcher, dict) else []:
            if isinstance(host, str) and host and "*" not in host and "{" not in host:
                return host
    return None


def pin(config: Any, handler: Handler, health_path: str) -> tuple[Pin | None, str]:
    """How to ask Caddy, through `handler`'s site, where it routes; (None, why) when it cannot be asked."""
    node = _at(config, handler.path)
    policy = _at(node, ("load_balancing", "selection_policy")) or {}
    if not isinstance(policy, dict) or policy.get("policy") != "cookie":
        return None, "its reverse_proxy does not use lb_policy cookie"
    if len(handler.path) < 6 or handler.path[:3] != ("apps", "http", "servers") or handler.path[4] != "routes":
        return None, "its reverse_proxy is not in an HTTP server's routes"
    server = _at(config, handler.path[:4])
    http_port = _at(config, ("apps", "http", "http_port"))
    where = _listener(server, http_port if isinstance(http_port, int) else 80) if isinstance(server, dict) else None
    site = _site(_at(config, handler.path[:6]))
    if where is None or site is None:
        return None, "no listener and host name lead to its reverse_proxy"
    scheme, address, port = where
    secret, name = policy.get("secret"), policy.get("name")
    secret = secret if isinstance(secret, str) else ""
    name = name if isinstance(name, str) and name else "lb"
    values = {d: cookie_value(secret, d) for d in handler.dials}
    return Pin(f"{scheme}://{address}:{port}{health_path}", site, name, values), ""

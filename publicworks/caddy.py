"""Caddy: the health-proxy config rendered from services.toml, and reading Caddy's running state.

public-works never edits the Caddyfile on disk (civic-band's CI generates it), nor Caddy's running
config. `render` prints what that template should contain. The pure functions below read, from Caddy's
running JSON config and its /metrics (both from the admin API), which reverse_proxy handlers list a
service's colors, how they health-check them, and what Caddy currently thinks of each upstream.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .config import COLORS, CaddyConfig, Config, ServiceConfig

LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
# Caddy 2.6 refreshes caddy_reverse_proxy_upstreams_healthy from its health state every 10 s, not on
# each check (reverseproxy/metrics.go's ticker; measured on the sandbox: a color started at t shows 1
# at the next 10 s tick after its first passing check).
METRICS_REFRESH = 10.0
DEFAULT_INTERVAL = 30.0  # Caddy's active health interval when none is set


def _settings(c: CaddyConfig, health_path: str | None) -> list[str]:
    lines = [f"lb_policy {c.lb_policy}", f"lb_try_duration {c.lb_try_duration}", f"lb_try_interval {c.lb_try_interval}"]
    if health_path:
        lines.append(f"health_uri {health_path}")
    return lines + [f"health_interval {c.health_interval}", f"health_timeout {c.health_timeout}"]


def render(cfg: Config, only: str | None = None) -> str:
    """The snippet and one named snippet per service (behind Caddy) holding its reverse_proxy over both colors."""
    services = [cfg.service(only)] if only else [s for s in cfg.services.values() if s.behind_caddy]
    common = Counter(s.health_path for s in cfg.services.values()).most_common(1)[0][0]
    out = [
        "# Rendered by `publicworks caddy` from services.toml, for civic-band's Caddyfile template (clerk).",
        "# Both colors of every service are always listed; Caddy's health checks pick who serves, so a",
        "# deploy never edits this. In a site block: `import civic-observer` (or the reverse_proxy itself).",
        "(health-proxy) {",
        *(f"\t{line}" for line in _settings(cfg.caddy, common)),
        "}",
    ]
    for svc in services:
        out += ["", *service_block(cfg, svc, common)]
    return "\n".join(out) + "\n"


def service_block(cfg: Config, svc: ServiceConfig, common: str = "/health/") -> list[str]:
    ports = " ".join(f"127.0.0.1:{svc.ports[c]}" for c in COLORS)
    inner = ["import health-proxy"] if svc.health_path == common else _settings(cfg.caddy, svc.health_path)
    return [
        f"# {svc.name}: blue {svc.ports['blue']}, green {svc.ports['green']}",
        f"({svc.name}) {{",
        f"\treverse_proxy {ports} {{",
        *(f"\t\t{line}" for line in inner),
        "\t}",
        "}",
    ]


# -- the running config --------------------------------------------------------------------------------

JsonPath = tuple[str | int, ...]  # keys and list indexes into Caddy's config


@dataclass(frozen=True)
class Handler:
    """One reverse_proxy handler in the running config, and how it actively health-checks."""

    path: JsonPath
    dials: tuple[str, ...]
    health_uri: str | None  # None: no active health check
    interval: float
    timeout: float
    health_port: int | None = None

    @property
    def url(self) -> str:
        return "/config/" + "/".join(str(p) for p in self.path)

    def ports(self) -> set[int]:
        return {p for p in (port_of(d) for d in self.dials) if p is not None}

    def dials_for(self, port: int) -> tuple[str, ...]:
        return tuple(d for d in self.dials if port_of(d) == port)


def port_of(dial: str) -> int | None:
    """The port of a loopback dial address ("127.0.0.1:8888", "localhost:8000"); None for anything else."""
    host, sep, port = dial.rpartition(":")
    if not sep or host not in LOOPBACK or not port.isdigit():
        return None
    return int(port)


def duration(value: Any, default: float) -> float:
    """A Caddy JSON duration: integer nanoseconds, or a Go duration string."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, (int, float)):
        return value / 1e9 if value > 0 else default
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return default
    return default


def _handler(node: dict[str, Any], path: JsonPath) -> Handler:
    ups = node.get("upstreams")
    dials = tuple(str(u.get("dial", "")) for u in ups if isinstance(u, dict)) if isinstance(ups, list) else ()
    checks = node.get("health_checks")
    active = checks.get("active") if isinstance(checks, dict) else None
    if not isinstance(active, dict):
        return Handler(path, dials, None, DEFAULT_INTERVAL, 5.0)
    uri = active.get("uri") or active.get("path")
    port = active.get("port")
    return Handler(
        path,
        dials,
        str(uri) if isinstance(uri, str) and uri else None,
        duration(active.get("interval"), DEFAULT_INTERVAL),
        duration(active.get("timeout"), 5.0),
        port if isinstance(port, int) and not isinstance(port, bool) and port > 0 else None,
    )


def handlers(config: object, path: JsonPath = ()) -> list[Handler]:
    """Every reverse_proxy handler with static upstreams, depth first."""
    found: list[Handler] = []
    if isinstance(config, dict):
        if config.get("handler") == "reverse_proxy" and isinstance(config.get("upstreams"), list):
            found.append(_handler(config, path))
        for key, value in config.items():
            found += handlers(value, (*path, str(key)))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found += handlers(value, (*path, i))
    return found


def service_handlers(config: object, svc: ServiceConfig) -> tuple[list[Handler], list[Handler]]:
    """(handlers listing both colors, handlers listing only one) of a service."""
    ours = set(svc.ports.values())
    both, one = [], []
    for h in handlers(config):
        hit = h.ports() & ours
        if hit == ours:
            both.append(h)
        elif hit:
            one.append(h)
    return both, one


@dataclass(frozen=True)
class Route:
    """How Caddy's running config proxies one color's port: the handlers listing it, and what is wrong."""

    port: int
    handlers: tuple[Handler, ...]
    problems: tuple[str, ...]

    @property
    def dials(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d for h in self.handlers for d in h.dials_for(self.port)))

    @property
    def interval(self) -> float:
        return max((h.interval for h in self.handlers), default=DEFAULT_INTERVAL)

    @property
    def timeout(self) -> float:
        return max((h.timeout for h in self.handlers), default=5.0)


def route(config: object, svc: ServiceConfig, color: str) -> Route:
    """Caddy must proxy the color's port and health-check it at the service's health_path, in every handler."""
    port = svc.ports[color]
    hs = tuple(h for h in handlers(config) if port in h.ports())
    problems = []
    if not hs:
        problems.append(f"no reverse_proxy in Caddy's running config lists 127.0.0.1:{port} ({color})")
    for h in hs:
        where = f"the reverse_proxy at {h.url}"
        if h.health_uri is None:
            problems.append(
                f"{where} does not health-check its upstreams (no health_uri): Caddy would route to a stopped color"
            )
        elif h.health_uri != svc.health_path:
            problems.append(
                f"{where} checks health_uri {h.health_uri}, but services.toml's health_path for {svc.name} is "
                f"{svc.health_path}: what Caddy calls healthy is not what the deploy checked"
            )
        if h.health_port is not None and h.health_port != port:
            problems.append(f"{where} health-checks port {h.health_port} instead of each upstream's own port")
    return Route(port, hs, tuple(problems))


def health_interval(config: object, svc: ServiceConfig) -> float | None:
    """The longest active health check interval (seconds) among the handlers listing the service's colors."""
    both, one = service_handlers(config, svc)
    return max((h.interval for h in both + one), default=None)


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Caddy/Go duration ("2s", "250ms", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


# -- /metrics ------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Metrics:
    """What Caddy's /metrics says: its view of each upstream's health, and whether its config moved."""

    healthy: dict[str, float]  # dial -> 1 (healthy) / 0, as last refreshed
    config_writes: float  # admin API requests that may have changed the config (not GET)
    started: float  # the Caddy process's start time: a restart resets every upstream to healthy

    @property
    def epoch(self) -> tuple[float, float]:
        """Changes whenever Caddy's config may have been loaded anew."""
        return (self.config_writes, self.started)


def parse_metrics(text: str) -> Metrics:
    healthy: dict[str, float] = {}
    writes = started = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or line.startswith("#"):
            continue
        try:
            value = float(m["value"])
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m["labels"] or ""))
        if m["name"] == "caddy_reverse_proxy_upstreams_healthy" and "upstream" in labels:
            healthy[labels["upstream"]] = value
        elif m["name"] == "caddy_admin_http_requests_total" and labels.get("method", "GET") not in (
            "GET",
            "HEAD",
            "OPTIONS",
        ):
            writes += value
        elif m["name"] == "process_start_time_seconds":
            started = value
    return Metrics(healthy, writes, started)


def view(config: object, metrics: Metrics, svc: ServiceConfig) -> dict[str, str]:
    """Per color, Caddy's word: healthy, unhealthy, not proxied, not health-checked (for `status`)."""
    out = {}
    for color in COLORS:
        r = route(config, svc, color)
        if not r.handlers:
            out[color] = "not proxied"
        elif any(h.health_uri is None for h in r.handlers):
            out[color] = "not health-checked"
        else:
            values = [metrics.healthy.get(d) for d in r.dials]
            out[color] = (
                "healthy"
                if values and all(v == 1 for v in values)
                else ("unhealthy" if any(v == 0 for v in values) else "no health reported yet")
            )
    return out

"""Caddy: the health-proxy config rendered from services.toml, and reading Caddy's running config.

public-works never edits the Caddyfile on disk (civic-band's CI generates it), nor Caddy's running
config. `render` prints what that template should contain. The pure functions below find, in Caddy's
running JSON config (admin API), the reverse_proxy handlers that list a service's two colors: what
`inv doctor` checks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .config import COLORS, CaddyConfig, Config, ServiceConfig

LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def _settings(c: CaddyConfig, health_path: str | None) -> list[str]:
    lines = [f"lb_policy {c.lb_policy}", f"lb_try_duration {c.lb_try_duration}", f"lb_try_interval {c.lb_try_interval}"]
    if health_path:
        lines.append(f"health_uri {health_path}")
    return lines + [f"health_interval {c.health_interval}", f"health_timeout {c.health_timeout}"]


def render(cfg: Config, only: str | None = None) -> str:
    """The snippet and one named snippet per service holding its reverse_proxy over both colors."""
    services = [cfg.service(only)] if only else list(cfg.services.values())
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
        ports = " ".join(f"127.0.0.1:{svc.ports[c]}" for c in COLORS)
        inner = ["import health-proxy"] if svc.health_path == common else _settings(cfg.caddy, svc.health_path)
        out += [
            "",
            f"# {svc.name}: blue {svc.ports['blue']}, green {svc.ports['green']}",
            f"({svc.name}) {{",
            f"\treverse_proxy {ports} {{",
            *(f"\t\t{line}" for line in inner),
            "\t}",
            "}",
        ]
    return "\n".join(out) + "\n"


# -- the running config --------------------------------------------------------------------------------

Path = tuple  # a JSON path into Caddy's config: keys and list indexes


@dataclass(frozen=True)
class Handler:
    """One reverse_proxy handler in the running config."""

    path: Path
    upstreams: tuple[dict, ...]

    @property
    def url(self) -> str:
        return "/config/" + "/".join(str(p) for p in self.path)

    def ports(self) -> set[int]:
        return {p for p in (port_of(u.get("dial", "")) for u in self.upstreams) if p is not None}


def port_of(dial: str) -> int | None:
    """The port of a loopback dial address ("127.0.0.1:8888", "localhost:8000"); None for anything else."""
    host, sep, port = dial.rpartition(":")
    if not sep or host not in LOOPBACK or not port.isdigit():
        return None
    return int(port)


def handlers(config: object, path: Path = ()) -> list[Handler]:
    """Every reverse_proxy handler with static upstreams, depth first."""
    found: list[Handler] = []
    if isinstance(config, dict):
        if config.get("handler") == "reverse_proxy" and isinstance(config.get("upstreams"), list):
            found.append(Handler(path, tuple(config["upstreams"])))
        for key, value in config.items():
            found += handlers(value, path + (key,))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found += handlers(value, path + (i,))
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



def health_interval(config: object, svc: ServiceConfig) -> float | None:
    """The longest active health check interval (seconds) among the handlers listing the service's colors."""
    both, one = service_handlers(config, svc)
    intervals = []
    for h in both + one:
        node = config
        for p in h.path:
            node = node[p]  # type: ignore[index]
        ns = node.get("health_checks", {}).get("active", {}).get("interval")  # type: ignore[union-attr]
        intervals.append(ns / 1e9 if isinstance(ns, (int, float)) else 30.0)  # Caddy's default: 30s
    return max(intervals) if intervals else None


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Caddy/Go duration ("2s", "250ms", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)

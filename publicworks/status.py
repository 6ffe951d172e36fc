"""`inv status`: what runs, what answers, what is in progress — read-only, no lock, one connection.

For each service: which color serves and its version, the other color (running or stopped), each
port's health through the tunnel next to Caddy's own view of it, a canary running or left unfinished,
the versions rejected by rollbacks, the last history entry; and whether the deploy lock is held, by whom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import caddy, freeze, health, plan, server
from .admin import Admin, Asking, CaddyUnreachable
from .clock import Clock, SystemClock, parse_iso
from .config import COLORS, Config, ServiceConfig
from .history import Entry
from .lock import LockInfo
from .lock import probe as probe_lock
from .observe import ColorView, view
from .remote import Remote
from .state import State


@dataclass(frozen=True)
class ColorStatus:
    color: str
    port: int
    running: bool
    version: str | None
    probe: health.Probe
    caddy: str  # Caddy's word: healthy / unhealthy / not proxied / ... / "not consulted"

    def as_dict(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "port": self.port,
            "running": self.running,
            "version": self.version,
            "health": {
                "status": self.probe.status,
                "ms": round(self.probe.seconds * 1000, 1),
                "detail": self.probe.detail,
            },
            "caddy": self.caddy,
        }


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    health_path: str
    serving: str | None
    colors: dict[str, ColorStatus]
    state: State
    canary: str | None  # "running" | "unfinished" | None
    canary_left: float | None
    rejected: dict[str, str]
    frozen: str | None  # who froze deploys, and why
    last: Entry | None
    notes: tuple[str, ...]

    @property
    def up(self) -> bool:
        return any(c.probe.ok for c in self.colors.values())

    def as_dict(self) -> dict[str, Any]:
        c = self.state.canary
        return {
            "service": self.name,
            "up": self.up,
            "serving": self.serving,
            "serving_version": self.colors[self.serving].version if self.serving else None,
            "colors": {k: v.as_dict() for k, v in self.colors.items()},
            "state_active": self.state.active,
            "canary": None
            if not c
            else {
                "status": self.canary,
                "old": vars(c.old),
                "new": vars(c.new),
                "started_at": c.started_at,
                "ends_at": c.ends_at,
                "seconds_left": self.canary_left,
            },
            "rejected": self.rejected,
            "frozen": self.frozen,
            "last": self.last.as_dict() if self.last else None,
            "notes": list(self.notes),
        }


def service_status(
    remote: Remote,
    cfg: Config,
    svc: ServiceConfig,
    views: dict[str, ColorView],
    lock: LockInfo,
    words: dict[str, str],
    clock: Clock,
) -> ServiceStatus:
    state, warning, _ = server.read_state(remote, cfg, svc)
    d = plan.decide(views, state)
    with remote.http(timeout=3) as client:
        colors = {
            c: ColorStatus(
                c,
                svc.ports[c],
                views[c].running,
                views[c].version or state.versions.get(c),
                health.probe(client, svc.ports[c], svc.health_path, clock, timeout=3),
                words[c],
            )
            for c in COLORS
        }
    canary = left = None
    if state.canary:
        canary = "running" if lock.by_canary_of(svc.name) else "unfinished"
        end = parse_iso(state.canary.ends_at)
        left = (end - clock.now()).total_seconds() if end else None
    entries = server.tail_history(remote, cfg, server.HISTORY_DEPTH, svc.name)
    notes = d.notes + ((warning,) if warning else ())
    frozen = freeze.read(remote, cfg.server.frozen_file(svc.name))
    return ServiceStatus(
        svc.name,
        svc.health_path,
        d.serving,
        colors,
        state,
        canary,
        left,
        plan.rejected(state, entries),
        frozen.describe() if frozen else None,
        entries[-1] if entries else None,
        notes,
    )


def caddy_words(
    remote: Remote, cfg: Config, services: list[ServiceConfig], running: dict[str, set[str]] | None = None
) -> dict[str, dict[str, str]]:
    """Caddy's view of every color of every service, from one read of its config and its metrics — and, for
    the colors that run, from asking its site where it routes (its metric may be 10 s old)."""
    words = {s.name: {c: "not consulted (behind_caddy = false)" for c in COLORS} for s in services}
    behind = [s for s in services if s.behind_caddy]
    if not behind:
        return words
    with Admin(remote, cfg.server.caddy_admin) as admin:
        try:
            config, metrics = admin.config(), admin.metrics()
        except CaddyUnreachable:
            return {**words, **{s.name: {c: "unknown (admin API unreachable)" for c in COLORS} for s in behind}}
        for svc in behind:
            words[svc.name] = caddy.view(config, metrics, svc)
            for color in sorted((running or {}).get(svc.name, set())):
                if words[svc.name][color] in ("healthy", "unhealthy", "no health reported yet"):
                    routed = Asking(admin, svc, color, config).routed()
                    if routed is not None:
                        words[svc.name][color] = "healthy" if routed else "unhealthy"
    return words


def gather(
    remote: Remote, cfg: Config, services: list[ServiceConfig], clock: Clock | None = None
) -> tuple[LockInfo, list[ServiceStatus]]:
    clock = clock or SystemClock()
    lock = probe_lock(remote, cfg.server.lock_file)
    containers = server.containers(remote)
    views = {svc.name: view(svc, containers) for svc in services}
    running = {name: {c for c, v in vs.items() if v.running} for name, vs in views.items()}
    words = caddy_words(remote, cfg, services, running)
    return lock, [service_status(remote, cfg, svc, views[svc.name], lock, words[svc.name], clock) for svc in services]


def render(lock: LockInfo, statuses: list[ServiceStatus]) -> str:
    lines = []
    for s in statuses:
        if not s.up and not s.state.active and not any(c.running or c.version for c in s.colors.values()):
            head = f"{s.name}: not deployed yet (no containers, no state)"
        elif not s.up:
            head = f"{s.name}: DOWN — no color answers 200 on {s.health_path}"
        else:
            sv = s.colors[s.serving] if s.serving else None
            head = f"{s.name}: up, {s.serving} serves {sv.version if sv else '?'}" if sv else f"{s.name}: up"
        lines.append(head)
        for c in COLORS:
            cs = s.colors[c]
            mark = "serving" if c == s.serving else ("running" if cs.running else "stopped")
            lines.append(
                f"  {c:<5} port {cs.port:<5} {mark:<8} {cs.version or '-':<12} {cs.probe.describe()}; caddy: {cs.caddy}"
            )
        if s.canary and s.state.canary:
            run = s.state.canary
            left = f", {max(0.0, s.canary_left):.0f}s left" if s.canary_left is not None else ""
            what = f"{run.new.color} {run.new.version} beside {run.old.color} {run.old.version}"
            if s.canary == "running":
                lines.append(
                    f"  canary: running ({what}{left}); `publicworks rollback --service {s.name}` stops {run.new.color}"
                )
            else:
                lines.append(
                    f"  canary: LEFT UNFINISHED ({what}); both serve. `publicworks rollback --service {s.name}` "
                    f"stops {run.new.color}; `publicworks deploy` goes on from {run.new.color}"
                )
        if s.frozen:
            lines.append(f"  deploys {s.frozen}")
        for version, why in s.rejected.items():
            lines.append(f"  rejected: {version} ({why})")
        for note in s.notes:
            lines.append(f"  note: {note}")
        if s.last:
            e = s.last
            lines.append(
                f"  last: {e.time} {e.status} {e.version} on {e.color}" + (f" by {e.actor}" if e.actor else "")
            )
        else:
            lines.append("  last: no history yet")
    lines.append(f"lock: {lock.describe()}")
    return "\n".join(lines)


def to_json(lock: LockInfo, statuses: list[ServiceStatus]) -> str:
    holder = vars(lock.holder) if lock.holder else None
    return json.dumps(
        {"lock": {"held": lock.held, "holder": holder}, "services": [s.as_dict() for s in statuses]}, indent=2
    )

"""Bringing a color into service and taking one out: the moves every deploy and rollback is made of.

`Change` follows one switch as it happens — the new color started, healthy through the tunnel, routed
to by Caddy (proven, see `proof`), the old color stopping, stopped — so that a failure at any point can
be undone as far as it is safe and reported as it really is (`undo`, `what_runs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import caddy, health
from .admin import Admin, Asking, CaddyUnreachable
from .commands import Command
from .config import Config, ServiceConfig
from .errors import ConnectionLost, LockLost, PublicWorksError
from .proof import Proof
from .session import Session
from .state import Slot
from .steps import Step

PROOF_POLL = 0.2  # seconds between readings of Caddy's /metrics


class NotHealthy(PublicWorksError):
    pass


class NoProof(PublicWorksError):
    """Caddy does not (yet) route to the new color: the old one must not stop."""


@dataclass
class Change:
    """One color coming into service and, usually, another leaving it."""

    new: Slot
    port: int
    start: Command
    undo_cmd: Command  # stops the new color again
    logs: Command
    old: Slot | None
    stop_old: tuple[Command, ...]
    started: bool = False
    healthy_at: float | None = None
    proof: Proof | None = None
    asking: Asking | None = None
    proven: bool = False
    stopping: bool = False  # the old color's stop was sent: from here on the new color stays
    stopped: bool = False


def caddy_route(cfg: Config, svc: ServiceConfig, admin: Admin, color: str, config: object = None) -> caddy.Route:
    """How Caddy proxies `color`; refuses (NoProof) when it does not, or checks health elsewhere."""
    r = caddy.route(admin.config() if config is None else config, svc, color)
    if r.problems:
        block = "\n".join("    " + line for line in caddy.service_block(cfg, svc, svc.health_path))
        raise NoProof(
            f"Caddy would not route to {color} (port {r.port}) as the deploy checked it: "
            + "; ".join(r.problems)
            + f". civic-band's Caddyfile template needs `publicworks caddy --service {svc.name}`:\n{block}"
        )
    return r


def start(s: Session, ch: Change, admin: Admin | None) -> None:
    with s.out.step(Step.START, f"{ch.new.color} {ch.new.version} on port {ch.port}"):
        if admin is not None and ch.old is not None:
            config = admin.config()
            r = caddy_route(s.cfg, s.svc, admin, ch.new.color, config)
            ch.proof = Proof(r.dials, r.interval, r.timeout)
            ch.asking = Asking(admin, s.svc, ch.new.color, config)
            routed = ch.asking.routed()  # before: "not routed" now makes a later "routed" count, as a 0 does
            ch.proof.observe(s.clock.monotonic(), admin.metrics(), routed)
        ch.started = True  # from here a failure stops the new color again
        s.run(ch.start)


def wait_healthy(s: Session, ch: Change, timeout: float) -> health.Wait:
    path = s.svc.health_path
    with s.out.step(Step.HEALTH, f"GET {path} on the server's 127.0.0.1:{ch.port}, up to {timeout:g}s"):
        with s.remote.http() as client:
            wait = health.wait_healthy(client, ch.port, path, timeout, s.clock, stop=s.interrupts)
        s.out.note(f"{wait.count} probe(s) in {wait.seconds:.1f}s; last: {wait.probes[-1].describe()}")
        if not wait.ok:
            s.check_interrupt()
            for p in wait.last(5):
                s.out.note(f"  {p.describe()}")
            logs_text = s.run(ch.logs, check=False).stdout.rstrip()
            s.out.note(f"last 50 log lines of {ch.new.color}:")
            s.out.note("\n".join("  | " + line for line in logs_text.splitlines()) or "  (no logs)")
            raise NotHealthy(
                f"{ch.new.color} ({ch.new.version}) did not answer {path} with 200 within {timeout:g}s "
                f"(last: {wait.probes[-1].describe()})"
            )
        ch.healthy_at = wait.at
    return wait


def prove(s: Session, ch: Change, admin: Admin | None) -> None:
    """Wait until Caddy itself calls the new color healthy (or say why not). No proof, no switch."""
    with s.out.step(Step.SWITCH, f"Caddy routes to {ch.new.color}" if admin else "Caddy not consulted"):
        if admin is None or ch.proof is None:
            why = "first deploy: nothing to stop" if ch.old is None else f"services.{s.svc.name}.behind_caddy = false"
            s.out.note(f"Caddy not consulted ({why}); {ch.new.color} answered through the tunnel")
            ch.proven = True
            return
        p = ch.proof
        p.healthy_at = ch.healthy_at if ch.healthy_at is not None else s.clock.monotonic()
        epoch = None
        problem = ""
        asking = ch.asking or Asking(admin, s.svc, ch.new.color)
        while True:
            now = s.clock.monotonic()
            try:
                routed = asking.routed()  # asked before the metrics are read: a config change shows after
                metrics = admin.metrics()
                if epoch is not None and metrics.epoch != epoch:
                    config = admin.config()  # the config changed: still routed?
                    r = caddy_route(s.cfg, s.svc, admin, ch.new.color, config)
                    p.dials, p.interval, p.timeout = r.dials, r.interval, r.timeout
                    asking.reset(config, r)
                epoch = metrics.epoch
                problem = ""
                if p.observe(now, metrics, routed):
                    break
            except CaddyUnreachable as e:
                problem = e.message
            if p.expired(now):
                raise NoProof(
                    f"Caddy did not call {ch.new.color} (port {ch.port}) healthy within {p.bound:.0f}s of it "
                    f"answering through the tunnel: {problem or p.describe()}. "
                    f"Check `publicworks status --service {s.svc.name}` and Caddy's log"
                )
            s.clock.sleep(PROOF_POLL)
        waited = (p.proven_at or now) - p.healthy_at
        ch.proven = True
        s.out.note(f"Caddy saw {ch.new.color} healthy {waited:.1f}s after it answered through the tunnel ({p.how})")
        if asking.why:
            s.out.command(f"not asked through Caddy's site: {asking.why}")


def confirm(s: Session, ch: Change, admin: Admin | None) -> None:
    """Before the old color stops after a canary: Caddy must still route to the new one (asked through its
    site where it can be, else its health metric)."""
    if admin is None or ch.proof is None:
        return
    routed = Asking(admin, s.svc, ch.new.color).routed()
    if routed is True:
        return
    view = "routes a request pinned to it elsewhere" if routed is False else None
    if view is None:
        word = caddy.view(admin.config(), admin.metrics(), s.svc)[ch.new.color]
        view = None if word == "healthy" else f"calls it {word}"
    if view is not None:
        raise NoProof(
            f"at the end of its canary Caddy {view} ({ch.new.color}): {ch.old.color if ch.old else ''} is not stopped"
        )


def stop_old(s: Session, ch: Change, confirm_with: Admin | None = None) -> None:
    """Stop the old color; after a canary (`confirm_with`), only once Caddy still routes to the new one."""
    old = ch.old
    if ch.stopped:
        return  # already stopped (a rolling deploy stops it as each host switches)
    with s.out.step(Step.STOP, f"{old.color} ({old.version})" if old else "nothing to stop"):
        if old is None:
            return
        confirm(s, ch, confirm_with)
        ch.stopping = True
        for command in ch.stop_old:
            s.run(command)
        ch.stopped = True


def survivor_check(s: Session, admin: Admin | None, color: str) -> None:
    """Ending a canary stops its new color: say so when Caddy does not call the other one healthy either."""
    if admin is None:
        return
    try:
        view = caddy.view(admin.config(), admin.metrics(), s.svc)[color]
    except CaddyUnreachable as e:
        s.out.warn(f"{e.message}; stopping the new color regardless: it is being rolled back")
        return
    if view != "healthy":
        s.out.warn(f"Caddy calls {color} {view}; stopping the new color regardless: it is being rolled back")


def undo(s: Session, ch: Change, verify: bool = False) -> str | None:
    """Stop the new color again, if that is still the safe move; None, or why it could not be done.
    With `verify`, only when the color still runs this run's version (after the lock was taken again)."""
    if not ch.started:
        return None
    if verify and s.views()[ch.new.color].version != ch.new.version:
        s.out.note(f"{ch.new.color} no longer runs {ch.new.version}: not this run's to stop")
        return None
    s.out.note(f"stopping {ch.new.color} again; {ch.old.color if ch.old else 'nothing'} was not touched")
    try:
        s.run(ch.undo_cmd)
    except (LockLost, ConnectionLost) as e:
        return e.message
    except Exception as e:  # noqa: BLE001  (the failure path must finish and report)
        return e.message.splitlines()[0] if isinstance(e, PublicWorksError) else f"{type(e).__name__}: {e}"
    return None


def what_runs(s: Session) -> str:
    """What serves, read from the server now — not inferred."""
    try:
        views = s.views()
    except Exception as e:  # noqa: BLE001  (the failure path must finish and report)
        return f"unknown: the server could not be read ({e}); run `publicworks status`"
    parts = []
    for color, v in views.items():
        if v.running:
            parts.append(f"{color} ({v.version or 'unknown version'}) runs")
        elif v.exists:
            parts.append(f"{color} stopped")
    return "; ".join(parts) or "nothing runs"

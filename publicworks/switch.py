"""Bringing a color into service and taking one out: the two halves of every switch.

`bring_up` starts a color and proves it healthy through the tunnel, or stops it again and fails,
leaving the serving color untouched. `retire` stops a color's units while the other keeps serving.
Deploy, the canary and rollback all switch through these two.
"""

from __future__ import annotations

import time

import httpx

from . import caddy, health
from .commands import Command
from .errors import PublicWorksError
from .session import Session


class NotHealthy(PublicWorksError):
    pass


def bring_up(s: Session, color: str, version: str, start: Command, stop: Command, logs: Command,
             timeout: float) -> health.Wait:
    """Start `color` with `version` and wait for its health check; on any failure stop it again."""
    port = s.svc.ports[color]
    try:
        with s.out.step("start", f"{color} {version} on port {port}"):
            s.run(start)
        s.check_interrupt()
        with s.out.step("health", f"GET {s.svc.health_path} on the server's 127.0.0.1:{port}, up to {timeout:g}s"):
            with s.remote.http() as client:
                wait = health.wait_healthy(client, port, s.svc.health_path, timeout, stop=s.interrupts)
            s.out.note(f"{wait.count} probe(s) in {wait.seconds:.1f}s; last: {wait.probes[-1].describe()}")
            if not wait.ok:
                s.check_interrupt()
                for p in wait.last(5):
                    s.out.note(f"  {p.describe()}")
                logs_text = s.run(logs, check=False).stdout.rstrip()
                s.out.note(f"last 50 log lines of {color}:")
                s.out.note("\n".join("  | " + line for line in logs_text.splitlines()) or "  (no logs)")
                raise NotHealthy(
                    f"{color} ({version}) did not answer {s.svc.health_path} with 200 within {timeout:g}s "
                    f"(last: {wait.probes[-1].describe()})"
                )
    except BaseException:
        _undo(s, color, stop)
        raise
    return wait


def _undo(s: Session, color: str, stop: Command) -> None:
    s.out.note(f"stopping {color} again; the serving color was not touched")
    try:
        s.run(stop)
    except PublicWorksError as e:
        s.out.warn(f"could not stop {color}: {e.message}")


def retire(s: Session, color: str, stop: tuple[Command, ...], healthy_since: float | None = None) -> None:
    """Stop `color`'s units with their grace period (`docker compose stop -t stop_grace`).

    Caddy's running config is left alone: its active health check takes the stopped color out of
    rotation within one health interval, and lb_try_duration retries every request meanwhile (README,
    "Caddy": changing Caddy's config through the admin API would break idle keep-alive connections).
    When the other color only just turned healthy (`healthy_since`, monotonic), the stop waits until
    Caddy's own health check has had one interval to see it, so there is always a color Caddy routes to.
    """
    if healthy_since is not None:
        interval, source = caddy_interval(s)
        wait = interval + 0.5 - (time.monotonic() - healthy_since)
        if wait > 0:
            s.out.note(f"waiting {wait:.1f}s: Caddy's health check ({interval:g}s interval, {source}) must see "
                       f"the new color before {color} stops")
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not s.interrupts():
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    for command in stop:
        s.run(command)


def caddy_interval(s: Session) -> tuple[float, str]:
    """Caddy's active health interval for this service: its running config (read-only), else services.toml."""
    addr = s.cfg.server.caddy_admin
    if addr:
        host, _, port = addr.rpartition(":")
        try:
            with s.remote.http(timeout=3) as client:
                r = client.get(f"http://{host or 'localhost'}:{port}/config/")
            found = caddy.health_interval(r.json(), s.svc) if r.status_code == 200 else None
            if found is not None:
                return found, "Caddy's running config"
        except (httpx.HTTPError, ValueError):
            pass
    return caddy.parse_duration(s.cfg.caddy.health_interval), "services.toml"

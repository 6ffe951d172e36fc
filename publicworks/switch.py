"""Bringing a color into service and taking one out: the two halves of every switch.

`bring_up` starts a color and proves it healthy through the tunnel, or stops it again and fails,
leaving the serving color untouched. `retire` stops a color's units while the other keeps serving.
Deploy, the canary and rollback all switch through these two.
"""

from __future__ import annotations

from . import health
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


def retire(s: Session, color: str, stop: tuple[Command, ...], keep: str | None) -> None:
    """Stop `color`'s units (grace period for in-flight requests) while `keep` serves."""
    for command in stop:
        s.run(command)

"""The warm-standby canary: once Caddy routes to the new color, both colors serve for a while.

The state records the canary as soon as it starts. Every half second the run looks for a rollback
request (the design's `<dir>/.rollback-requested`, which `inv rollback` also writes); every few seconds
it probes the new color through the tunnel. A request, or `canary_failures` failed probes in a row,
rolls back at once: stop the new color; the old one never stopped serving. A signal or a lost lock
leaves both colors serving and the canary recorded as unfinished, for the next run to handle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import commands as cmd
from . import health, switch
from .admin import Admin
from .clock import iso_in
from .errors import LockLost
from .output import Facts
from .session import Session
from .state import Slot, State
from .steps import Step

TICK = 0.5
PROGRESS_EVERY = 30.0


class Ended(Enum):
    COMPLETED = "completed"  # ran its course: the old color may stop
    REQUESTED = "requested"  # a rollback request: the new color was stopped
    AUTOMATIC = "automatic"  # the new color failed its probes: stopped
    ABANDONED = "abandoned"  # a signal or the lost lock: both colors keep serving


@dataclass(frozen=True)
class Outcome:
    ended: Ended
    why: str = ""
    states: tuple[State, ...] = ()  # per member, the state to finish with (COMPLETED)

    @property
    def state(self) -> State | None:
        return self.states[0] if self.states else None


@dataclass
class Member:
    """One host's part in a canary: its session, its two colors, its state."""

    s: Session
    old: Slot
    new: Slot
    state: State
    migrated: bool
    admin: Admin | None
    passed: int = 0
    failed_in_a_row: int = 0
    last: health.Probe | None = None


def requested_by(text: str) -> str:
    """Who asked, from the marker's content (JSON from `inv rollback`, or anything a human wrote)."""
    try:
        data = json.loads(text)
        return str(data.get("actor") or "someone")
    except (ValueError, AttributeError, RecursionError):
        return text.strip()[:80] or "the marker file"


def watch(members: list[Member], seconds: float) -> Outcome:
    """Run the canary on every member's host at once (both colors serve for `seconds`); how it ended.
    A request or an automatic rollback on any host ends it on every host."""
    lead = members[0].s
    old, new = members[0].old, members[0].new
    with lead.out.step(
        Step.CANARY, f"{new.color} {new.version} and {old.color} {old.version} both serve for {seconds:g}s"
    ):
        for m in members:
            s = m.s
            stale = s.run(cmd.consume_marker(s.svc.marker), check=False)
            if stale.ok:
                s.out.warn(f"removed a rollback request left from before this canary ({requested_by(stale.stdout)})")
            m.state = m.state.canary_started(m.old, m.new, iso_in(s.clock, seconds), s.actor, m.migrated, s.now())
            s.write_state(m.state)
        lead.notifier.send(
            "canary-started",
            lead.svc.name,
            f"{new.version} on {new.color} beside {old.version} on {old.color} for {seconds:g}s",
        )
        ended, why = _loop(members, seconds)
        if ended is Ended.COMPLETED:
            lead.notifier.send("canary-finished", lead.svc.name, f"{new.version} passed its {seconds:g}s canary")
            return Outcome(ended, states=tuple(m.state for m in members))
        lead.out.note(f"ended early: {why}")
    if ended is Ended.ABANDONED:
        return Outcome(ended, why)
    for m in members:
        end(m.s, m.state, m.old, m.new, ended.value, why, m.admin)
    return Outcome(ended, why)


def _loop(members: list[Member], seconds: float) -> tuple[Ended, str]:
    lead = members[0].s
    clock = lead.clock
    t0 = clock.monotonic()
    end_at = t0 + seconds
    next_probe = next_progress = t0
    clients = [m.s.remote.http() for m in members]
    try:
        while (now := clock.monotonic()) < end_at:
            if lead.interrupts():
                return Ended.ABANDONED, f"interrupted ({lead.interrupts.signal})"
            for m in members:
                try:
                    marker = m.s.run(cmd.consume_marker(m.s.svc.marker), check=False)
                except LockLost as e:
                    return Ended.ABANDONED, e.message
                if marker.ok:
                    return Ended.REQUESTED, f"rollback requested by {requested_by(marker.stdout)}"
            if now >= next_probe:
                next_probe = now + lead.svc.canary_probe_interval
                for m, client in zip(members, clients, strict=True):
                    failed = _probe(m, client)
                    if failed:
                        return Ended.AUTOMATIC, failed
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                for m in members:
                    status = m.last.describe() if m.last else "no probe yet"
                    m.s.out.note(f"canary: {end_at - now:.0f}s left, {m.passed} probe(s) passed, last {status}")
            clock.sleep(max(0.0, min(TICK, end_at - clock.monotonic())))
    finally:
        for client in clients:
            client.close()
    return Ended.COMPLETED, ""


def _probe(m: Member, client: Any) -> str:
    """Probe the member's new color; why the canary must roll back, or ""."""
    s, color = m.s, m.new.color
    m.last = health.probe(client, s.svc.ports[color], s.svc.health_path, s.clock)
    if m.last.ok:
        m.passed, m.failed_in_a_row = m.passed + 1, 0
        return ""
    m.failed_in_a_row += 1
    s.out.note(f"probe of {color} failed ({m.failed_in_a_row}/{s.svc.canary_failures}): {m.last.describe()}")
    if m.failed_in_a_row >= s.svc.canary_failures:
        return f"{color} failed {m.failed_in_a_row} health probes in a row ({m.last.describe()})"
    return ""


def end(s: Session, state: State, old: Slot, new: Slot, reason: str, why: str, admin: Admin | None) -> None:
    """End a canary by stopping the new color: the old one never stopped serving. `new` is rejected."""
    with s.out.step(Step.ROLLBACK, f"stopping {new.color} ({new.version}); {old.color} ({old.version}) serves on"):
        s.out.note(why)
        switch.survivor_check(s, admin, old.color)
        s.run(cmd.stop(s.svc, new.color, new.version or "unknown"))
        s.write_state(
            state.rolled_back(old, new, f"rolled back ({reason}) during its canary at {s.now()}: {why}", s.now())
        )
        rec = s.record(old.version, "rollback", old.color, reason=reason, **{"from": f"{new.color}:{new.version}"})
    s.out.summary(
        f"ROLLED BACK: {s.svc.name} {new.version} was stopped during its canary ({why}); "
        f"{old.color} ({old.version}) serves" + (f". {rec.error}" if rec.error else ""),
        ok=False,
        facts=Facts(s.svc.name, old.version, f"{new.color} ({new.version}) → {old.color}", s.actor, rec.entry.line()),
    )
    s.notifier.send("rollback", s.svc.name, f"{reason}: {new.version} → {old.version} during the canary ({why})")

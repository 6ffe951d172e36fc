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
    state: State | None = None  # the state to finish with (COMPLETED)


def requested_by(text: str) -> str:
    """Who asked, from the marker's content (JSON from `inv rollback`, or anything a human wrote)."""
    try:
        data = json.loads(text)
        return str(data.get("actor") or "someone")
    except (ValueError, AttributeError, RecursionError):
        return text.strip()[:80] or "the marker file"


def watch(
    s: Session, old: Slot, new: Slot, state: State, seconds: float, migrated: bool, admin: Admin | None
) -> Outcome:
    """Run the canary (both colors serve for `seconds`); how it ended."""
    port = s.svc.ports[new.color]
    with s.out.step(
        Step.CANARY, f"{new.color} {new.version} and {old.color} {old.version} both serve for {seconds:g}s"
    ):
        stale = s.run(cmd.consume_marker(s.svc.marker), check=False)
        if stale.ok:
            s.out.warn(f"removed a rollback request left from before this canary ({requested_by(stale.stdout)})")
        state = state.canary_started(old, new, iso_in(s.clock, seconds), s.actor, migrated, s.now())
        s.write_state(state)
        s.notifier.send(
            "canary-started",
            s.svc.name,
            f"{new.version} on {new.color} beside {old.version} on {old.color} for {seconds:g}s",
        )
        ended, why = _loop(s, port, new.color, seconds)
        if ended is Ended.COMPLETED:
            s.notifier.send("canary-finished", s.svc.name, f"{new.version} passed its {seconds:g}s canary")
            return Outcome(ended, state=state)
        s.out.note(f"ended early: {why}")
    if ended is Ended.ABANDONED:
        return Outcome(ended, why)
    end(s, state, old, new, ended.value, why, admin)
    return Outcome(ended, why)


def _loop(s: Session, port: int, color: str, seconds: float) -> tuple[Ended, str]:
    clock = s.clock
    t0 = clock.monotonic()
    end_at = t0 + seconds
    next_probe = next_progress = t0
    passed = failed_in_a_row = 0
    last: health.Probe | None = None
    with s.remote.http() as client:
        while (now := clock.monotonic()) < end_at:
            if s.interrupts():
                return Ended.ABANDONED, f"interrupted ({s.interrupts.signal})"
            try:
                marker = s.run(cmd.consume_marker(s.svc.marker), check=False)
            except LockLost as e:
                return Ended.ABANDONED, e.message
            if marker.ok:
                return Ended.REQUESTED, f"rollback requested by {requested_by(marker.stdout)}"
            if now >= next_probe:
                next_probe = now + s.svc.canary_probe_interval
                last = health.probe(client, port, s.svc.health_path, clock)
                if last.ok:
                    passed, failed_in_a_row = passed + 1, 0
                else:
                    failed_in_a_row += 1
                    s.out.note(
                        f"probe of {color} failed ({failed_in_a_row}/{s.svc.canary_failures}): {last.describe()}"
                    )
                    if failed_in_a_row >= s.svc.canary_failures:
                        return (
                            Ended.AUTOMATIC,
                            f"{color} failed {failed_in_a_row} health probes in a row ({last.describe()})",
                        )
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                status = last.describe() if last else "no probe yet"
                s.out.note(f"canary: {end_at - now:.0f}s left, {passed} probe(s) passed, last {status}")
            clock.sleep(max(0.0, min(TICK, end_at - clock.monotonic())))
    return Ended.COMPLETED, ""


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

"""The warm-standby canary: after the new color is healthy, both colors serve for a while.

The state records the canary as soon as it starts. Every half second the run looks for a rollback
request (the design's `<dir>/.rollback-requested`, which `inv rollback` also writes); every few seconds
it probes the new color through the tunnel. A request, or `canary_failures` failed probes in a row,
rolls back at once: stop the new color; the old one never stopped serving. A signal or a lost lock
leaves both colors serving and the canary recorded as unfinished, for the next run to handle.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from . import commands as cmd
from . import health, switch
from .history import now_iso
from .lock import Lock
from .plan import DeployPlan
from .session import Session
from .state import Slot, State

TICK = 0.5
PROGRESS_EVERY = 30.0


def _iso_in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def requested_by(text: str) -> str:
    """Who asked, from the marker's content (JSON from `inv rollback`, or anything a human wrote)."""
    try:
        data = json.loads(text)
        return str(data.get("actor") or "someone")
    except (ValueError, AttributeError):
        return text.strip()[:80] or "the marker file"


def watch(s: Session, p: DeployPlan, state: State, seconds: float, migrated: bool, lock: Lock) -> State | None:
    """Run the canary; the state to finish the deploy with, or None when it rolled back or was abandoned."""
    if not p.old or seconds <= 0:
        s.out.skip("canary", "first deploy" if not p.old else "canary 0")
        return state
    new = Slot(p.target, p.version)
    with s.out.step("canary", f"{new.color} {new.version} and {p.old.color} {p.old.version} both serve for {seconds:g}s"):
        stale = s.run(cmd.consume_marker(s.svc.marker), check=False)
        if stale.ok:
            s.out.warn(f"removed a rollback request left from before this canary ({requested_by(stale.stdout)})")
        state = state.canary_started(p.old, new, now_iso(), _iso_in(seconds), s.actor, migrated)
        s.write_state(state)
        s.notifier.send("canary-started", s.svc.name,
                        f"{new.version} on {new.color} beside {p.old.version} on {p.old.color} for {seconds:g}s")
        ended = _loop(s, p, seconds, lock)
        if ended:
            s.out.note(f"ended early: {ended[1]}")
        else:
            s.notifier.send("canary-finished", s.svc.name, f"{new.version} passed its {seconds:g}s canary")
            return state
    kind, why = ended
    if kind == "abandoned":
        return _abandon(s, p, why)
    rollback(s, state, p.old, new, kind, why)
    return None


def _loop(s: Session, p: DeployPlan, seconds: float, lock: Lock) -> tuple[str, str] | None:
    """Wait out the canary. None when it ran its course; else (requested|automatic|abandoned, why)."""
    t0 = time.monotonic()
    end = t0 + seconds
    next_probe = next_progress = t0
    passed = failed_in_a_row = 0
    last: health.Probe | None = None
    with s.remote.http() as client:
        while (now := time.monotonic()) < end:
            if s.interrupts():
                return "abandoned", f"interrupted ({s.interrupts.signal})"
            if not lock.held:
                return "abandoned", "the deploy lock was lost (connection trouble)"
            marker = s.run(cmd.consume_marker(s.svc.marker), check=False)
            if marker.ok:
                return "requested", f"rollback requested by {requested_by(marker.stdout)}"
            if now >= next_probe:
                next_probe = now + s.svc.canary_probe_interval
                last = health.probe(client, p.target_port, s.svc.health_path)
                if last.ok:
                    passed, failed_in_a_row = passed + 1, 0
                else:
                    failed_in_a_row += 1
                    s.out.note(f"probe of {p.target} failed ({failed_in_a_row}/{s.svc.canary_failures}): {last.describe()}")
                    if failed_in_a_row >= s.svc.canary_failures:
                        return "automatic", f"{p.target} failed {failed_in_a_row} health probes in a row ({last.describe()})"
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                status = last.describe() if last else "no probe yet"
                s.out.note(f"canary: {end - now:.0f}s left, {passed} probe(s) passed, last {status}")
            time.sleep(max(0.0, min(TICK, end - time.monotonic())))
    return None


def rollback(s: Session, state: State, old: Slot, new: Slot, kind: str, why: str) -> None:
    """End a canary by stopping the new color: the old one never stopped serving."""
    with s.out.step("rollback", f"stopping {new.color} ({new.version}); {old.color} ({old.version}) serves on"):
        s.out.note(why)
        switch.retire(s, new.color, (cmd.stop(s.svc, new.color, new.version or "unknown"),))
        s.write_state(state.rolled_back(old, new))
        entry = s.record(old.version or "-", "rollback", old.color, reason=kind, **{"from": f"{new.color}:{new.version}"})
    s.out.summary(f"ROLLED BACK: {s.svc.name} {new.version} was stopped during its canary ({why}); "
                  f"{old.color} ({old.version}) serves", ok=False, facts=s.facts(old.version, new, old.color, entry))
    s.notifier.send("rollback", s.svc.name, f"{kind}: {new.version} → {old.version} during the canary ({why})")


def _abandon(s: Session, p: DeployPlan, why: str) -> None:
    """Leave both colors serving and say what to do: the state already records the canary."""
    old = p.old
    s.out.error(f"canary left unfinished: {why}")
    entry = s.record(p.version, "failure", p.target, step="canary", canary="unfinished")
    s.out.summary(
        f"UNFINISHED: {s.svc.name} {p.version} on {p.target} and {old.version if old else '?'} on "
        f"{old.color if old else '?'} both keep serving. `inv rollback --service {s.svc.name}` stops "
        f"{p.target}; `inv deploy` treats {p.target} as the serving color.", ok=False,
        facts=s.facts(p.version, old, p.target, entry))
    return None

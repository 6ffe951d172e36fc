"""Decisions, as pure functions of (config, what the server reports, state, history, input).

`decide` picks the serving and target colors from what runs; `deploy_plan` and `rollback_plan` turn a
decision into the exact remote commands, in order — or, for a rollback, into a `Refusal` that says
why. `--dry-run` prints these plans; the orchestration in `deploy` and `rollback` executes them.
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import commands as cmd
from .commands import Command
from .config import ServiceConfig
from .history import Entry
from .observe import ColorView, conflicts
from .state import Slot, State
from .steps import Step


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@dataclass(frozen=True)
class Decision:
    serving: str | None  # the color users are on now (None: nothing runs)
    target: str  # the color the new version goes to
    serving_version: str | None
    notes: tuple[str, ...] = ()

    @property
    def serving_slot(self) -> Slot | None:
        return Slot(self.serving, self.serving_version) if self.serving else None


def decide(views: dict[str, ColorView], state: State) -> Decision:
    """Which color serves and which one a deploy takes, from what runs; the state breaks ties."""
    notes: list[str] = []
    running = [c for c in ("blue", "green") if views[c].running]
    for c in running:
        if views[c].adopted:
            ids = ", ".join(x.name for x in views[c].adopted)
            notes.append(f"port {views[c].port} is served by {ids}, started outside public-works: adopted as {c}")
    canary = state.canary
    if canary and len(running) == 2:
        serving = canary.new.color
        notes.append(
            f"a canary was left unfinished ({canary.new.color} {canary.new.version} beside "
            f"{canary.old.color} {canary.old.version}): {serving} counts as serving"
        )
    elif len(running) == 2:
        serving = state.active if state.active else "blue"
        notes.append(
            f"both colors run; {serving} counts as serving ({'per the state' if state.active else 'no state'})"
        )
    elif len(running) == 1:
        serving = running[0]
        if state.active and state.active != serving:
            notes.append(f"the state says {state.active} is active, but only {serving} runs: going by what runs")
        elif canary:
            notes.append(f"the state records a canary, but only {serving} runs: going by what runs")
    else:
        serving = None
        if state.active:
            notes.append(f"the state says {state.active} is active, but nothing runs: going by what runs")
    # Nothing runs: keep the last known good color's stopped containers as the way back.
    target = other(serving) if serving else (other(state.active) if state.active else "blue")
    version = (views[serving].version or state.versions.get(serving)) if serving else None
    return Decision(serving, target, version, tuple(notes))


def stop_color(svc: ServiceConfig, view: ColorView, version: str) -> tuple[Command, ...]:
    """Stop one color's units only; containers adopted on its port are stopped by id."""
    out = []
    if any(c.running for c in view.containers):
        out.append(cmd.stop(svc, view.color, version))
    if view.adopted:
        out.append(cmd.stop_containers([c.id for c in view.adopted], svc.stop_grace))
    return tuple(out)


@dataclass(frozen=True)
class DeployPlan:
    service: str
    version: str
    target: str
    target_port: int
    old: Slot | None  # what serves now and is stopped at the end (None: first deploy)
    old_port: int | None
    pull: Command
    pre_migrate: Command | None
    migrate: Command | None
    start: Command
    stop_target: Command  # the undo when the new color fails
    stop_old: tuple[Command, ...]
    logs: Command
    notes: tuple[str, ...] = field(default=())
    conflicts: tuple[str, ...] = field(default=())  # strangers on our ports: nothing may start

    def steps(self) -> list[tuple[Step, list[Command]]]:
        """The plan as `--dry-run` prints it: each step after inspect and the remote commands it runs."""
        return [
            (Step.PULL, [self.pull]),
            (Step.MIGRATE, [c for c in (self.pre_migrate, self.migrate) if c]),
            (Step.START, [self.start]),
            (Step.HEALTH, []),
            (Step.SWITCH, []),
            (Step.CANARY, []),
            (Step.STOP, list(self.stop_old)),
            (Step.RECORD, []),
        ]


def deploy_plan(svc: ServiceConfig, views: dict[str, ColorView], state: State, version: str) -> DeployPlan:
    d = decide(views, state)
    t = d.target
    return DeployPlan(
        service=svc.name,
        version=version,
        target=t,
        target_port=svc.ports[t],
        old=d.serving_slot,
        old_port=svc.ports[d.serving] if d.serving else None,
        pull=cmd.pull(svc, t, version),
        pre_migrate=cmd.pre_migrate(svc, t, version),
        migrate=cmd.migrate(svc, t, version),
        start=cmd.up(svc, t, version),
        stop_target=cmd.stop(svc, t, version),
        stop_old=stop_color(svc, views[d.serving], d.serving_version or version) if d.serving else (),
        logs=cmd.logs(svc, t, version),
        notes=d.notes,
        conflicts=tuple(conflicts(views)),
    )


# -- rollback ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """No rollback: `reason` says why and what to do. `consent`: --yes (or a yes at a terminal) lifts it."""

    reason: str
    consent: bool = False


@dataclass(frozen=True)
class RollbackPlan:
    service: str
    serving: Slot | None  # what serves now and is stopped at the end
    to: Slot  # the version brought back, on the idle color
    start: Command
    stop_to: Command  # the undo when the version brought back fails
    stop_serving: tuple[Command, ...]
    logs: Command
    reason: str  # "previous" or "to"
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def steps(self) -> list[tuple[Step, list[Command]]]:
        return [
            (Step.START, [self.start]),
            (Step.HEALTH, []),
            (Step.SWITCH, []),
            (Step.STOP, list(self.stop_serving)),
            (Step.RECORD, []),
        ]


def rejected(state: State, entries: list[Entry]) -> dict[str, str]:
    """Versions rolled back from — per the state, and per the history (which survives a lost state file).
    A version deployed again, or brought back by a rollback, after its rejection is no longer rejected."""
    out: dict[str, str] = {}
    for e in entries:
        if e.status in ("success", "rollback"):
            out.pop(e.version, None)  # deployed, or brought back, on purpose
        if e.status == "rollback" and ":" in e.fields.get("from", ""):
            version = e.fields["from"].split(":", 1)[1]
            out[version] = f"rolled back ({e.fields.get('reason', 'requested')}) at {e.time}" + (
                f" by {e.actor}" if e.actor else ""
            )
    for version, why in state.rejected.items():
        out.setdefault(version, why)
    return out


def _successes(entries: list[Entry]) -> dict[str, int]:
    """version -> position of its latest successful deploy, oldest first."""
    return {e.version: i for i, e in enumerate(entries) if e.status == "success" and e.parsed}


def _served(entries: list[Entry]) -> dict[str, int]:
    """version -> position where it last served: deployed, brought back, or rolled back from (it served until then)."""
    out: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.status in ("success", "rollback"):
            out[e.version] = i
        if e.status == "rollback" and ":" in e.fields.get("from", ""):
            out[e.fields["from"].split(":", 1)[1]] = i
    return out


def served_order(entries: list[Entry]) -> list[str]:
    """The versions that served, newest first."""
    served = _served(entries)
    return sorted(served, key=served.__getitem__, reverse=True)


def _migrations_after(entries: list[Entry], version: str) -> list[str]:
    """Versions whose deploy ran migrations after `version` last served (a failed deploy that migrated counts)."""
    served = [i for i, e in enumerate(entries) if e.version == version and e.status in ("success", "rollback")]
    start = served[-1] + 1 if served else 0
    later = (
        e.version
        for e in entries[start:]
        if e.status in ("success", "failure") and e.fields.get("migrations") == "ran" and e.version != version
    )
    return list(dict.fromkeys(later))


def _choices(entries: list[Entry], current: str | None, bad: dict[str, str]) -> str:
    served = _served(entries)
    listed = [v for v in sorted(served, key=served.__getitem__, reverse=True) if v != current]
    if not listed:
        return "the history has no other version of this service"
    return "--to could name: " + ", ".join(f"{v} (rejected: {bad[v]})" if v in bad else v for v in listed)


def rollback_plan(
    svc: ServiceConfig, views: dict[str, ColorView], state: State, entries: list[Entry], to: str | None, yes: bool
) -> RollbackPlan | Refusal:
    """Where a rollback goes, or why it does not. `entries`: this service's history, oldest first."""
    d = decide(views, state)
    serving = d.serving_slot
    current = serving.version if serving else None
    bad = rejected(state, entries)
    found = conflicts(views)
    if found:
        return Refusal("; ".join(found))
    warnings: list[str] = []
    consent: list[str] = []
    if to is not None:
        if to == current:
            return Refusal(f"{to} is what already serves (on {d.serving}); nothing to roll back")
        if to not in _served(entries):
            return Refusal(
                f"{to} never served {svc.name} (not in its history); deploy it with `publicworks deploy` "
                f"instead. {_choices(entries, current, bad)}"
            )
        if to in bad:
            consent.append(f"{to} was rejected: {bad[to]}")
        target = to
    else:
        latest = _successes(entries)
        before = [
            v
            for v in sorted(latest, key=latest.__getitem__)
            if v != current and (current not in latest or latest[v] < latest[current])
        ]
        good = [v for v in before if v not in bad]
        if good:
            target = good[-1]
        elif (
            not latest
            and state.previous
            and state.previous.version
            and state.previous.version not in bad
            and state.previous.version != current
        ):
            target = state.previous.version  # no history to go by: the state's record of what came before
        else:
            skipped = [v for v in before if v in bad]
            why = f" ({', '.join(skipped)} rejected)" if skipped else ""
            return Refusal(
                f"nothing to roll back to: no version served {svc.name} successfully before "
                f"{current or 'what runs now'} without being rolled back{why}. {_choices(entries, current, bad)}"
            )
    crossed = _migrations_after(entries, target)
    if crossed:
        text = (
            f"{target} is older than deploy(s) that ran migrations: {', '.join(crossed)}. "
            f"{target} would run against the migrated schema"
        )
        # The undo button goes one step back and only warns; jumping further with --to asks first.
        (consent if to is not None else warnings).append(text)
    if consent and not yes:
        return Refusal(". ".join(consent) + ". Re-run with --yes to proceed.", consent=True)
    warnings += [f"{c} (proceeding: --yes)" for c in consent]
    t = d.target
    return RollbackPlan(
        service=svc.name,
        serving=serving,
        to=Slot(t, target),
        start=cmd.up(svc, t, target),
        stop_to=cmd.stop(svc, t, target),
        stop_serving=stop_color(svc, views[d.serving], current or target) if d.serving else (),
        logs=cmd.logs(svc, t, target),
        reason="to" if to is not None else "previous",
        notes=d.notes,
        warnings=tuple(warnings),
    )


def canary_to_end(state: State, views: dict[str, ColorView]) -> bool:
    """A canary recorded in the state whose new color still runs: a rollback ends it by stopping that color."""
    return state.canary is not None and views[state.canary.new.color].running

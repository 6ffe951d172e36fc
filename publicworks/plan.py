"""Decisions, as pure functions of (config, what the server reports, state, version).

`decide` picks the serving and target colors from what runs; `deploy_plan` and `rollback_plan` turn a
decision into the exact remote commands, in order. `--dry-run` prints these plans; the orchestration in
`deploy` and `rollback` executes them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import commands as cmd
from .commands import Command
from .config import ServiceConfig
from .observe import ColorView
from .state import Slot, State


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@dataclass(frozen=True)
class Decision:
    serving: str | None  # the color users are on now (None: nothing runs)
    target: str  # the color the new version goes to
    serving_version: str | None
    notes: tuple[str, ...] = ()


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
        notes.append(f"both colors run; {serving} counts as serving ({'per the state' if state.active else 'no state'})")
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
    if serving:
        target = other(serving)
    else:
        # Keep the last known good color's stopped containers as the way back.
        target = other(state.active) if state.active else "blue"
    version = views[serving].version or state.versions.get(serving) if serving else None
    return Decision(serving, target, version, tuple(notes))


@dataclass(frozen=True)
class DeployPlan:
    service: str
    version: str
    target: str
    target_port: int
    old: Slot | None  # what serves now and is stopped at the end (None: first deploy)
    old_port: int | None
    pull: Command
    migrate: Command | None
    start: Command
    stop_target: Command  # the undo when the new color fails
    stop_old: tuple[Command, ...]
    logs: Command
    notes: tuple[str, ...] = field(default=())

    def steps(self) -> list[tuple[str, list[Command]]]:
        """The plan as `--dry-run` prints it: each step and the remote commands it runs."""
        return [
            ("pull", [self.pull]),
            ("migrate", [self.migrate] if self.migrate else []),
            ("start", [self.start]),
            ("health", []),
            ("canary", []),
            ("switch", list(self.stop_old)),
            ("record", []),
        ]


def stop_color(svc: ServiceConfig, view: ColorView, version: str) -> tuple[Command, ...]:
    """Stop one color's units only; containers adopted on its port are stopped by id."""
    out = []
    if any(c.running for c in view.containers):
        out.append(cmd.stop(svc, view.color, version))
    if view.adopted:
        out.append(cmd.stop_containers([c.id for c in view.adopted], svc.stop_grace))
    return tuple(out)


def deploy_plan(svc: ServiceConfig, views: dict[str, ColorView], state: State, version: str) -> DeployPlan:
    d = decide(views, state)
    t = d.target
    old = Slot(d.serving, d.serving_version) if d.serving else None
    stop_old = stop_color(svc, views[d.serving], d.serving_version or version) if d.serving else ()
    return DeployPlan(
        service=svc.name,
        version=version,
        target=t,
        target_port=svc.ports[t],
        old=old,
        old_port=svc.ports[d.serving] if d.serving else None,
        pull=cmd.pull(svc, t, version),
        migrate=cmd.migrate(svc, t, version),
        start=cmd.up(svc, t, version),
        stop_target=cmd.stop(svc, t, version),
        stop_old=stop_old,
        logs=cmd.logs(svc, t, version),
        notes=d.notes,
    )

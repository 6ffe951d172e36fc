"""`inv deploy`: the design's blue-green deploy, over one SSH connection.

lock → inspect (colors from what runs) → pull → migrate → start → health → canary → switch → record.
Until the new color is healthy, any failure stops it again and the old color serves on, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import canary, plan, server, switch
from .config import Config, check_version
from .errors import FAILED, OK, PublicWorksError
from .lock import probe as probe_lock
from .output import Reporter
from .session import Session, open_session
from .state import State

STEPS = ["lock", "inspect", "pull", "migrate", "start", "health", "canary", "switch", "record"]


@dataclass(frozen=True)
class Options:
    service: str
    version: str
    wait_lock: float = 0
    canary: float | None = None  # seconds; None: the service's canary_seconds
    dry_run: bool = False


def deploy(cfg: Config, opts: Options, out: Reporter) -> int:
    """Deploy `opts.version` of `opts.service`; returns the exit code (raises for bad input / lock busy)."""
    svc = cfg.service(opts.service)  # validated before connecting: nothing is touched on bad input
    check_version(opts.version)
    seconds = svc.canary_seconds if opts.canary is None else opts.canary
    if seconds < 0:
        raise PublicWorksError("--canary must be >= 0 seconds", 2)
    out.steps = STEPS
    with open_session(cfg, svc, out) as s:
        if opts.dry_run:
            return dry_run(s, opts.version, seconds)
        return Deploy(s, opts.version, seconds).run(opts.wait_lock)


class Deploy:
    def __init__(self, s: Session, version: str, canary_seconds: float) -> None:
        self.s = s
        self.version = version
        self.canary_seconds = canary_seconds
        self.migrated = False
        self.plan: plan.DeployPlan | None = None  # once inspected; a failure report names its colors

    def run(self, wait_lock: float) -> int:
        s, out = self.s, self.s.out
        with out.step("lock", s.cfg.server.lock_file):
            lock = s.lock("deploy", self.version, wait_lock)
        s.notifier.announce()
        s.notifier.send("deploying", s.svc.name, f"deploying {self.version} ({s.actor})")
        try:
            with out.step("inspect"):
                state, p = self.inspect()
            with out.step("pull", f"{s.svc.project} {', '.join(s.svc.unit_names(p.target))} @ {self.version}"):
                s.run(p.pull)
            s.check_interrupt()
            self.migrate(p)
            s.check_interrupt()
            healthy = switch.bring_up(s, p.target, self.version, p.start, p.stop_target, p.logs, s.svc.ready_timeout)
            state = canary.watch(s, p, state, self.canary_seconds, self.migrated, lock)
            if state is None:
                return FAILED
            with out.step("switch", f"{p.target} serves; stopping {p.old.color}" if p.old else "first deploy"):
                if p.old:
                    switch.retire(s, p.old.color, p.stop_old, healthy_since=healthy.at)
            with out.step("record"):
                s.write_state(state.deployed(p.target, self.version, p.old, self.migrated))
                entry = s.record(self.version, "success", p.target, migrations="ran" if self.migrated else None,
                                 duration=f"{out.elapsed():.1f}s")
        except PublicWorksError as e:
            return self.failed(e)
        finally:
            lock.release()
        stopped = f"; {p.old.color} ({p.old.version}) stopped" if p.old else ""
        out.summary(f"deployed {s.svc.name} {self.version} to {p.target} (port {p.target_port}) "
                    f"in {out.elapsed():.1f}s{stopped}", ok=True, facts=s.facts(self.version, p.old, p.target, entry))
        s.notifier.send("success", s.svc.name, f"{self.version} live on {p.target} in {out.elapsed():.0f}s{stopped}")
        return OK

    def inspect(self) -> tuple[State, plan.DeployPlan]:
        s = self.s
        state = s.read_state()
        p = plan.deploy_plan(s.svc, server.views(s.remote, s.svc), state, self.version)
        self.plan = p
        for note in p.notes:
            s.out.warn(note)
        if p.old:
            s.out.note(f"{p.old.color} serves {p.old.version or '(unknown version)'} on port {p.old_port}")
        else:
            s.out.note("nothing serves yet: first deploy")
        s.out.note(f"deploying {self.version} to {p.target} (port {p.target_port})")
        return state, p

    def migrate(self, p: plan.DeployPlan) -> None:
        if not p.migrate:
            self.s.out.skip("migrate", "no migrate command in services.toml")
            return
        with self.s.out.step("migrate", " ".join(self.s.svc.migrate)):
            result = self.s.run(p.migrate)
            self.s.out.note(result.stdout.strip()[-2000:] or "(no output)")
            self.migrated = True

    def failed(self, e: PublicWorksError) -> int:
        s, out = self.s, self.s.out
        p = self.plan
        step = out.failed_step or "deploy"
        serving = f"{p.old.color} ({p.old.version}) still serving" if p and p.old else "nothing was serving before"
        out.error(f"{step} failed: {e.message}")
        entry = s.record(self.version, "failure", p.target if p else "-", step=step,
                         migrations="ran" if self.migrated else None)
        out.summary(f"FAILED: {s.svc.name} {self.version} not deployed ({step}); {serving}", ok=False,
                    facts=s.facts(self.version, p.old if p else None, p.target if p else None, entry))
        s.notifier.send("failure", s.svc.name, f"{self.version} failed at {step}: {e.message.splitlines()[0]}; {serving}")
        return FAILED


def dry_run(s: Session, version: str, canary_seconds: float) -> int:
    """Print the plan — colors, ports, the exact remote commands — and change nothing."""
    out = s.out
    state = s.read_state()
    p = plan.deploy_plan(s.svc, server.views(s.remote, s.svc), state, version)
    out.line(f"dry run: deploy {s.svc.name} {version} — nothing will be changed")
    out.line(f"  lock: {s.cfg.server.lock_file} ({probe_lock(s.remote, s.cfg.server.lock_file).describe()})")
    for note in p.notes:
        out.line(f"  note: {note}")
    old = f"{p.old.color} ({p.old.version}) on port {p.old_port}" if p.old else "nothing (first deploy)"
    out.line(f"  serving now: {old}")
    out.line(f"  target: {p.target} on port {p.target_port}")
    for i, (name, commands) in enumerate(p.steps(), start=3):
        extra = {
            "health": f"GET http://127.0.0.1:{p.target_port}{s.svc.health_path} through the SSH tunnel "
                      f"until 200, up to {s.svc.ready_timeout:g}s",
            "canary": f"both colors serve for {canary_seconds:g}s" if canary_seconds and p.old else "none",
            "record": f"state {s.cfg.state_file(s.svc.name)}, history {s.cfg.server.history_file}",
        }.get(name, "" if commands else "none")
        out.line(f"  [{i}/{len(STEPS)}] {name}" + (f": {extra}" if extra else ""))
        for c in commands:
            out.line(f"      $ {c}")
    return OK

"""`inv deploy`: the design's blue-green deploy, over one SSH connection.

lock → inspect → pull → migrate → start → health → switch (Caddy routes to the new color: proven) →
canary → stop the old color → record. Until the old color's stop is sent, any failure stops the new
color again and the old one serves on, untouched; whatever happens, the last line, the state and the
history say what really runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import canary, disk, freeze, plan, prune, switch
from . import commands as cmd
from .admin import Admin
from .canary import Ended
from .config import Config, check_version
from .errors import FAILED, OK, LockLost, PublicWorksError
from .failure import aftermath
from .lock import probe as probe_lock
from .output import Facts, Reporter
from .plan import DeployPlan
from .remote import Remote, connect
from .session import Recorded, Session, open_session
from .state import Slot, State
from .steps import DEPLOY, Step


@dataclass(frozen=True)
class Options:
    service: str
    version: str
    wait_lock: float = 0
    canary: float | None = None  # seconds; None: the service's canary_seconds
    dry_run: bool = False


def deploy(cfg: Config, opts: Options, out: Reporter, connect_to: Callable[..., Remote] = connect) -> int:
    """Deploy `opts.version` of `opts.service`; returns the exit code (raises for bad input / lock busy)."""
    svc = cfg.service(opts.service)  # validated before connecting: nothing is touched on bad input
    check_version(opts.version)
    seconds = svc.canary_seconds if opts.canary is None else opts.canary
    out.steps = DEPLOY
    targets = cfg.targets(svc)
    if len(targets) > 1 and not opts.dry_run:
        from .multihost import deploy_hosts  # it builds on Deploy

        return deploy_hosts(cfg, svc, opts.version, seconds, opts.wait_lock, out, connect_to)
    if opts.dry_run:  # each host's plan
        codes = []
        for host in targets:
            host_out = out.for_host(host.label) if len(targets) > 1 else out
            with open_session(cfg, svc, host_out, connect_to, host) as s:
                codes.append(dry_run(s, opts.version, seconds))
        return max(codes)
    with open_session(cfg, svc, out, connect_to) as s:
        return Deploy(s, opts.version, seconds).run(opts.wait_lock)


class RecordFailed(PublicWorksError):
    """The deploy happened; writing it down did not (all of it)."""


class Deploy:
    def __init__(self, s: Session, version: str, canary_seconds: float) -> None:
        self.s = s
        self.version = version
        self.canary_seconds = canary_seconds
        self.migrated = False
        self.canaried = False  # a canary completed
        self.plan: DeployPlan | None = None
        self.before = State(s.svc.name)  # the state as found: what a failure puts back
        self.change: switch.Change | None = None
        self.admin: Admin | None = None

    def run(self, wait_lock: float) -> int:
        s, out = self.s, self.s.out
        freeze.refuse_if_frozen(s)
        with out.step(Step.LOCK, s.cfg.server.lock_file):
            s.take_lock("deploy", self.version, wait_lock)
        try:
            s.notifier.announce()
            s.notifier.send("deploying", s.svc.name, f"deploying {self.version} ({s.actor})")
            return self.steps()
        except KeyboardInterrupt:
            raise  # a second signal: abort at once (the lock frees itself, Caddy routes to what answers)
        except Exception as e:  # noqa: BLE001  (every failure after the lock goes through one path)
            return self.failed(e)
        finally:
            if self.admin is not None:
                self.admin.close()
            s.release()

    def steps(self) -> int:
        s, out = self.s, self.s.out
        self.prepare()
        s.check_interrupt()
        self.bring_up()
        ch, p = self.change, self.plan
        assert ch is not None and p is not None
        state = self.before
        if ch.old and self.canary_seconds > 0:
            o = canary.watch([self.member()], self.canary_seconds)
            if o.ended is Ended.ABANDONED:
                return self.abandoned(o.why)
            if o.ended is not Ended.COMPLETED or o.state is None:
                return FAILED  # rolled back: the canary said so
            state = o.state
            self.canaried = True  # the old color stops only once Caddy still routes to the new one
        else:
            out.skip(Step.CANARY, "first deploy" if not ch.old else "canary 0")
        rec = self.finish(state)
        stopped = f"; {p.old.color} ({p.old.version}) stopped" if p.old else ""
        done = f"deployed {s.svc.name} {self.version} to {p.target} (port {p.target_port}) in {out.elapsed():.1f}s"
        out.summary(
            done + stopped, ok=True, facts=Facts(s.svc.name, self.version, self._colors(), s.actor, rec.entry.line())
        )
        s.notifier.send("success", s.svc.name, f"{self.version} live on {p.target} in {out.elapsed():.0f}s{stopped}")
        return OK

    # -- the phases: one host's part, in order (a deploy across hosts runs them host by host) --------

    def prepare(self, migrate: bool = True) -> None:
        """inspect, pull, migrate: nothing serving is touched yet."""
        s, out = self.s, self.s.out
        with out.step(Step.INSPECT):
            p, _ = self.inspect()
        with out.step(Step.PULL, f"{s.svc.project} {', '.join(s.svc.unit_names(p.target))} @ {self.version}"):
            s.run(p.pull)
        s.check_interrupt()
        if migrate:
            self.migrate(p)
        else:
            out.skip(Step.MIGRATE, "the migrations run on the service's first host")

    def bring_up(self) -> None:
        """start, health, switch: the new color serves beside the old one, as Caddy has proven."""
        s, ch = self.s, self.change
        assert ch is not None
        switch.start(s, ch, self.admin)
        s.check_interrupt()
        switch.wait_healthy(s, ch, s.svc.ready_timeout)
        switch.prove(s, ch, self.admin)  # no proof, no switch

    def finish(self, state: State, **fields: object) -> Recorded:
        """stop the old color, record, prune."""
        ch, p = self.change, self.plan
        assert ch is not None and p is not None
        switch.stop_old(self.s, ch, self.admin if self.canaried else None)
        with self.s.out.step(Step.RECORD):
            rec = self.record(state.deployed(p.target, self.version, p.old, self.migrated, self.s.now()), p, **fields)
        self.prune()
        return rec

    def member(self) -> canary.Member:
        ch = self.change
        assert ch is not None and ch.old is not None
        return canary.Member(self.s, ch.old, ch.new, self.before, self.migrated, self.admin)

    def prune(self) -> None:
        """Old images off the disk (see `prune`); never a reason to fail a deploy that happened."""
        try:
            self.s.out.note(prune.run(self.s))
        except Exception as e:  # noqa: BLE001  (the deploy is done; the disk waits for the next one)
            self.s.out.warn(f"pruning old images failed: {e}; `publicworks prune --service {self.s.svc.name}` retries")

    def inspect(self) -> tuple[DeployPlan, switch.Change]:
        s = self.s
        self.before = s.read_state()
        p = plan.deploy_plan(s.svc, s.views(), self.before, self.version)
        self.plan = p
        for note in p.notes:
            s.out.warn(note)
        if p.conflicts:
            raise PublicWorksError("; ".join(p.conflicts))
        refused = disk.refusal(disk.parse(s.run(cmd.disk([])).stdout), s.cfg.server.min_free_mb)
        if refused:
            raise PublicWorksError(refused)
        bad = plan.rejected(self.before, s.history())
        if self.version in bad:
            s.out.warn(f"{self.version} was rejected before ({bad[self.version]}); deploying it again as asked")
        old = (
            f"{p.old.color} serves {p.old.version or '(unknown version)'} on port {p.old_port}"
            if p.old
            else "nothing serves yet: first deploy"
        )
        s.out.note(f"{old}; deploying {self.version} to {p.target} (port {p.target_port})")
        if s.svc.behind_caddy and p.old:
            self.admin = Admin(s.remote, s.cfg.server.caddy_admin)
            switch.caddy_route(s.cfg, s.svc, self.admin, p.target)  # refuse now, before anything changes
        self.change = switch.Change(
            Slot(p.target, self.version), p.target_port, p.start, p.stop_target, p.logs, p.old, p.stop_old
        )
        return p, self.change

    def migrate(self, p: DeployPlan) -> None:
        s = self.s
        if not p.migrate and not p.pre_migrate:
            s.out.skip(Step.MIGRATE, "no migrate command in services.toml")
            return
        with s.out.step(Step.MIGRATE, " ".join(s.svc.migrate)):
            if p.pre_migrate:  # e.g. a database dump: the way back across this migration
                s.out.note(f"pre-migrate: {' '.join(s.svc.pre_migrate)}")
                s.out.note(s.run(p.pre_migrate).stdout.strip()[-2000:] or "(no output)")
            if not p.migrate:
                return
            result = s.run(p.migrate)
            self.migrated = True
            s.out.note(result.stdout.strip()[-2000:] or "(no output)")

    def record(self, new: State, p: DeployPlan, **fields: object) -> Recorded:
        """The state and the history line; what could not be written fails the step, saying what is live."""
        s = self.s
        problems = []
        try:
            s.write_state(new)
        except LockLost:
            raise
        except PublicWorksError as e:
            path = s.cfg.state_file(s.svc.name)
            problems.append(f"the state file {path} could not be written: {e.message.splitlines()[-1]}")
        rec = s.record(
            self.version,
            "success",
            p.target,
            migrations="ran" if self.migrated else None,
            duration=f"{s.out.elapsed():.1f}s",
            state="unwritten" if problems else None,
            **fields,
        )
        if rec.error:
            problems.append(rec.error)
        if problems:
            live = f"{self.version} is live on {p.target}" + (
                f"; {p.old.color} ({p.old.version}) stopped" if p.old else ""
            )
            raise RecordFailed(f"{live}, but " + "; ".join(problems))
        return rec

    def _colors(self) -> str | None:
        p = self.plan
        if not p:
            return None
        return f"{p.old.color} ({p.old.version}) → {p.target}" if p.old else f"(none) → {p.target}"

    def abandoned(self, why: str) -> int:
        """A signal or the lost lock during the canary: both colors keep serving, the state records the canary."""
        s, out, p = self.s, self.s.out, self.plan
        assert p is not None and p.old is not None
        out.error(f"canary left unfinished: {why}")
        lost = "lock" in why
        rec = s.record(
            self.version,
            "aborted" if lost else "failure",
            p.target,
            step="canary",
            canary="unfinished",
            reason="lock-lost" if lost else None,
        )
        out.summary(
            f"UNFINISHED: {s.svc.name} {self.version} on {p.target} and {p.old.version} on {p.old.color} both keep "
            f"serving. `publicworks rollback --service {s.svc.name}` stops {p.target}; `publicworks deploy` treats "
            f"{p.target} as the serving color.",
            ok=False,
            facts=Facts(s.svc.name, self.version, self._colors(), s.actor, rec.entry.line()),
        )
        s.notifier.send("failure", s.svc.name, f"{self.version}: canary left unfinished ({why}); both colors serve")
        return FAILED

    def failed(self, e: Exception) -> int:
        """One path for every failure after the lock: undo what is safe to undo, then say what really runs."""
        s, out, ch, p = self.s, self.s.out, self.change, self.plan
        if isinstance(e, RecordFailed):
            out.summary(
                f"INCOMPLETE: {e.message}", ok=False, facts=Facts(s.svc.name, self.version, self._colors(), s.actor)
            )
            s.notifier.send("failure", s.svc.name, f"{self.version} is live, records incomplete: {e.message}")
            return FAILED
        a = aftermath(s, ch, e, "deploy", self.version)
        if ch and ch.started and not a.live and not a.undo_problem and a.owner:
            self._put_back_state(ch.new)
        if a.live and a.owner:
            self._record_live_state()
        target = p.target if p else None
        fields: dict[str, object] = {
            "step": a.step,
            "migrations": "ran" if self.migrated else None,
            "live": f"{target}:{self.version}" if a.live else None,
            "undo": "failed" if a.undo_problem else None,
        }
        if a.lost:
            rec = s.record(self.version, "aborted", target, reason="lock-lost", **fields)
            after = (
                "took the lock again once it was free and finished cleanly"
                if a.retaken
                else "changed nothing after that"
            )
            text = f"ABORTED: {s.svc.name} {self.version}: {a.message}. This run {after}. Now: {a.runs}"
        else:
            rec = s.record(self.version, "failure", target, **fields)
            head = (
                f"{self.version} is live on {target}, but the run failed" if a.live else f"{self.version} not deployed"
            )
            extra = f" Stopping {target} again failed: {a.undo_problem}." if a.undo_problem else ""
            text = f"FAILED: {s.svc.name} {head} ({a.step}).{extra} Now: {a.runs}"
        if rec.error:
            text += f". {rec.error}"
        out.summary(text, ok=False, facts=Facts(s.svc.name, self.version, self._colors(), s.actor, rec.entry.line()))
        s.notifier.send(
            "failure", s.svc.name, f"{self.version} failed at {a.step}: {a.message.splitlines()[0]}. Now: {a.runs}"
        )
        return FAILED

    def _put_back_state(self, new: Slot) -> None:
        """This run's canary record must not outlive a failure that stopped the new color again."""
        s = self.s
        try:
            now = s.read_state()
            if now.canary is not None and now.canary.new == new:
                s.write_state(self.before)
        except Exception as e:  # noqa: BLE001  (the failure path must finish and report)
            s.out.warn(f"could not put the state back: {e}")

    def _record_live_state(self) -> None:
        """The old color's stop was sent: the new one serves (Caddy proved it), whatever happened next."""
        s, p = self.s, self.plan
        if p is None:
            return
        try:
            s.write_state(self.before.deployed(p.target, self.version, p.old, self.migrated, s.now()))
        except Exception as e:  # noqa: BLE001  (the failure path must finish and report)
            s.out.warn(f"could not record the state: {e}")


def dry_run(s: Session, version: str, canary_seconds: float) -> int:
    """Print the plan — colors, ports, the exact remote commands — and change nothing."""
    out = s.out
    state = s.read_state()
    p = plan.deploy_plan(s.svc, s.views(), state, version)
    out.line(f"dry run: deploy {s.svc.name} {version} — nothing will be changed")
    out.line(f"  lock: {s.cfg.server.lock_file} ({probe_lock(s.remote, s.cfg.server.lock_file).describe()})")
    for note in p.notes:
        out.line(f"  note: {note}")
    for conflict in p.conflicts:
        out.line(f"  CONFLICT (the deploy would stop here): {conflict}")
    old = f"{p.old.color} ({p.old.version}) on port {p.old_port}" if p.old else "nothing (first deploy)"
    out.line(f"  serving now: {old}")
    out.line(f"  target: {p.target} on port {p.target_port}")
    caddy_note = (
        "wait until Caddy's own health view calls the new color healthy"
        if s.svc.behind_caddy and p.old
        else "Caddy not consulted"
    )
    for step, commands in p.steps():
        extra = {
            Step.HEALTH: f"GET http://127.0.0.1:{p.target_port}{s.svc.health_path} through the SSH tunnel "
            f"until 200, up to {s.svc.ready_timeout:g}s",
            Step.SWITCH: caddy_note,
            Step.CANARY: f"both colors serve for {canary_seconds:g}s" if canary_seconds and p.old else "none",
            Step.RECORD: f"state {s.cfg.state_file(s.svc.name)}, history {s.cfg.server.history_file}",
        }.get(step, "" if commands else "none")
        out.line(f"  {out.number(step)}{step}" + (f": {extra}" if extra else ""))
        for c in commands:
            out.line(f"      $ {c}")
    return OK

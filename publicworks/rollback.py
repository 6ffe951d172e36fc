"""`inv rollback`: the undo button.

- During a running canary (the deploy of this service holds the lock): write the design's marker and
  wait until the deploy has stopped the new color — it looks for the marker every half second.
- A canary left unfinished (the state records one, its new color runs, nobody holds the lock): stop
  its new color.
- Otherwise (`plan.rollback_plan`): the newest version that served before the current one and was
  never rolled back from — or `--to VERSION` — on the idle color, from its stopped containers when they
  are still there; health-checked through the tunnel, proven routed by Caddy, then the current color
  stops. The version rolled back from is rejected: the next plain rollback walks further back.
  Migrations never run on rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from . import canary, plan, switch
from . import commands as cmd
from .admin import Admin
from .config import Config, check_version
from .errors import BAD_INPUT, FAILED, OK, BadInput, LockBusy, PublicWorksError
from .failure import aftermath
from .lock import probe as probe_lock
from .output import Facts, Reporter
from .plan import Refusal, RollbackPlan
from .remote import Remote, connect
from .session import Recorded, Session, open_session
from .state import State
from .steps import ROLLBACK, Step

REQUEST_WAIT = 60.0  # how long to wait for a running deploy to act on the marker


@dataclass(frozen=True)
class Options:
    service: str
    to: str | None = None
    yes: bool = False
    wait_lock: float = 0


def rollback(
    cfg: Config,
    opts: Options,
    out: Reporter,
    connect_to: Callable[..., Remote] = connect,
    ask: Callable[[str], bool] | None = None,
) -> int:
    """Roll back; `ask` (a terminal's yes/no) may lift a refusal that --yes would lift."""
    svc = cfg.service(opts.service)
    if opts.to is not None:
        check_version(opts.to, "--to")
    out.steps = ROLLBACK
    if len(cfg.targets(svc)) > 1:
        from .multihost import rollback_hosts  # it builds on Rollback

        return rollback_hosts(cfg, svc, opts, out, connect_to, ask)
    with open_session(cfg, svc, out, connect_to) as s:
        return Rollback(s, opts, ask).run()


class Rollback:
    def __init__(self, s: Session, opts: Options, ask: Callable[[str], bool] | None = None) -> None:
        self.s = s
        self.opts = opts
        self.ask = ask
        self.plan: RollbackPlan | None = None
        self.change: switch.Change | None = None
        self.admin: Admin | None = None
        self.state: State | None = None

    def run(self) -> int:
        s, out = self.s, self.s.out
        s.notifier.announce()
        try:
            with out.step(Step.LOCK, s.cfg.server.lock_file):
                s.take_lock("rollback", self.opts.to or "", self.opts.wait_lock)
        except LockBusy:
            info = probe_lock(s.remote, s.cfg.server.lock_file)
            current = s.read_state()
            if self.opts.to is not None or not info.by_canary_of(s.svc.name) or current.canary is None:
                raise
            out.note("held by the deploy running this service's canary")
            return self.request(current)
        try:
            return self.steps()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001  (every failure after the lock goes through one path)
            return self.failed(e)
        finally:
            if self.admin is not None:
                self.admin.close()
            s.release()

    def steps(self) -> int:
        s, out = self.s, self.s.out
        c = self.inspect()
        if c:
            return self.end_unfinished_canary()
        t0 = s.clock.monotonic()
        self.bring_up()
        rec = self.finish()
        p = self.plan
        assert p is not None
        frm = p.serving
        took = s.clock.monotonic() - t0
        frm_text = f" from {frm.version} ({frm.color})" if frm else ""
        text = f"rolled back {s.svc.name}{frm_text} to {p.to.version} on {p.to.color} in {took:.1f}s"
        out.summary(
            text + (f", but {rec.error}" if rec.error else ""),
            ok=not rec.error,
            facts=Facts(s.svc.name, p.to.version, self._colors(), s.actor, rec.entry.line()),
        )
        s.notifier.send(
            "rollback", s.svc.name, f"{p.reason}: {frm.version if frm else '-'} → {p.to.version} ({s.actor})"
        )
        return FAILED if rec.error else OK

    # -- the phases: one host's part (a rollback across hosts runs them host by host) -----------------

    def inspect(self) -> bool:
        """Read what runs; decide. True when the rollback is the end of an unfinished canary."""
        s, out = self.s, self.s.out
        with out.step(Step.INSPECT):
            state, views = s.read_state(), s.views()
            self.state = state
            c = state.canary if self.opts.to is None and plan.canary_to_end(state, views) else None
            if c:
                out.warn(
                    f"a canary was left unfinished: {c.new.color} ({c.new.version}) beside "
                    f"{c.old.color} ({c.old.version}); stopping {c.new.color}"
                )
            else:
                self.decide(state, views)
        return c is not None

    def bring_up(self) -> None:
        s, ch = self.s, self.change
        assert ch is not None
        switch.start(s, ch, self.admin)
        switch.wait_healthy(s, ch, s.svc.ready_timeout)
        switch.prove(s, ch, self.admin)

    def finish(self, **fields: object) -> Recorded:
        s, ch, p, state = self.s, self.change, self.plan, self.state
        assert ch is not None and p is not None and state is not None
        switch.stop_old(s, ch)
        with s.out.step(Step.RECORD):
            frm = p.serving
            why = f"rolled back ({p.reason}) at {s.now()} by {s.actor}"
            s.write_state(state.rolled_back(p.to, frm, why, s.now()))
            return s.record(
                p.to.version,
                "rollback",
                p.to.color,
                reason=p.reason,
                **({"from": f"{frm.color}:{frm.version}"} if frm else {}),
                **fields,
            )

    def decide(self, state: State, views: dict) -> RollbackPlan:
        s = self.s
        entries = s.history()
        result = plan.rollback_plan(s.svc, views, state, entries, self.opts.to, self.opts.yes)
        if isinstance(result, Refusal) and result.consent and self.ask is not None:
            if self.ask(result.reason.removesuffix(" Re-run with --yes to proceed.") + " Roll back anyway? [y/N] "):
                result = plan.rollback_plan(s.svc, views, state, entries, self.opts.to, True)
            else:
                raise BadInput("rollback cancelled")
        if isinstance(result, Refusal):
            raise BadInput(result.reason)
        for note in result.notes:
            s.out.warn(note)
        for warning in result.warnings:
            s.out.warn(warning)
        frm = result.serving
        s.out.note(
            f"{frm.color} serves {frm.version}; rolling back to {result.to.version} on {result.to.color}"
            if frm
            else f"nothing serves; starting {result.to.version} on {result.to.color}"
        )
        if s.svc.behind_caddy and frm:
            self.admin = Admin(s.remote, s.cfg.server.caddy_admin)
            switch.caddy_route(s.cfg, s.svc, self.admin, result.to.color)
        self.plan = result
        self.change = switch.Change(
            result.to, s.svc.ports[result.to.color], result.start, result.stop_to, result.logs, frm, result.stop_serving
        )
        return result

    def _colors(self) -> str | None:
        p = self.plan
        if p is None:
            return None
        return f"{p.serving.color} ({p.serving.version}) → {p.to.color}" if p.serving else f"(none) → {p.to.color}"

    # -- a canary in progress ----------------------------------------------------------------------

    def request(self, state: State) -> int:
        """Another process runs this service's canary: ask it to roll back (the marker) and wait until it has."""
        s, out, c = self.s, self.s.out, state.canary
        assert c is not None
        t0 = s.clock.monotonic()
        s.run(cmd.write_marker(s.svc.marker, json.dumps({"actor": s.actor, "at": s.now()}) + "\n"))
        out.note(
            f"a deploy holds the lock and runs a canary ({c.new.color} {c.new.version} beside {c.old.color} "
            f"{c.old.version}): rollback requested ({s.svc.marker}); waiting for it"
        )
        while s.clock.monotonic() - t0 < REQUEST_WAIT:
            if s.interrupts():
                out.summary(
                    f"stopped waiting ({s.interrupts.signal}); the request stays in {s.svc.marker} "
                    "and the deploy acts on it within a second",
                    ok=False,
                )
                return FAILED
            now = s.read_state()
            if now.canary is None or now.canary.new != c.new:
                took = s.clock.monotonic() - t0
                s.run(cmd.consume_marker(s.svc.marker), check=False)  # ours, if nobody took it
                if now.active == c.old.color:
                    out.summary(
                        f"rolled back {s.svc.name} in {took:.1f}s: {c.new.color} ({c.new.version}) stopped; "
                        f"{c.old.color} ({c.old.version}) serves",
                        ok=True,
                    )
                    return OK
                out.summary(
                    f"the canary finished before the request was seen: {now.active} ({now.active_version}) "
                    f"serves alone. Run `publicworks rollback --service {s.svc.name}` again to roll it back.",
                    ok=False,
                )
                return FAILED
            s.clock.sleep(0.2)
        out.summary(
            f"the deploy holding the lock did not act on the request within {REQUEST_WAIT:g}s "
            f"({probe_lock(s.remote, s.cfg.server.lock_file).describe()}); the marker stays",
            ok=False,
        )
        return FAILED

    def end_unfinished_canary(self) -> int:
        s, state = self.s, self.state
        assert state is not None and state.canary is not None
        c = state.canary
        t0 = s.clock.monotonic()
        admin = Admin(s.remote, s.cfg.server.caddy_admin) if s.svc.behind_caddy else None
        try:
            canary.end(s, state, c.old, c.new, "unfinished-canary", "the canary was left unfinished", admin)
        finally:
            if admin is not None:
                admin.close()
        s.out.note(f"{c.new.color} stopped {s.clock.monotonic() - t0:.1f}s after the lock was taken")
        return OK

    def failed(self, e: Exception) -> int:
        s, out, p = self.s, self.s.out, self.plan
        if isinstance(e, PublicWorksError) and e.code == BAD_INPUT:
            out.error(e.message)
            return BAD_INPUT  # refused: nothing was touched
        to = p.to if p else None
        a = aftermath(s, self.change, e, "rollback", to.version if to and to.version else "")
        if a.live and a.owner and p is not None and self.state is not None:
            try:  # the stop of the serving color was sent: the version rolled back to serves
                why = f"rolled back ({p.reason}) at {s.now()} by {s.actor}"
                s.write_state(self.state.rolled_back(p.to, p.serving, why, s.now()))
            except Exception as err:  # noqa: BLE001  (the failure path must finish and report)
                out.warn(f"could not record the state: {err}")
        fields: dict[str, object] = {
            "step": a.step,
            "action": "rollback",
            "live": f"{to.color}:{to.version}" if a.live and to else None,
            "undo": "failed" if a.undo_problem else None,
        }
        version, color = (to.version, to.color) if to else (None, None)
        if a.lost:
            rec = s.record(version, "aborted", color, reason="lock-lost", **fields)
            after = (
                "took the lock again once it was free and finished cleanly"
                if a.retaken
                else "changed nothing after that"
            )
            text = f"ABORTED: rollback of {s.svc.name}: {a.message}. This run {after}. Now: {a.runs}"
        else:
            rec = s.record(version, "failure", color, **fields)
            extra = f" Stopping {color or 'it'} again failed: {a.undo_problem}." if a.undo_problem else ""
            text = f"ROLLBACK FAILED ({a.step}).{extra} Now: {a.runs}"
        if rec.error:
            text += f". {rec.error}"
        out.summary(
            text,
            ok=False,
            facts=Facts(s.svc.name, to.version if to else None, self._colors(), s.actor, rec.entry.line()),
        )
        s.notifier.send(
            "failure", s.svc.name, f"rollback failed at {a.step}: {a.message.splitlines()[0]}. Now: {a.runs}"
        )
        return FAILED

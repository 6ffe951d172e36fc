"""`inv rollback`: the undo button.

- During a running canary (the deploy holds the lock): write the design's marker and wait until the
  deploy has stopped the new color — it looks for the marker every half second.
- A canary left unfinished (state records one, nobody holds the lock): stop its new color.
- Otherwise: put the previous version (or `--to VERSION`) on the idle color — its stopped containers
  when they are still there, pulling only if the image is gone — health-check it through the tunnel,
  then retire the current color. Migrations never run on rollback.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from . import canary, plan, server, switch
from . import commands as cmd
from .config import Config, check_version
from .errors import BAD_INPUT, FAILED, OK, LockBusy, PublicWorksError
from .history import now_iso
from .lock import probe as probe_lock
from .output import Reporter
from .session import Session, open_session
from .state import Slot, State

STEPS = ["lock", "inspect", "start", "health", "switch", "record"]
REQUEST_WAIT = 60.0  # how long to wait for a running deploy to act on the marker


@dataclass(frozen=True)
class Options:
    service: str
    to: str | None = None
    yes: bool = False
    wait_lock: float = 0


def rollback(cfg: Config, opts: Options, out: Reporter) -> int:
    svc = cfg.service(opts.service)
    if opts.to:
        check_version(opts.to)
    out.steps = STEPS
    with open_session(cfg, svc, out) as s:
        return Rollback(s, opts).run()


class Rollback:
    def __init__(self, s: Session, opts: Options) -> None:
        self.s = s
        self.opts = opts
        self.to: Slot | None = None  # where the rollback goes, once decided

    def run(self) -> int:
        s, out = self.s, self.s.out
        s.notifier.announce()
        with out.step("lock", s.cfg.server.lock_file):
            try:
                lock = s.lock("rollback", self.opts.to or "", self.opts.wait_lock)
            except LockBusy:
                current = s.read_state()
                if not current.canary or self.opts.to:
                    raise
                out.note("held by the deploy running this service's canary")
                return self.request(current)
        try:
            with out.step("inspect"):
                state = s.read_state()
                views = server.views(s.remote, s.svc)
                c = state.canary if not self.opts.to else None  # we hold the lock: nobody is running it
                if c:
                    out.warn(f"a canary was left unfinished: {c.new.color} ({c.new.version}) beside "
                             f"{c.old.color} ({c.old.version}); stopping {c.new.color}")
                else:
                    serving, self.to = self.target(state, views)
            if c:
                return self.end_unfinished_canary(state)
            return self.switch_to(state, views, serving, self.to)
        except PublicWorksError as e:
            step = out.failed_step or "rollback"
            out.error(f"{step} failed: {e.message}")
            if e.code == BAD_INPUT:
                return BAD_INPUT
            to = self.to
            entry = s.record(to.version if to else "-", "failure", to.color if to else "-", step=step, action="rollback")
            out.summary(f"ROLLBACK FAILED ({step}); what served before still serves", ok=False,
                        facts=s.facts(to.version if to else None, None, None, entry))
            s.notifier.send("failure", s.svc.name, f"rollback failed: {e.message.splitlines()[0]}")
            return FAILED
        finally:
            lock.release()

    # -- a canary in progress ----------------------------------------------------------------------

    def request(self, state: State) -> int:
        """Another process runs a canary: ask it to roll back (the marker) and wait until it has."""
        s, out, c = self.s, self.s.out, state.canary
        assert c is not None
        t0 = time.monotonic()
        note = json.dumps({"actor": s.actor, "at": now_iso()})
        s.run(cmd.write_file(s.svc.marker, note + "\n"))
        out.note(f"a deploy holds the lock and runs a canary ({c.new.color} {c.new.version} beside {c.old.color} "
                 f"{c.old.version}): rollback requested ({s.svc.marker}); waiting for it")
        while time.monotonic() - t0 < REQUEST_WAIT:
            if s.interrupts():
                out.summary(f"stopped waiting ({s.interrupts.signal}); the request stays in {s.svc.marker} "
                            "and the deploy acts on it within a second", ok=False)
                return FAILED
            now = s.read_state()
            if now.canary is None:
                took = time.monotonic() - t0
                if now.active == c.old.color:
                    out.summary(f"rolled back {s.svc.name} in {took:.1f}s: {c.new.color} ({c.new.version}) stopped; "
                                f"{c.old.color} ({c.old.version}) serves", ok=True)
                    return OK
                s.run(cmd.consume_marker(s.svc.marker), check=False)
                out.summary(f"the canary finished before the request was seen: {now.active} ({now.active_version}) "
                            f"serves alone. Run `inv rollback --service {s.svc.name}` again to roll it back.", ok=False)
                return FAILED
            time.sleep(0.2)
        out.summary(f"the deploy holding the lock did not act on the request within {REQUEST_WAIT:g}s "
                    f"({probe_lock(s.remote, s.cfg.server.lock_file).describe()}); the marker stays", ok=False)
        return FAILED

    def end_unfinished_canary(self, state: State) -> int:
        c = state.canary
        assert c is not None
        t0 = time.monotonic()
        canary.rollback(self.s, state, c.old, c.new, "unfinished-canary", "the canary was left unfinished")
        self.s.out.note(f"{c.new.color} stopped {time.monotonic() - t0:.1f}s after the lock was taken")
        return OK

    # -- a completed deploy ------------------------------------------------------------------------

    def target(self, state: State, views: dict) -> tuple[Slot | None, Slot]:
        """What serves now, and the version to go back to on the idle color."""
        d = plan.decide(views, state)
        for note in d.notes:
            self.s.out.warn(note)
        serving = Slot(d.serving, d.serving_version) if d.serving else None
        if self.opts.to:
            self.check_to(state, serving)
            return serving, Slot(d.target, self.opts.to)
        prev = state.previous
        if not prev or not prev.version:
            raise PublicWorksError(
                f"nothing to roll back to: the state of {self.s.svc.name} records no previous version "
                f"(first deploy?). Use --to VERSION with a version from `inv history`.", BAD_INPUT)
        if serving and prev.version == serving.version:
            raise PublicWorksError(f"{prev.version} is what already serves (on {serving.color}); nothing to roll back",
                                   BAD_INPUT)
        if serving and serving.version in state.migrated:
            self.s.out.warn(f"{serving.version} ran migrations; {prev.version} will run on the migrated schema")
        return serving, Slot(d.target, prev.version)

    def check_to(self, state: State, serving: Slot | None) -> None:
        """--to must name a version from the history; crossing a migration needs the user's consent."""
        to = self.opts.to
        entries = [e for e in server.tail_history(self.s.remote, self.s.cfg, 5000) if e.parsed and e.service == self.s.svc.name]
        served = [i for i, e in enumerate(entries) if e.version == to and e.status in ("success", "rollback")]
        if not served:
            raise PublicWorksError(f"{to} never served {self.s.svc.name} (not in the history); "
                                   f"deploy it with `inv deploy` instead", BAD_INPUT)
        if serving and serving.version == to:
            raise PublicWorksError(f"{to} is what already serves (on {serving.color})", BAD_INPUT)
        # A deploy that failed after its migration ran changed the schema all the same.
        later = [e.version for e in entries[served[-1] + 1:]
                 if e.status in ("success", "failure") and e.fields.get("migrations") == "ran" and e.version != to]
        if later:
            msg = (f"{to} is older than deploy(s) that ran migrations: {', '.join(dict.fromkeys(later))}. "
                   f"{to} would run against the migrated schema.")
            if self.opts.yes:
                self.s.out.warn(msg + " Proceeding (--yes).")
            elif sys.stdin.isatty():
                answer = input(f"{msg} Roll back anyway? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    raise PublicWorksError("rollback cancelled", BAD_INPUT)
            else:
                raise PublicWorksError(msg + " Re-run with --yes to proceed.", BAD_INPUT)

    def switch_to(self, state: State, views: dict, serving: Slot | None, to: Slot) -> int:
        s, out, svc = self.s, self.s.out, self.s.svc
        assert to.version is not None
        out.note(f"{serving.color} serves {serving.version}; rolling back to {to.version} on {to.color}"
                 if serving else f"nothing serves; starting {to.version} on {to.color}")
        t0 = time.monotonic()
        healthy = switch.bring_up(s, to.color, to.version, cmd.up(svc, to.color, to.version), cmd.stop(svc, to.color, to.version),
                        cmd.logs(svc, to.color, to.version), svc.ready_timeout)
        with out.step("switch", f"{to.color} serves; stopping {serving.color}" if serving else "nothing to stop"):
            if serving:
                switch.retire(s, serving.color, plan.stop_color(svc, views[serving.color], serving.version or to.version),
                              healthy_since=healthy.at)
        took = time.monotonic() - t0
        with out.step("record"):
            s.write_state(state.rolled_back(to, serving))
            entry = s.record(to.version, "rollback", to.color, reason="to" if self.opts.to else "previous",
                             **({"from": f"{serving.color}:{serving.version}"} if serving else {}))
        frm = f" from {serving.version} ({serving.color})" if serving else ""
        out.summary(f"rolled back {svc.name}{frm} to {to.version} on {to.color} in {took:.1f}s", ok=True,
                    facts=s.facts(to.version, serving, to.color, entry))
        s.notifier.send("rollback", svc.name, f"requested: {serving.version if serving else '-'} → {to.version} ({s.actor})")
        return OK


"""A deploy or a rollback of a service on several hosts, rolled host by host (services.X.hosts).

Every host keeps its own lock, state and history, and runs the same per-host phases as on one host
(`Deploy.prepare` / `bring_up` / `finish`, `Rollback.inspect` / `bring_up` / `finish`). Across hosts:

- the locks are taken in one fixed order (by host name), so two runs whose hosts overlap never wait on
  each other in a circle: the second stops at the first busy host, exit 3, naming the holder;
- inspect and pull run on every host at once (a Fabric ThreadingGroup); migrations run once, on the
  service's first host;
- then hosts switch `hosts_at_once` at a time: start, health, Caddy's proof, stop the old color;
- a canary starts once every host has both colors serving, and a request or an automatic rollback
  ends it on every host;
- if a host fails, the roll stops there: hosts already switched go back to their previous color (their
  old containers were only stopped), the failed host is left as on a single host, the rest are
  untouched; exit 1, saying per host what serves. The state and the history line of every host are
  written once every host has switched, with `hosts=...`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from . import canary, freeze, hosts, switch
from . import commands as cmd
from .canary import Ended
from .config import Config, ServiceConfig
from .deploy import Deploy
from .errors import FAILED, OK, BadInput, LockBusy, PublicWorksError
from .interrupts import Interrupts
from .lock import probe as probe_lock
from .notify import Notifier
from .output import Reporter
from .remote import Remote
from .rollback import Options as RollbackOptions
from .rollback import Rollback
from .session import Session
from .steps import Step


@contextlib.contextmanager
def sessions(
    cfg: Config, svc: ServiceConfig, out: Reporter, connect_to: Callable[..., Remote]
) -> Iterator[list[Session]]:
    """One connection, and one session, per host of the service; one set of signal handlers, one notifier."""
    notifier = Notifier.from_env(out)
    opened: list[Session] = []
    try:
        with Interrupts() as interrupts:
            for server in cfg.targets(svc):
                host_out = out.for_host(server.label)
                remote = connect_to(server, echo=host_out.command)
                quiet = Notifier(None, host_out)  # only the first host's session posts to Slack
                opened.append(
                    Session(
                        replace(cfg, server=server),
                        svc,
                        remote,
                        host_out,
                        interrupts,
                        notifier if not opened else quiet,
                        clock=out.clock,
                    )
                )
            yield opened
    finally:
        notifier.close()
        for s in opened:
            s.remote.close()


def take_locks(group: list[Session], action: str, version: str, wait: float) -> None:
    """Every host's lock, in one fixed order; at a busy one, the locks already taken are given back."""
    taken: list[Session] = []
    for s in sorted(group, key=lambda x: x.cfg.server.label):
        try:
            with s.out.step(Step.LOCK, s.cfg.server.lock_file):
                s.take_lock(action, version, wait)
        except PublicWorksError as e:
            for t in taken:
                t.release()
            if isinstance(e, LockBusy):
                raise LockBusy(f"on {s.cfg.server.label}: {e.message}") from None
            raise
        taken.append(s)


def _conn(s: Session) -> hosts.HostConnection:
    conn: hosts.HostConnection = s.remote.conn  # type: ignore[attr-defined]  # SSHRemote's, or the fake's
    return conn


def at_once(group: Sequence[Session], work: Callable[[Session], object]) -> dict[Session, Exception | None]:
    """`work` on every host of `group` at once (a ThreadingGroup); host -> the exception it raised, or None."""
    done = hosts.at_once(list(group), _conn, work)
    return {s: r if isinstance(r, Exception) else None for s, r in done.items()}


class Phases(Protocol):
    """One host's part of a roll (a Deploy or a Rollback)."""

    s: Session
    change: switch.Change | None

    def bring_up(self) -> None: ...
    def failed(self, e: Exception) -> int: ...


class Roll:
    """What deploys and rollbacks across hosts share: switching host by host, and stopping at a failure."""

    def __init__(self, group: list[Session], runs: dict[Session, Phases], version: str) -> None:
        self.group = group
        self.runs = runs
        self.version = version
        self.lead = group[0]
        self.names = ",".join(s.cfg.server.label for s in group)

    def switch_each(self, stop_old: bool) -> dict[Session, Exception]:
        """bring_up (and, without a canary, stop the old color) host by host; the failures, if any."""
        switched: list[Session] = []
        at = max(1, self.lead.svc.hosts_at_once)
        for i in range(0, len(self.group), at):
            batch = self.group[i : i + at]
            done = at_once(batch, lambda s: self.switch_one(s, stop_old))
            failed = {s: e for s, e in done.items() if e is not None}
            switched += [s for s in batch if s not in failed]
            if failed:
                self.stop_here(failed, switched)
                return failed
        return {}

    def switch_one(self, s: Session, stop_old: bool) -> None:
        run = self.runs[s]
        run.bring_up()
        if stop_old and run.change is not None:
            switch.stop_old(s, run.change)

    def stop_here(self, failed: dict[Session, Exception], switched: list[Session]) -> None:
        """A host failed: it takes its own failure path; hosts already switched go back; the rest stay."""
        for s, e in failed.items():
            self.runs[s].failed(e)
        back = at_once(switched, self.switch_back)
        culprit = ", ".join(s.cfg.server.label for s in failed)
        for s in self.group:
            if s in failed:
                continue
            outcome = "untouched"
            if s in switched:
                outcome = "switched back" if back[s] is None else "NOT switched back"
            s.record(
                self.version, "failure", None, step="rollout", failed_on=culprit, outcome=outcome, hosts=self.names
            )
            why = f": {back[s]}" if s in switched and back[s] is not None else ""
            s.out.summary(
                f"{self.version} not rolled out on {s.cfg.server.label}: {outcome}{why} ({culprit} "
                f"failed). Now: {switch.what_runs(s)}",
                ok=False,
            )
        self.lead.out.for_host("").summary(
            f"FAILED: {self.lead.svc.name} {self.version} failed on {culprit}; the hosts already switched went "
            "back, the others were untouched (each host's line says what serves)",
            ok=False,
        )
        self.lead.notifier.send(
            "failure",
            self.lead.svc.name,
            f"{self.version} failed on {culprit}; the other hosts serve what they served before",
        )

    def switch_back(self, s: Session) -> None:
        """A host that switched goes back: its old color's containers start again, Caddy proves it, the new
        color stops. Its state was not written yet, so it stays as it was."""
        run = self.runs[s]
        ch = run.change
        assert ch is not None
        if not ch.stopping or ch.old is None:
            switch.undo(s, ch)  # the old color never stopped: stopping the new one is enough
            return
        svc, old = s.svc, ch.old
        back = switch.Change(
            old,
            svc.ports[old.color],
            cmd.up(svc, old.color, old.version or ""),
            cmd.stop(svc, old.color, old.version or ""),
            cmd.logs(svc, old.color, old.version or ""),
            ch.new,
            (cmd.stop(svc, ch.new.color, ch.new.version or ""),),
        )
        s.out.note(f"switching back to {old.color} ({old.version}): another host failed")
        admin = getattr(run, "admin", None)
        switch.start(s, back, admin)
        switch.wait_healthy(s, back, svc.ready_timeout)
        switch.prove(s, back, admin)
        switch.stop_old(s, back)

    def roll(self) -> int:
        raise NotImplementedError

    def rolled(self) -> int:
        """`roll` with every lock held; the locks are given back and the admin tunnels closed however it ends."""
        try:
            return self.roll()
        except BadInput as e:
            self.lead.out.error(e.message)
            return e.code
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001  (a failure of the roll itself: say what serves where)
            return self.unexpected(e)
        finally:
            self.close()

    def close(self) -> None:
        for run in self.runs.values():
            admin = getattr(run, "admin", None)
            if admin is not None:
                admin.close()
        for s in self.group:
            s.release()

    def unexpected(self, e: Exception) -> int:
        text = e.message if isinstance(e, PublicWorksError) else f"unexpected error: {type(e).__name__}: {e}"
        self.lead.out.error(text)
        for s in self.group:
            s.out.summary(f"Now: {switch.what_runs(s)}", ok=False)
        return FAILED

    def recorded(self, records: dict[Session, Exception | None], text: str) -> int:
        problems = [f"{s.cfg.server.label}: {e}" for s, e in records.items() if e is not None]
        if problems:
            self.lead.out.for_host("").summary(f"INCOMPLETE: {text}, but " + "; ".join(problems), ok=False)
            return FAILED
        self.lead.out.for_host("").summary(text, ok=True)
        return OK


class MultiDeploy(Roll):
    def __init__(self, group: list[Session], version: str, canary_seconds: float) -> None:
        self.deploys = {s: Deploy(s, version, canary_seconds) for s in group}
        super().__init__(group, dict(self.deploys), version)
        self.canary_seconds = canary_seconds

    def run(self, wait_lock: float) -> int:
        for s in self.group:
            freeze.refuse_if_frozen(s)
        take_locks(self.group, "deploy", self.version, wait_lock)
        return self.rolled()

    def roll(self) -> int:
        lead = self.lead
        lead.notifier.announce()
        lead.notifier.send("deploying", lead.svc.name, f"deploying {self.version} to {self.names} ({lead.actor})")
        prepared = at_once(self.group, lambda s: self.deploys[s].prepare(migrate=s is lead))
        failed = {s: e for s, e in prepared.items() if e is not None}
        if failed:
            self.stop_here(failed, switched=[])
            return FAILED
        with_canary = self.canary_seconds > 0 and all(d.change and d.change.old for d in self.deploys.values())
        if self.switch_each(stop_old=not with_canary):
            return FAILED
        states = {s: self.deploys[s].before for s in self.group}
        if with_canary:
            o = canary.watch([self.deploys[s].member() for s in self.group], self.canary_seconds)
            if o.ended is Ended.ABANDONED:
                for s in self.group:
                    self.deploys[s].abandoned(o.why)
                return FAILED
            if o.ended is not Ended.COMPLETED:
                return FAILED  # ended on every host, each of which said so
            states = dict(zip(self.group, o.states, strict=True))
            stopped = at_once(self.group, self.confirm_and_stop)
            failed = {s: e for s, e in stopped.items() if e is not None}
            if failed:
                self.stop_here(failed, [s for s in self.group if s not in failed])
                return FAILED
        else:
            for s in self.group:
                s.out.skip(Step.CANARY, "canary 0" if self.canary_seconds <= 0 else "a first deploy on a host")
        records = at_once(self.group, lambda s: self.deploys[s].finish(states[s], hosts=self.names))
        code = self.recorded(
            records, f"deployed {lead.svc.name} {self.version} on {self.names} in {lead.out.elapsed():.1f}s"
        )
        if code == OK:
            lead.notifier.send("success", lead.svc.name, f"{self.version} live on {self.names}")
        return code

    def confirm_and_stop(self, s: Session) -> None:
        d = self.deploys[s]
        assert d.change is not None
        switch.stop_old(s, d.change, d.admin)


class MultiRollback(Roll):
    def __init__(self, group: list[Session], opts: RollbackOptions, ask: Callable[[str], bool] | None) -> None:
        self.rollbacks = {s: Rollback(s, opts, ask) for s in group}
        super().__init__(group, dict(self.rollbacks), opts.to or "")
        self.opts = opts

    def run(self) -> int:
        lead = self.lead
        lead.notifier.announce()
        try:
            take_locks(self.group, "rollback", self.opts.to or "", self.opts.wait_lock)
        except LockBusy:
            for s in self.group:
                info = probe_lock(s.remote, s.cfg.server.lock_file)
                current = s.read_state()
                if info.held and self.opts.to is None and info.by_canary_of(s.svc.name) and current.canary:
                    s.out.note("held by the deploy running this service's canary on every host")
                    return self.rollbacks[s].request(current)
            raise
        return self.rolled()

    def roll(self) -> int:
        ending = {s: self.rollbacks[s].inspect() for s in self.group}
        if any(ending.values()):
            for s, end in ending.items():
                if end:
                    self.rollbacks[s].end_unfinished_canary()
            return OK
        targets = {s.cfg.server.label: self.rollbacks[s].plan for s in self.group}
        versions = {p.to.version for p in targets.values() if p}
        if len(versions) != 1:
            raise BadInput(
                "the hosts disagree on the version to go back to ("
                + ", ".join(f"{h}: {p.to.version if p else '-'}" for h, p in targets.items())
                + "): name one with --to"
            )
        self.version = versions.pop() or ""
        if self.switch_each(stop_old=True):
            return FAILED
        records = at_once(self.group, lambda s: self.rollbacks[s].finish(hosts=self.names))
        code = self.recorded(records, f"rolled back {self.lead.svc.name} to {self.version} on {self.names}")
        if code == OK:
            self.lead.notifier.send("rollback", self.lead.svc.name, f"to {self.version} on {self.names}")
        return code


def deploy_hosts(
    cfg: Config,
    svc: ServiceConfig,
    version: str,
    seconds: float,
    wait_lock: float,
    out: Reporter,
    connect_to: Callable[..., Remote],
) -> int:
    with sessions(cfg, svc, out, connect_to) as group:
        return MultiDeploy(group, version, seconds).run(wait_lock)


def rollback_hosts(
    cfg: Config,
    svc: ServiceConfig,
    opts: RollbackOptions,
    out: Reporter,
    connect_to: Callable[..., Remote],
    ask: Callable[[str], bool] | None,
) -> int:
    with sessions(cfg, svc, out, connect_to) as group:
        return MultiRollback(group, opts, ask).run()

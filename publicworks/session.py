"""One run against the server: the open connection, the service, the output, and what it records.

Deploy, rollback and the canary share this: they run commands, take the lock, write the state and the
history, and send notifications through it, so each records and reports the same way.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from . import history, server
from .commands import Command
from .config import Config, ServiceConfig
from .errors import PublicWorksError
from .interrupts import Interrupts
from .lock import Lock, LockInfo, me
from .notify import Notifier
from .output import Reporter
from .remote import Remote, Result, connect
from .state import Slot, State


@dataclass
class Session:
    cfg: Config
    svc: ServiceConfig
    remote: Remote
    out: Reporter
    interrupts: Interrupts
    notifier: Notifier
    actor: str = field(default_factory=history.actor)

    def run(self, command: Command, check: bool = True) -> Result:
        return self.remote.run(command, check=check)

    def lock(self, action: str, version: str, wait: float) -> Lock:
        """Take the server's deploy lock (see `lock`), saying so when it has to wait."""
        lock = Lock(self.remote, self.cfg.server.lock_file, me(action, self.svc.name, version, self.actor))

        def waiting(info: LockInfo) -> None:
            self.out.note(f"the lock is {info.describe()}; waiting up to {wait:g}s")

        lock.acquire(wait, on_wait=waiting)
        return lock

    def read_state(self) -> State:
        current, warning = server.read_state(self.remote, self.cfg, self.svc)
        if warning:
            self.out.warn(warning)
        return current

    def write_state(self, new: State) -> None:
        server.write_state(self.remote, self.cfg, new)

    def record(self, version: str, status: str, color: str, **fields: object) -> history.Entry:
        """Append to the history; a failure to append is reported, never allowed to hide the outcome."""
        e = history.entry(self.svc.name, version or "-", status, color or "-", self.actor, **fields)
        try:
            server.append_history(self.remote, self.cfg, e)
        except PublicWorksError as err:
            self.out.warn(f"could not append to the history {self.cfg.server.history_file}: {err.message}")
        return e

    def facts(self, version: str | None, old: Slot | None, new: str | None, entry: history.Entry | None) -> dict[str, str]:
        """What the job summary shows about a run's outcome."""
        facts = {"service": self.svc.name, "version": version or "-"}
        if old or new:
            facts["colors"] = f"{old.color} ({old.version}) → {new}" if old else f"(none) → {new}"
        facts["actor"] = self.actor
        if entry:
            facts["history"] = f"`{entry.line()}`"
        facts["more"] = f"`publicworks history --service {self.svc.name}`, `publicworks status --service {self.svc.name}`"
        return facts

    def check_interrupt(self) -> None:
        if self.interrupts():
            raise PublicWorksError(f"interrupted ({self.interrupts.signal})")


@contextmanager
def open_session(cfg: Config, svc: ServiceConfig, out: Reporter) -> Iterator[Session]:
    remote = connect(cfg.server, echo=out.command)
    notifier = Notifier.from_env(out)
    try:
        with Interrupts() as interrupts:
            yield Session(cfg, svc, remote, out, interrupts, notifier)
    finally:
        notifier.close()
        remote.close()

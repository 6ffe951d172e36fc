"""One run against the server: the connection, the service, the lock, the output, and what it records.

Deploy, rollback and the canary share this: they run commands, take the lock, write the state and the
history, and send notifications through it, so each records and reports the same way. Every mutating
command goes out fenced by the lock (see `lock`): once the lock has changed hands the server refuses
it and `LockLost` stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from . import commands as cmd
from . import history, server
from .actor import actor
from .clock import Clock, SystemClock, iso
from .commands import Command
from .config import Config, ServerConfig, ServiceConfig
from .errors import LockLost, PublicWorksError
from .interrupts import Interrupts
from .lock import Lock, LockInfo, me
from .notify import Notifier
from .observe import ColorView
from .output import Reporter
from .remote import CommandFailed, Remote, Result, connect
from .state import State

LOST = (
    "this run lost the deploy lock: the server freed it after {window:g}s without a heartbeat (a network "
    "loss longer than server.lock_timeout), and refused this run's next change"
)


@dataclass(eq=False)  # a session is itself: hashable by identity (one per host of a run)
class Session:
    cfg: Config
    svc: ServiceConfig
    remote: Remote
    out: Reporter
    interrupts: Interrupts
    notifier: Notifier
    clock: Clock = field(default_factory=SystemClock)
    actor: str = field(default_factory=actor)
    lock: Lock | None = None
    state_text: str | None = None  # the state file as this run last read or wrote it

    def now(self) -> str:
        return iso(self.clock.now())

    def run(self, command: Command, check: bool = True) -> Result:
        """Run a command; a mutating one only while this run holds the lock, and fenced by it on the server."""
        if command.mutating and self.lock is not None:
            if not self.lock.held:
                raise LockLost(LOST.format(window=self.lock.window) + f" (noticed before: {_short(command)})")
            result = self.remote.run(self.lock.fence(command), check=False)
            if result.exited == cmd.FENCE_EXIT and cmd.FENCE_MARK in result.stderr:
                raise LockLost(LOST.format(window=self.lock.window) + f" (refused: {_short(command)})")
            if check and not result.ok:
                raise CommandFailed(result)
            return result
        return self.remote.run(command, check=check)

    def take_lock(self, action: str, version: str, wait: float) -> Lock:
        """Take the server's deploy lock (see `lock`), saying so when it has to wait."""
        lock = Lock(
            self.remote,
            self.cfg.server.lock_file,
            me(action, self.svc.name, version, self.actor, self.now()),
            self.cfg.server.lock_timeout,
        )

        def waiting(info: LockInfo) -> None:
            self.out.note(f"the lock is {info.describe()}; waiting up to {wait:g}s")

        lock.acquire(wait, on_wait=waiting)
        self.lock = lock
        return lock

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def read_state(self) -> State:
        current, warning, self.state_text = server.read_state(self.remote, self.cfg, self.svc)
        if warning:
            self.out.warn(warning)
        return current

    def views(self) -> dict[str, ColorView]:
        return server.views(self.remote, self.svc)

    def history(self) -> list[history.Entry]:
        return server.tail_history(self.remote, self.cfg, server.HISTORY_DEPTH, self.svc.name)

    def write_state(self, new: State) -> None:
        text = new.to_json()
        self.run(cmd.write_file(self.cfg.state_file(new.service), text))
        self.state_text = text

    def record(self, version: str | None, status: str, color: str | None, **fields: object) -> Recorded:
        """Append to the history. A failure to append is said plainly, never allowed to hide the outcome."""
        e = history.entry(self.now(), self.svc.name, version or "-", status, color or "-", self.actor, **fields)
        command = cmd.append_file(self.cfg.server.history_file, e.line() + "\n")
        try:
            # A run that lost its lock may still say so: an aborted line is written without the lock.
            if status == "aborted":
                self.remote.run(command)
            else:
                self.run(command)
        except LockLost:
            raise
        except Exception as err:  # noqa: BLE001  (a failure to record never hides the outcome)
            text = err.message if isinstance(err, PublicWorksError) else f"{type(err).__name__}: {err}"
            why = text.splitlines()[-1] if text else "unknown error"
            self.out.error(f"could not append to the history {self.cfg.server.history_file}: {why}")
            return Recorded(e, f"the history ({self.cfg.server.history_file}) could not be written: {why}")
        return Recorded(e, None)

    def check_interrupt(self) -> None:
        if self.interrupts():
            raise Interrupted(f"interrupted ({self.interrupts.signal})")


@dataclass(frozen=True)
class Recorded:
    entry: history.Entry
    error: str | None  # set when the line could not be written


class Interrupted(PublicWorksError):
    pass


@contextmanager
def open_session(
    cfg: Config,
    svc: ServiceConfig,
    out: Reporter,
    connect_to: Callable[..., Remote] = connect,
    host: ServerConfig | None = None,
) -> Iterator[Session]:
    """One connection to `host` (default: the service's first host) and a session over it."""
    cfg = replace(cfg, server=host or cfg.targets(svc)[0])
    remote = connect_to(cfg.server, echo=out.command)
    notifier = Notifier.from_env(out)
    try:
        with Interrupts() as interrupts:
            yield Session(cfg, svc, remote, out, interrupts, notifier, clock=out.clock)
    finally:
        notifier.close()
        remote.close()


def _short(command: Command) -> str:
    text = str(cmd.unfenced(command))
    return text if len(text) <= 100 else text[:100] + "…"

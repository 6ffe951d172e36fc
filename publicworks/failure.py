"""What every failed run does first: name the step and the cause, undo what is safe, read what runs.

A run that lost the lock changes nothing more on its own authority. If the lock is free again and the
state file is exactly as this run left it — nobody acted meanwhile — it takes the lock again, as a new
owner, and finishes its failure path under it (stops its own new color, records what is live).
Deploy and rollback then write their own history line and summary from this `Aftermath`.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from . import commands as cmd
from . import switch
from .errors import LockLost, PublicWorksError
from .session import Session
from .steps import Step


@dataclass(frozen=True)
class Aftermath:
    step: Step
    message: str
    lost: bool  # the lock was lost
    retaken: bool  # ... and taken again, nothing having changed meanwhile: the failure path ran under it
    live: bool  # the old color's stop was sent: the new color serves (Caddy proved it)
    undo_problem: str | None  # stopping the new color again failed
    runs: str  # what serves now, read from the server

    @property
    def owner(self) -> bool:
        """This run may still write the state and the history as the lock's owner."""
        return not self.lost or self.retaken


def retake(s: Session, action: str, version: str) -> bool:
    """After losing the lock: take it again if it is free and the state is as this run left it."""
    seen = s.state_text
    s.release()
    s.lock = None
    try:
        s.take_lock(action, version, 0)
    except PublicWorksError as e:
        s.out.note(f"the lock could not be taken again ({e.message.splitlines()[0]}): leaving the server as it is")
        return False
    if seen is None or s.remote.run(cmd.read_file(s.cfg.state_file(s.svc.name))).stdout != seen:
        s.out.note("the state changed after this run lost the lock (another run acted): leaving the server as it is")
        s.release()
        s.lock = None
        return False
    s.out.note("the lock was free again and nothing had changed meanwhile: took it again to finish cleanly")
    return True


def aftermath(s: Session, ch: switch.Change | None, e: Exception, action: str, version: str) -> Aftermath:
    step = s.out.failed_step or Step.INSPECT
    message = e.message if isinstance(e, PublicWorksError) else f"unexpected error: {type(e).__name__}: {e}"
    if not isinstance(e, PublicWorksError) or os.environ.get("PUBLICWORKS_DEBUG"):
        s.out.note("".join(traceback.format_exception(e)).rstrip())
    s.out.error(f"{step} failed: {message}")
    lost = isinstance(e, LockLost)
    retaken = lost and ch is not None and ch.started and retake(s, action, version)
    live = ch is not None and ch.stopping and _old_stopped(s, ch)
    undo_problem = None
    if ch is not None and not live and (not lost or retaken):
        undo_problem = switch.undo(s, ch, verify=retaken)
    return Aftermath(step, message, lost, retaken, live, undo_problem, switch.what_runs(s))


def _old_stopped(s: Session, ch: switch.Change) -> bool:
    """Once the old color's stop was sent, did it happen? (A fence refuses it when the lock was lost.)"""
    if ch.stopped or ch.old is None:
        return True
    try:
        return not s.views()[ch.old.color].running
    except Exception:  # noqa: BLE001  (unknown: the stop may have happened; keep the new color)
        return True

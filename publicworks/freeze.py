"""A deploy freeze: `inv freeze --service S --reason "..."` stops deploys of S (exit 3, naming who froze it
and why) until `inv unfreeze`. Rollbacks still work. A marker file next to the state, shown by `status`.

The deploy lock cannot be held across runs, by design (it belongs to one SSH channel), so a freeze is
its own marker. Freezing and unfreezing are written to the history.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from . import commands as cmd
from .errors import LockBusy
from .remote import Remote
from .session import Session


@dataclass(frozen=True)
class Freeze:
    actor: str
    reason: str
    since: str

    def describe(self) -> str:
        return f"frozen by {self.actor} since {self.since}: {self.reason}"


def parse(text: str) -> Freeze | None:
    if not text.strip():
        return None
    try:
        data = json.loads(text)
        return Freeze(str(data["actor"]), str(data["reason"]), str(data["since"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        return Freeze("someone", f"unreadable freeze marker: {text.strip()[:80]}", "?")


def read(remote: Remote, path: str) -> Freeze | None:
    return parse(remote.run(cmd.read_file(path)).stdout)


def refuse_if_frozen(s: Session) -> None:
    """Deploys stop here, before the lock, when the service is frozen (exit 3)."""
    f = read(s.remote, s.cfg.server.frozen_file(s.svc.name))
    if f:
        raise LockBusy(
            f"deploys of {s.svc.name} are {f.describe()}. Rollbacks still work. "
            f"`publicworks unfreeze --service {s.svc.name}` lifts it."
        )


def freeze(s: Session, reason: str) -> str:
    path = s.cfg.server.frozen_file(s.svc.name)
    current = read(s.remote, path)
    if current:
        return f"{s.svc.name} was already {current.describe()}; left as it is"
    marker = Freeze(s.actor, reason, s.now())
    s.run(cmd.write_marker(path, json.dumps(asdict(marker)) + "\n"))  # an atomic write, no lock needed
    s.record(None, "freeze", None, reason=reason)
    return f"deploys of {s.svc.name} are frozen: {marker.describe()}"


def unfreeze(s: Session) -> str:
    path = s.cfg.server.frozen_file(s.svc.name)
    current = read(s.remote, path)
    if not current:
        return f"{s.svc.name} was not frozen"
    s.run(cmd.remove_file(path))
    s.record(None, "unfreeze", None, was=current.reason)
    return f"deploys of {s.svc.name} may go ahead again (it was {current.describe()})"

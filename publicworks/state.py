"""Per-service state on the server: which color is active, what each color runs, what came before.

One JSON file per service, written atomically (temp file + rename) under the deploy lock. The state is
a record, not the truth: what actually runs (see `observe`) wins when they disagree. Every transition
is a pure function returning a new State.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from .history import now_iso


@dataclass(frozen=True)
class Slot:
    color: str
    version: str | None


@dataclass(frozen=True)
class Canary:
    """A warm standby in progress: both colors serve until `ends_at`."""

    old: Slot
    new: Slot
    started_at: str
    ends_at: str
    actor: str = ""


@dataclass(frozen=True)
class State:
    service: str
    active: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    previous: Slot | None = None
    canary: Canary | None = None
    migrated: tuple[str, ...] = ()  # versions whose deploy ran migrations, oldest first
    updated_at: str = ""

    @property
    def active_version(self) -> str | None:
        return self.versions.get(self.active) if self.active else None

    def to_json(self) -> str:
        data = asdict(self)
        data["migrated"] = list(self.migrated)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    # -- transitions -------------------------------------------------------------------------------

    def _stamp(self, **changes) -> "State":
        return replace(self, **changes, updated_at=now_iso())

    def deployed(self, color: str, version: str, old: Slot | None, migrated: bool) -> "State":
        """`version` now serves alone on `color`; `old` (if any) is what served before it."""
        versions = {**self.versions, color: version}
        return self._stamp(
            active=color,
            versions=versions,
            previous=old if old and old.color != color else self.previous,
            canary=None,
            migrated=self._with_migrated(version, migrated),
        )

    def canary_started(self, old: Slot, new: Slot, started_at: str, ends_at: str, actor: str, migrated: bool) -> "State":
        return self._stamp(
            active=old.color,
            versions={**self.versions, new.color: new.version, old.color: old.version},
            canary=Canary(old, new, started_at, ends_at, actor),
            migrated=self._with_migrated(new.version, migrated),
        )

    def rolled_back(self, to: Slot, frm: Slot | None) -> "State":
        """`to` serves alone again; `frm` is what was rolled back (kept as `previous`, to undo the undo)."""
        return self._stamp(
            active=to.color,
            versions={**self.versions, to.color: to.version},
            previous=frm if frm and frm.color != to.color else self.previous,
            canary=None,
        )

    def _with_migrated(self, version: str | None, migrated: bool) -> tuple[str, ...]:
        if not migrated or not version:
            return self.migrated
        return (tuple(v for v in self.migrated if v != version) + (version,))[-50:]


def _slot(data: object) -> Slot | None:
    if isinstance(data, dict) and isinstance(data.get("color"), str):
        return Slot(data["color"], data.get("version"))
    return None


def parse(text: str, service: str) -> State:
    """Parse a state file; an empty text is a service never deployed. Raises ValueError when unreadable."""
    if not text.strip():
        return State(service)
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("state file is not a JSON object")
    canary = None
    c = data.get("canary")
    if isinstance(c, dict) and _slot(c.get("old")) and _slot(c.get("new")):
        canary = Canary(_slot(c["old"]), _slot(c["new"]), c.get("started_at", ""), c.get("ends_at", ""), c.get("actor", ""))
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    return State(
        service=service,
        active=data.get("active") if data.get("active") in ("blue", "green") else None,
        versions={k: v for k, v in versions.items() if k in ("blue", "green")},
        previous=_slot(data.get("previous")),
        canary=canary,
        migrated=tuple(v for v in data.get("migrated", []) if isinstance(v, str)),
        updated_at=data.get("updated_at", ""),
    )

"""Per-service state on the server: which color is active, what each color runs, what came before.

One JSON file per service, written atomically (temp file + rename) under the deploy lock. The state is
a record, not the truth: what actually runs (see `observe`) wins when they disagree, and a file of the
wrong shape is reported and ignored rather than trusted in part. Every transition is a pure function
returning a new State.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

COLORS = ("blue", "green")


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
    rejected: dict[str, str] = field(default_factory=dict)  # version -> why it was rolled back
    updated_at: str = ""

    @property
    def active_version(self) -> str | None:
        return self.versions.get(self.active) if self.active else None

    def to_json(self) -> str:
        def slot(s: Slot | None) -> dict[str, Any] | None:
            return {"color": s.color, "version": s.version} if s else None

        c = self.canary
        data = {
            "active": self.active,
            "versions": dict(self.versions),
            "previous": slot(self.previous),
            "canary": None
            if not c
            else {
                "old": slot(c.old),
                "new": slot(c.new),
                "started_at": c.started_at,
                "ends_at": c.ends_at,
                "actor": c.actor,
            },
            "migrated": list(self.migrated),
            "rejected": dict(self.rejected),
            "updated_at": self.updated_at,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    # -- transitions -------------------------------------------------------------------------------

    def deployed(self, color: str, version: str, old: Slot | None, migrated: bool, at: str) -> State:
        """`version` now serves alone on `color`; `old` (if any) is what served before it."""
        return replace(
            self,
            active=color,
            versions={**self.versions, color: version},
            previous=old if old and old.color != color else self.previous,
            canary=None,
            migrated=self._with_migrated(version, migrated),
            rejected={v: why for v, why in self.rejected.items() if v != version},  # deployed again on purpose
            updated_at=at,
        )

    def canary_started(self, old: Slot, new: Slot, ends_at: str, actor: str, migrated: bool, at: str) -> State:
        return replace(
            self,
            active=old.color,
            versions={**self.versions, new.color: new.version, old.color: old.version},
            canary=Canary(old, new, at, ends_at, actor),
            migrated=self._with_migrated(new.version, migrated),
            updated_at=at,
        )

    def rolled_back(self, to: Slot, frm: Slot | None, why: str, at: str) -> State:
        """`to` serves alone again; `frm` is what was rolled back from: rejected, so plain rollbacks skip it."""
        rejected = {v: why for v, why in self.rejected.items() if v != to.version}  # brought back on purpose
        if frm and frm.version and frm.version != to.version:
            rejected[frm.version] = why
        return replace(
            self,
            active=to.color,
            versions={**self.versions, to.color: to.version},
            previous=frm if frm and frm.color != to.color else self.previous,
            canary=None,
            rejected=dict(list(rejected.items())[-50:]),
            updated_at=at,
        )

    def _with_migrated(self, version: str | None, migrated: bool) -> tuple[str, ...]:
        if not migrated or not version:
            return self.migrated
        return (tuple(v for v in self.migrated if v != version) + (version,))[-50:]


# -- parsing: the shape is checked, field by field -----------------------------------------------------


def _text(v: Any, where: str, optional: bool = True) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or len(v) > 256:
        raise ValueError(f"{where} is {v!r}, not a string")
    return v


def _color(v: Any, where: str, optional: bool = True) -> str | None:
    if v is None and optional:
        return None
    if v not in COLORS:
        raise ValueError(f"{where} is {v!r}, not blue or green")
    return str(v)


def _slot(v: Any, where: str) -> Slot | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ValueError(f"{where} is not an object")
    return Slot(
        str(_color(v.get("color"), f"{where}.color", optional=False)), _text(v.get("version"), f"{where}.version")
    )


def _canary(v: Any) -> Canary | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ValueError("canary is not an object")
    old, new = _slot(v.get("old"), "canary.old"), _slot(v.get("new"), "canary.new")
    if old is None or new is None or old.color == new.color:
        raise ValueError("canary needs an old and a new color, different from each other")
    return Canary(old, new, *(_text(v.get(k, ""), f"canary.{k}") or "" for k in ("started_at", "ends_at", "actor")))


def parse(text: str, service: str) -> State:
    """Parse a state file; an empty text is a service never deployed. Raises ValueError saying what is wrong."""
    if not text.strip():
        return State(service)
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to be a state file") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    versions = data.get("versions") or {}
    if not isinstance(versions, dict) or any(k not in COLORS for k in versions):
        raise ValueError("versions must map blue/green to versions")
    migrated, rejected = data.get("migrated") or [], data.get("rejected") or {}
    if not isinstance(migrated, list) or not isinstance(rejected, dict):
        raise ValueError("migrated must be a list and rejected an object")
    return State(
        service=service,
        active=_color(data.get("active"), "active"),
        versions={k: _text(v, f"versions.{k}") for k, v in versions.items()},
        previous=_slot(data.get("previous"), "previous"),
        canary=_canary(data.get("canary")),
        migrated=tuple(str(_text(v, "migrated[]", optional=False)) for v in migrated),
        rejected={
            str(_text(k, "rejected key", False)): str(_text(v, "rejected[]", False)) for k, v in rejected.items()
        },
        updated_at=_text(data.get("updated_at"), "updated_at") or "",
    )

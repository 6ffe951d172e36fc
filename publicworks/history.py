"""The deploy history: one line per deploy, failure and rollback, in the design's format.

    2024-11-27T14:32:01Z | civic-observer | abc123 | success | green | ci:https://github.com/... | migrations=ran

Time (UTC, ISO seconds), service, version, status, color; then the actor and `key=value` fields.
Parsing never fails: a line it cannot read comes back as an entry holding just the raw text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# aborted: a run that lost the deploy lock and stopped (written without the lock, clearly marked);
# exec: a one-off command (`inv exec`); freeze/unfreeze: deploys stopped and allowed again
STATUSES = ("success", "failure", "rollback", "aborted", "exec", "freeze", "unfreeze")


def _clean(value: str) -> str:
    # A "|" or newline inside a field would corrupt the line for every later reader.
    return " ".join(value.replace("|", "/").split())


@dataclass(frozen=True)
class Entry:
    time: str = ""
    service: str = ""
    version: str = ""
    status: str = ""
    color: str = ""
    actor: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""  # set only for a line that could not be parsed

    @property
    def parsed(self) -> bool:
        return not self.raw

    def line(self) -> str:
        parts = [self.time, self.service, self.version, self.status, self.color]
        if self.actor or self.fields:
            parts.append(self.actor or "-")
        parts += [f"{k}={v}" for k, v in self.fields.items()]
        return " | ".join(_clean(p) for p in parts)

    def as_dict(self) -> dict[str, Any]:
        if self.raw:
            return {"raw": self.raw}
        return {
            "time": self.time,
            "service": self.service,
            "version": self.version,
            "status": self.status,
            "color": self.color,
            "actor": self.actor,
            **({"fields": dict(self.fields)} if self.fields else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=False)


def entry(at: str, service: str, version: str, status: str, color: str, actor: str, **fields: object) -> Entry:
    """A new entry stamped `at`; `fields` with a None value are left out."""
    if status not in STATUSES:
        raise ValueError(f"unknown history status {status!r}")
    return Entry(at, service, version, status, color, actor, {k: str(v) for k, v in fields.items() if v is not None})


def parse_line(line: str) -> Entry:
    text = line.rstrip("\n")
    parts = [p.strip() for p in text.split("|")]
    if len(parts) < 5 or not parts[0][:4].isdigit() or not all(parts[1:5]):
        return Entry(raw=text)
    fields = {}
    for extra in parts[6:]:
        key, sep, value = extra.partition("=")
        if not sep:
            return Entry(raw=text)
        fields[key.strip()] = value.strip()
    actor = parts[5] if len(parts) > 5 and parts[5] != "-" else ""
    return Entry(parts[0], parts[1], parts[2], parts[3], parts[4], actor, fields)


def parse(text: str) -> list[Entry]:
    return [parse_line(line) for line in text.splitlines() if line.strip()]


HEADERS = ("TIME", "SERVICE", "VERSION", "STATUS", "COLOR", "ACTOR", "DETAILS")


def table(entries: list[Entry], hosts: list[str] | None = None) -> str:
    """An aligned table, oldest first (newest last); unparsable lines appear as they are. With `hosts` (one
    per entry: a history merged from several hosts), a HOST column."""
    where = hosts or [""] * len(entries)
    headers = (("HOST",) if hosts else ()) + HEADERS
    rows = [headers] + [
        ((h,) if hosts else ())
        + (e.time, e.service, e.version, e.status, e.color, e.actor, " ".join(f"{k}={v}" for k, v in e.fields.items()))
        for e, h in zip(entries, where, strict=True)
        if e.parsed
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers) - 1)]
    lines, parsed = [], iter(rows[1:])

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]

    lines.append(fmt(rows[0]).rstrip())
    for e in entries:
        lines.append(fmt(next(parsed)).rstrip() if e.parsed else f"(unparsed) {e.raw}")
    return "\n".join(lines)

"""The read-only views across hosts — status, history, doctor — one connection per host.

A host that cannot be reached is part of the answer, not the end of it: the others are still shown,
its section says why it is missing, and the exit code is 1. On one host the output is what it has
always been, and an unreachable server is the usual one-line error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from . import doctor as doctor_mod
from . import history as history_mod
from . import server as server_mod
from . import status as status_mod
from .config import Config, ServerConfig, ServiceConfig
from .errors import PublicWorksError
from .remote import Remote, connect

T = TypeVar("T")


@dataclass(frozen=True)
class HostRead(Generic[T]):
    host: ServerConfig
    value: T | None
    error: str | None  # why the host could not be read

    @property
    def label(self) -> str:
        return self.host.label


def each(
    cfg: Config,
    services: list[ServiceConfig],
    read: Callable[[Remote, Config, list[ServiceConfig]], T],
    connect_to: Callable[..., Remote] = connect,
) -> list[HostRead[T]]:
    """`read` on every host these services run on, in turn; with one host, its failure is raised."""
    groups = cfg.by_host(services)
    out: list[HostRead[T]] = []
    for host, on_host in groups:
        try:
            remote = connect_to(host)
            try:
                out.append(HostRead(host, read(remote, replace(cfg, server=host), on_host), None))
            finally:
                remote.close()
        except PublicWorksError as e:
            if len(groups) == 1:
                raise
            out.append(HostRead(host, None, e.message))
    return out


def _code(reads: list[HostRead[T]], ok: Callable[[T], bool] = lambda _: True) -> int:
    return 0 if all(r.value is not None and ok(r.value) for r in reads) else 1


def status(cfg: Config, services: list[ServiceConfig], as_json: bool, connect_to: Callable[..., Remote] = connect):
    """`inv status`: (text, exit code)."""
    reads = each(cfg, services, lambda r, c, on: status_mod.gather(r, c, on), connect_to)
    if len(reads) == 1 and reads[0].value is not None:
        lock, statuses = reads[0].value
        return (status_mod.to_json if as_json else status_mod.render)(lock, statuses), 0
    if as_json:
        rows = [
            {"host": r.label, **json.loads(status_mod.to_json(*r.value))}
            if r.value is not None
            else {"host": r.label, "unreachable": r.error}
            for r in reads
        ]
        return json.dumps({"hosts": rows}, indent=2), _code(reads)
    parts = [
        f"== {r.label}\n" + (status_mod.render(*r.value) if r.value is not None else f"UNREACHABLE: {r.error}")
        for r in reads
    ]
    return "\n".join(parts), _code(reads)


def history(
    cfg: Config, name: str | None, lines: int, as_json: bool, connect_to: Callable[..., Remote] = connect
) -> tuple[str, int]:
    """`inv history`: the newest `lines` entries of every host, merged by time (stable: each host's own
    order stays), with the host they came from when there are several."""
    services = [cfg.service(name)] if name else list(cfg.services.values())
    reads = each(cfg, services, lambda r, c, _: server_mod.tail_history(r, c, lines, name), connect_to)
    several = len(reads) > 1
    merged = [(r.label, e) for r in reads for e in r.value or []]
    if several:
        merged.sort(key=lambda he: he[1].time)
    merged = merged[-lines:]
    missing = [f"{r.label}: UNREACHABLE, its lines are missing: {r.error}" for r in reads if r.value is None]
    if as_json:
        rows = [e.to_json() if not several else json.dumps({"host": h, **e.as_dict()}) for h, e in merged]
        text = "\n".join(rows)
    elif merged:
        text = history_mod.table([e for _, e in merged], [h for h, _ in merged] if several else None)
    else:
        text = f"no history yet in {cfg.server.history_file}" + (f" for {name}" if name else "")
    return "\n".join([text, *missing]) if missing else text, _code(reads)


def doctor(cfg: Config, services: list[ServiceConfig], as_json: bool, connect_to: Callable[..., Remote] = connect):
    """`inv doctor` on every host: (text, exit code)."""
    reads = each(cfg, services, doctor_mod.run, connect_to)
    healthy = lambda checks: all(ch.ok for ch in checks)  # noqa: E731
    if len(reads) == 1 and reads[0].value is not None:
        checks = reads[0].value
        return (doctor_mod.to_json if as_json else doctor_mod.render)(checks), _code(reads, healthy)
    if as_json:
        rows = [
            {"host": r.label, **json.loads(doctor_mod.to_json(r.value))}
            if r.value is not None
            else {"host": r.label, "ok": False, "unreachable": r.error}
            for r in reads
        ]
        return json.dumps({"hosts": rows}, indent=2), _code(reads, healthy)
    parts = [
        f"== {r.label}\n" + (doctor_mod.render(r.value) if r.value is not None else f"BAD  ssh: {r.error}")
        for r in reads
    ]
    return "\n".join(parts), _code(reads, healthy)

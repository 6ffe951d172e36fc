"""Reading what is on the server: containers, state files, the history. Reads only — no lock needed.

Writes go through `Session`, which sends them fenced by the deploy lock.
"""

from __future__ import annotations

from . import commands as cmd
from . import history, observe, state
from .config import Config, ServiceConfig
from .remote import Remote


def containers(remote: Remote) -> list[observe.Container]:
    return observe.parse_ps(remote.run(cmd.ps()).stdout)


def views(remote: Remote, svc: ServiceConfig) -> dict[str, observe.ColorView]:
    return observe.view(svc, containers(remote))


def read_state(remote: Remote, cfg: Config, svc: ServiceConfig) -> tuple[state.State, str | None, str]:
    """The service's state; a warning when the file exists but cannot be trusted (then: empty state); its text."""
    path = cfg.state_file(svc.name)
    text = remote.run(cmd.read_file(path)).stdout
    try:
        return state.parse(text, svc.name), None, text
    except ValueError as e:
        return state.State(svc.name), f"state file {path} is unreadable ({e}); ignoring it and going by what runs", text


HISTORY_DEPTH = 5000  # how far back a rollback looks for versions and migrations


def tail_history(remote: Remote, cfg: Config, lines: int, service: str | None = None) -> list[history.Entry]:
    """The newest `lines` entries (of one service), oldest first; only the end of the file is read."""
    if not service:
        return history.parse(remote.run(cmd.tail_file(cfg.server.history_file, lines)).stdout)
    command = cmd.tail_matching(cfg.server.history_file, f" | {service} | ", lines)
    return [e for e in history.parse(remote.run(command).stdout) if e.service == service]

"""Reading and writing public-works' records on the server: containers, state files, the history.

Thin I/O over `Remote` and the pure parsers; every write is atomic (state) or a single append (history).
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


def read_state(remote: Remote, cfg: Config, svc: ServiceConfig) -> tuple[state.State, str | None]:
    """The service's state, and a warning when the file exists but cannot be read (then: empty state)."""
    path = cfg.state_file(svc.name)
    text = remote.run(cmd.read_file(path)).stdout
    try:
        return state.parse(text, svc.name), None
    except ValueError as e:
        return state.State(svc.name), f"state file {path} is unreadable ({e}); going by what runs"


def write_state(remote: Remote, cfg: Config, new: state.State) -> None:
    remote.run(cmd.write_file(cfg.state_file(new.service), new.to_json()))


def append_history(remote: Remote, cfg: Config, entry: history.Entry) -> None:
    remote.run(cmd.append_file(cfg.server.history_file, entry.line() + "\n"))


def tail_history(remote: Remote, cfg: Config, lines: int, service: str | None = None) -> list[history.Entry]:
    """The newest `lines` entries (of one service), oldest first; only the end of the file is read."""
    if not service:
        return history.parse(remote.run(cmd.tail_file(cfg.server.history_file, lines)).stdout)
    command = cmd.tail_matching(cfg.server.history_file, f" | {service} | ", lines)
    return [e for e in history.parse(remote.run(command).stdout) if e.service == service]

"""`inv logs`: a service's units' logs over the one SSH connection, each line prefixed by its container
(project-unit-color), streamed as they come with --follow until Ctrl-C, which ends it cleanly."""

from __future__ import annotations

from collections.abc import Callable

from . import commands as cmd
from .config import COLORS, Config
from .remote import Remote, connect


def logs(
    cfg: Config,
    service: str,
    color: str,
    tail: int | None,
    since: str | None,
    follow: bool,
    connect_to: Callable[..., Remote] = connect,
    host: str | None = None,
) -> int:
    svc = cfg.service(service)
    server = cfg.target(svc, host)  # before connecting: a wrong --host touches nothing
    colors = list(COLORS) if color == "both" else [color]
    # The compose files need the version variable set; `logs` does not care about its value.
    command = cmd.logs_of(svc, colors, "logs", tail, since, follow)
    if follow:
        command = cmd.until_hangup(command)
    remote = connect_to(server)
    try:
        return 0 if remote.attach(command, keep_stdin=follow) == 0 else 1
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how --follow ends
    finally:
        remote.close()

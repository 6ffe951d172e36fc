"""`inv exec --service S -- CMD ARGS...`: CMD in a one-off container of the serving version's first unit
(like the migrations), interactive when a terminal is attached, its exit code passed through, and
written to the history as `exec` with the actor and the command's first word. No lock: it changes no
color, and it must work while a deploy's canary holds the lock."""

from __future__ import annotations

import sys
from collections.abc import Callable

from . import commands as cmd
from . import plan
from .config import Config
from .errors import PublicWorksError
from .output import Reporter
from .remote import Remote, connect
from .session import open_session


def run(
    cfg: Config,
    service: str,
    argv: list[str],
    out: Reporter,
    connect_to: Callable[..., Remote] = connect,
    tty: bool | None = None,
    host: str | None = None,
) -> int:
    svc = cfg.service(service)
    with open_session(cfg, svc, out, connect_to, cfg.target(svc, host)) as s:
        d = plan.decide(s.views(), s.read_state())
        if not d.serving or not d.serving_version:
            raise PublicWorksError(
                f"nothing of {svc.name} runs: there is no version to run {argv[0]} with. Deploy first."
            )
        interactive = sys.stdin.isatty() and sys.stdout.isatty() if tty is None else tty
        command = cmd.run_once(svc, d.serving, d.serving_version, argv, interactive)
        code = s.remote.attach(command, tty=interactive)
        rec = s.record(d.serving_version, "exec", d.serving, command=argv[0], exit=code)
        if rec.error:
            out.warn(rec.error)
        return code

"""The Invoke tasks: `inv <task>` in a checkout (tasks.py) and `publicworks <task>` after pip install.

Each task checks its flags (a bad value is one line and exit 2, never a traceback), calls one function
of the package and maps the outcome to an exit code: 0 done, 1 failed, 2 bad input or config, 3 the
lock is busy. The package's modules are imported inside the tasks, so `--help` starts fast.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from invoke import Collection, Context, Exit, Task
from invoke import task as invoke_task

BAD_INPUT = 2


class _Task(Task):
    """An Invoke task whose flags never take -h: that stays --help's, for every task."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        return super().arg_opts(name, default, taken_names | {"h"})


def task(*args: Any, **kwargs: Any) -> Any:
    return invoke_task(*args, klass=_Task, **kwargs)


def _bad(message: str) -> Exit:
    return Exit(f"error: {message}", code=BAD_INPUT)


def _text(value: Any, flag: str) -> str | None:
    """A flag's string: absent is None; an empty string is a mistake, not "absent"."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{flag} needs a value (leave the flag out instead of passing an empty one)")
    return value


def _number(value: Any, flag: str, high: float = 86400) -> float | None:
    text = _text(value, flag)
    if text is None:
        return None
    try:
        x = float(text)
    except ValueError:
        raise _bad(f"{flag}: expected a number of seconds, got {text!r}") from None
    if not math.isfinite(x) or not 0 <= x <= high:
        raise _bad(f"{flag}: expected seconds between 0 and {high:g}, got {text!r}")
    return x


def _integer(value: Any, flag: str, low: int, high: int) -> int | None:
    text = _text(value, flag)
    if text is None:
        return None
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise _bad(f"{flag}: expected a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _run(c: Context, body: Callable[[], int]) -> None:
    """Run a task's body; every expected failure becomes one line and its exit code."""
    from ._schema import ConfigError
    from .errors import PublicWorksError
    from .output import quiet_pipes

    quiet_pipes()
    run = getattr(c.config, "run", None)
    for flag in ("dry", "echo", "pty", "warn"):
        if run is not None and run.get(flag):
            raise _bad(
                f"Invoke's --{flag} means nothing here: public-works runs nothing locally "
                "(for a plan without changes: deploy --dry-run)"
            )
    try:
        code = body()
    except ConfigError as e:
        raise _bad(str(e)) from None
    except PublicWorksError as e:
        raise Exit(f"error: {e.message}", code=e.code) from None
    except KeyboardInterrupt:
        raise Exit("aborted", code=1) from None
    if code:
        raise Exit(code=code)


def _service(service: Any, required: bool = True) -> str | None:
    name = _text(service, "--service")
    if name is None and required:
        from .config import load

        raise _bad(f"--service is required (one of: {', '.join(sorted(load().services))})")
    return name


@task(
    help={
        "service": "service name from services.toml (e.g. civic-observer)",
        "version": "image tag to deploy, e.g. a git sha",
        "wait-lock": "if another run holds the lock, wait up to this many seconds (default: fail at once, exit 3)",
        "canary": "seconds both colors serve before the old one stops (default: the service's canary_seconds; 0 skips)",
        "dry-run": "print the plan (colors, ports, exact remote commands) and change nothing",
        "verbose": "show each remote command",
    }
)
def deploy(c, service=None, verbose=False, version=None, wait_lock=None, canary=None, dry_run=False):
    """Blue-green deploy of one version: lock, pull, migrate, start the idle color, health, switch, canary, stop."""

    def body() -> int:
        from . import deploy as deploy_mod
        from .config import load
        from .output import Reporter

        name = _service(service)
        v = _text(version, "--version")
        if v is None:
            raise _bad("--version is required (an image tag, e.g. the git sha the image was built from)")
        opts = deploy_mod.Options(
            name or "", v, _number(wait_lock, "--wait-lock") or 0, _number(canary, "--canary"), bool(dry_run)
        )
        return deploy_mod.deploy(load(), opts, Reporter(verbose=bool(verbose)))

    _run(c, body)


def _ask(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


@task(
    help={
        "service": "service name from services.toml",
        "to": "a version from the history to put back (default: the newest earlier one never rolled back from)",
        "yes": "proceed even when crossing migrations or bringing back a rejected version (for CI; a terminal asks)",
        "wait-lock": "if another run holds the lock (and no canary of this service runs), wait up to this many seconds",
        "verbose": "show each remote command",
    }
)
def rollback(c, service=None, to=None, yes=False, wait_lock=None, verbose=False):
    """Undo: during a canary, stop the new color within seconds; after a deploy, bring an earlier version back."""

    def body() -> int:
        from . import rollback as rollback_mod
        from .config import load
        from .output import Reporter

        opts = rollback_mod.Options(
            _service(service) or "", _text(to, "--to"), bool(yes), _number(wait_lock, "--wait-lock") or 0
        )
        ask = _ask if sys.stdin.isatty() else None
        return rollback_mod.rollback(load(), opts, Reporter(verbose=bool(verbose)), ask=ask)

    _run(c, body)


@task(
    help={
        "service": "only this service",
        "limit": "how many entries, newest last (default 20)",
        "json": "one JSON object per entry instead of a table",
    }
)
def history(c, service=None, limit=None, json=False):
    """The deploy history from the server: deploys, failures, rollbacks (reads only the end of the file)."""

    def body() -> int:
        from . import fleet
        from .config import load

        text, code = fleet.history(
            load(), _service(service, required=False), _integer(limit, "--limit", 1, 100_000) or 20, bool(json)
        )
        print(text)
        return code

    _run(c, body)


@task(help={"service": "only this service", "json": "machine-readable output"})
def status(c, service=None, json=False):
    """What runs and answers (and what Caddy thinks), per service and color; canary, lock, rejected versions."""

    def body() -> int:
        from . import fleet
        from .config import load

        name = _service(service, required=False)
        cfg = load()
        text, code = fleet.status(cfg, [cfg.service(name)] if name else list(cfg.services.values()), bool(json))
        print(text)
        return code

    _run(c, body)


@task(help={"service": "only this service's block (the health-proxy snippet is always printed)"})
def caddy(c, service=None):
    """Print the Caddy config for civic-band's Caddyfile template: the health-proxy snippet, both colors per service."""

    def body() -> int:
        from . import caddy as caddy_mod
        from .config import load

        print(caddy_mod.render(load(), _service(service, required=False)), end="")
        return 0

    _run(c, body)


@task(help={"service": "only this service", "json": "machine-readable output"})
def doctor(c, service=None, json=False):
    """Check over SSH everything a deploy needs (docker, compose v2, files, lock, state, Caddy, registry)."""

    def body() -> int:
        from . import fleet
        from .config import load

        name = _service(service, required=False)
        cfg = load()
        text, code = fleet.doctor(cfg, [cfg.service(name)] if name else list(cfg.services.values()), bool(json))
        print(text)
        return code

    _run(c, body)


def _session_task(c: Context, service: Any, body: Callable[[Any], str], lock: bool = False) -> None:
    """Run `body(session)` for one service on each of its hosts (one connection each), printing each outcome."""

    def run() -> int:
        from .config import load
        from .output import Reporter
        from .session import open_session

        cfg = load()
        svc = cfg.service(_service(service) or "")
        targets = cfg.targets(svc)
        for host in targets:
            with open_session(cfg, svc, Reporter(), host=host) as s:
                if lock:
                    s.take_lock("prune", "", 0)
                try:
                    text = body(s)
                finally:
                    s.release()
            print(f"{host.label}: {text}" if len(targets) > 1 else text)
        return 0

    _run(c, run)


@task(help={"service": "service name from services.toml", "dry-run": "say what would go, remove nothing"})
def prune(c, service=None, dry_run=False):
    """Remove the service's images beyond the newest keep_images versions it served (never one a color uses)."""
    from . import prune as prune_mod

    _session_task(c, service, lambda s: prune_mod.run(s, dry_run=bool(dry_run)), lock=not dry_run)


@task(
    help={
        "service": "service name from services.toml",
        "color": "blue, green or both (default)",
        "tail": "lines from the end of each unit's log (default: all)",
        "since": "only lines since, e.g. 10m or 2026-11-26T14:00:00",
        "follow": "keep streaming new lines until Ctrl-C",
        "host": "for a service on several hosts: which one, by its [hosts] name (default: its first)",
    }
)
def logs(c, service=None, color=None, tail=None, since=None, follow=False, host=None):
    """The service's units' logs, each line prefixed by its container (unit and color)."""

    def body() -> int:
        from . import logs as logs_mod
        from .config import load

        which = _text(color, "--color") or "both"
        if which not in ("blue", "green", "both"):
            raise _bad(f"--color: blue, green or both, got {which!r}")
        since_text = _text(since, "--since")
        if since_text is not None and not all(ch.isalnum() or ch in ":.-+TZ" for ch in since_text):
            raise _bad(f"--since: a duration like 10m or a time like 2026-11-26T14:00:00, got {since_text!r}")
        return logs_mod.logs(
            load(),
            _service(service) or "",
            which,
            _integer(tail, "--tail", 0, 1_000_000),
            since_text,
            bool(follow),
            host=_text(host, "--host"),
        )

    _run(c, body)


@task(
    name="exec",
    help={
        "service": "service name from services.toml; the command comes after --",
        "host": "for a service on several hosts: which one, by its [hosts] name (default: its first)",
    },
)
def exec_(c, service=None, host=None):
    """Run a one-off command in the serving version (publicworks exec --service S -- CMD ARGS...)."""

    def body() -> int:
        from . import oneoff
        from .config import load
        from .output import Reporter

        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
        if not argv or not argv[0]:
            raise _bad("exec needs a command after --, e.g. publicworks exec --service S -- python manage.py shell")
        return oneoff.run(load(), _service(service) or "", argv, Reporter(), host=_text(host, "--host"))

    _run(c, body)


@task(help={"service": "service name from services.toml", "reason": "why, for whoever tries to deploy"})
def freeze(c, service=None, reason=None):
    """Stop deploys of a service until unfreeze (rollbacks still work); shown by status."""
    from . import freeze as freeze_mod

    why = _text(reason, "--reason")
    if why is None:
        raise _bad("--reason is required: it is what a blocked deploy says")
    _session_task(c, service, lambda s: freeze_mod.freeze(s, why))


@task(help={"service": "service name from services.toml"})
def unfreeze(c, service=None):
    """Allow deploys of a service again."""
    from . import freeze as freeze_mod

    _session_task(c, service, freeze_mod.unfreeze)


ns = Collection(deploy, rollback, history, status, caddy, doctor, prune, logs, exec_, freeze, unfreeze)

"""The Invoke tasks: `inv <task>` in a checkout (tasks.py) and `publicworks <task>` after pip install.

Each task checks its flags (a bad value is one line and exit 2, never a traceback), calls one function
of the package and maps the outcome to an exit code: 0 done, 1 failed, 2 bad input or config, 3 the
lock is busy. The package's modules are imported inside the tasks, so `--help` starts fast.
"""

from __future__ import annotations

import json as json_mod
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from invoke import Collection, Context, Exit, task

BAD_INPUT = 2


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
        from . import history as history_mod
        from . import server
        from .config import load
        from .remote import connect

        n = _integer(limit, "--limit", 1, 100_000) or 20
        name = _service(service, required=False)
        cfg = load()
        services = [cfg.service(name)] if name else list(cfg.services.values())
        merged = []  # (host, entry) of every host, merged by time
        for host, _ in cfg.by_host(services):
            remote = connect(host)
            try:
                merged += [(host.label, e) for e in server.tail_history(remote, cfg, n, name)]
            finally:
                remote.close()
        several = len({h for h, _ in merged}) > 1
        if several:
            merged.sort(key=lambda he: he[1].time)  # stable: each host's own order stays
        merged = merged[-n:]
        entries = [e for _, e in merged]
        if json:
            for h, e in merged:
                print(e.to_json() if not several else json_mod.dumps({"host": h, **e.as_dict()}))
        elif entries:
            print(history_mod.table(entries, [h for h, _ in merged] if several else None))
        else:
            print(f"no history yet in {cfg.server.history_file}" + (f" for {name}" if name else ""))
        return 0

    _run(c, body)


@task(help={"service": "only this service", "json": "machine-readable output"})
def status(c, service=None, json=False):
    """What runs and answers (and what Caddy thinks), per service and color; canary, lock, rejected versions."""

    def body() -> int:
        from . import status as status_mod
        from .config import load
        from .remote import connect

        name = _service(service, required=False)
        cfg = load()
        services = [cfg.service(name)] if name else list(cfg.services.values())
        groups = cfg.by_host(services)
        reports = []
        for host, on_host in groups:
            remote = connect(host)
            try:
                reports.append((host.label, *status_mod.gather(remote, replace(cfg, server=host), on_host)))
            finally:
                remote.close()
        if len(reports) == 1:
            _, lock, statuses = reports[0]
            print(status_mod.to_json(lock, statuses) if json else status_mod.render(lock, statuses))
        elif json:
            print(
                json_mod.dumps(
                    {"hosts": [{"host": h, **json_mod.loads(status_mod.to_json(lk, st))} for h, lk, st in reports]},
                    indent=2,
                )
            )
        else:
            print("\n".join(f"== {h}\n" + status_mod.render(lk, st) for h, lk, st in reports))
        return 0

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
        from . import doctor as doctor_mod
        from .config import load
        from .remote import connect

        name = _service(service, required=False)
        cfg = load()
        services = [cfg.service(name)] if name else list(cfg.services.values())
        remote = connect(cfg.server)
        try:
            checks = doctor_mod.run(remote, cfg, services)
        finally:
            remote.close()
        print(doctor_mod.to_json(checks) if json else doctor_mod.render(checks))
        return 0 if all(ch.ok for ch in checks) else 1

    _run(c, body)


def _session_task(c: Context, service: Any, body: Callable[[Any], str], lock: bool = False) -> None:
    """Run `body(session)` against one service over one connection, printing its one-line outcome."""

    def run() -> int:
        from .config import load
        from .output import Reporter
        from .session import open_session

        cfg = load()
        svc = cfg.service(_service(service) or "")
        with open_session(cfg, svc, Reporter()) as s:
            if lock:
                s.take_lock("prune", "", 0)
            try:
                print(body(s))
            finally:
                s.release()
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
    }
)
def logs(c, service=None, color=None, tail=None, since=None, follow=False):
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
            load(), _service(service) or "", which, _integer(tail, "--tail", 0, 1_000_000), since_text, bool(follow)
        )

    _run(c, body)


@task(name="exec", help={"service": "service name from services.toml; the command comes after --"})
def exec_(c, service=None):
    """Run a one-off command in the serving version (publicworks exec --service S -- CMD ARGS...)."""

    def body() -> int:
        from . import oneoff
        from .config import load
        from .output import Reporter

        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
        if not argv or not argv[0]:
            raise _bad("exec needs a command after --, e.g. publicworks exec --service S -- python manage.py shell")
        return oneoff.run(load(), _service(service) or "", argv, Reporter())

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

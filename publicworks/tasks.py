"""The Invoke tasks: `inv <task>` in a checkout (tasks.py) and `publicworks <task>` after pip install.

Each task parses its flags, calls one function of the package and maps the outcome to an exit code:
0 done, 1 failed (what served before still serves), 2 bad input or config, 3 the lock is busy.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from invoke import Collection, Exit, task

from . import caddy as caddy_mod
from . import deploy as deploy_mod
from . import doctor as doctor_mod
from . import history as history_mod
from . import rollback as rollback_mod
from . import server
from . import status as status_mod
from .remote import Remote, connect
from .config import Config, ConfigError, ServiceConfig, load
from .errors import BAD_INPUT, PublicWorksError
from .output import Reporter


T = TypeVar("T")


def _number(value: object, flag: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Exit(f"{flag}: expected a number of seconds, got {value!r}", code=BAD_INPUT) from None


def _run(body: Callable[[], int]) -> None:
    try:
        code = body()
    except ConfigError as e:
        raise Exit(f"error: {e}", code=BAD_INPUT) from None
    except PublicWorksError as e:
        raise Exit(f"error: {e.message}", code=e.code) from None
    except KeyboardInterrupt:
        raise Exit("aborted", code=1) from None
    if code:
        raise Exit(code=code)


def _reading(service: str | None, read: Callable[[Remote, Config, list[ServiceConfig]], T]) -> tuple[Config, T]:
    """Load services.toml, pick the service(s), and run `read` over one connection (read-only tasks)."""
    cfg = load()
    services = [cfg.service(service)] if service else list(cfg.services.values())
    remote = connect(cfg.server)
    try:
        return cfg, read(remote, cfg, services)
    finally:
        remote.close()


def _require(value: str | None, flag: str) -> str:
    if not value:
        known = ", ".join(sorted(load().services)) if flag == "--service" else ""
        raise Exit(f"error: {flag} is required" + (f" (one of: {known})" if known else ""), code=BAD_INPUT)
    return value


@task(
    help={
        "service": "service name from services.toml (e.g. civic-observer)",
        "version": "image tag to deploy, e.g. a git sha",
        "wait-lock": "if another deploy holds the lock, wait up to this many seconds (default: fail at once, exit 3)",
        "canary": "seconds both colors serve before the old one stops (default: the service's canary_seconds; 0 skips)",
        "dry-run": "print the plan (colors, ports, exact remote commands) and change nothing",
        "verbose": "show each remote command",
    }
)
def deploy(c, service=None, verbose=False, version=None, wait_lock=None, canary=None, dry_run=False):
    """Blue-green deploy of one version: lock, pull, migrate, start the idle color, health check, canary, switch."""

    def body() -> int:
        opts = deploy_mod.Options(
            service=_require(service, "--service"),
            version=_require(version, "--version"),
            wait_lock=_number(wait_lock, "--wait-lock") or 0,
            canary=_number(canary, "--canary"),
            dry_run=dry_run,
        )
        return deploy_mod.deploy(load(), opts, Reporter(verbose=verbose))

    _run(body)


@task(
    help={
        "service": "service name from services.toml",
        "to": "a version from the history to put back (default: the previous one)",
        "yes": "proceed even when --to crosses a deploy that ran migrations (for CI; a terminal asks)",
        "wait-lock": "if another run holds the lock (and no canary is running), wait up to this many seconds",
        "verbose": "show each remote command",
    }
)
def rollback(c, service=None, to=None, yes=False, wait_lock=None, verbose=False):
    """Undo: during a canary, stop the new color within seconds; after a deploy, bring the previous version back."""

    def body() -> int:
        opts = rollback_mod.Options(service=_require(service, "--service"), to=to or None, yes=yes,
                                    wait_lock=_number(wait_lock, "--wait-lock") or 0)
        return rollback_mod.rollback(load(), opts, Reporter(verbose=verbose))

    _run(body)


@task(
    help={
        "service": "only this service",
        "limit": "how many entries, newest last (default 20)",
        "json": "one JSON object per entry instead of a table",
    }
)
def history(c, service=None, limit=20, json=False):
    """The deploy history from the server: deploys, failures, rollbacks (reads only the end of the file)."""

    def body() -> int:
        if int(limit) < 1:
            raise Exit("error: --limit must be at least 1", code=BAD_INPUT)
        cfg, entries = _reading(service, lambda remote, cfg, _: server.tail_history(remote, cfg, int(limit), service))
        if json:
            for e in entries:
                print(e.to_json())
        elif entries:
            print(history_mod.table(entries))
        else:
            print(f"no history yet in {cfg.server.history_file}" + (f" for {service}" if service else ""))
        return 0

    _run(body)


@task(help={"service": "only this service", "json": "machine-readable output"})
def status(c, service=None, json=False):
    """What runs and answers, per service and color; canary and lock; the last history entry. Changes nothing."""

    def body() -> int:
        _, (lock, statuses) = _reading(service, status_mod.gather)
        print(status_mod.to_json(lock, statuses) if json else status_mod.render(lock, statuses))
        return 0

    _run(body)


@task(help={"service": "only this service's block (the health-proxy snippet is always printed)"})
def caddy(c, service=None):
    """Print the Caddy config for civic-band's Caddyfile template: the health-proxy snippet, both colors per service."""

    def body() -> int:
        print(caddy_mod.render(load(), service), end="")
        return 0

    _run(body)


@task(help={"service": "only this service", "json": "machine-readable output"})
def doctor(c, service=None, json=False):
    """Check over SSH everything a deploy needs (docker, compose v2, files, lock, state, Caddy, registry)."""

    def body() -> int:
        _, checks = _reading(service, doctor_mod.run)
        print(doctor_mod.to_json(checks) if json else doctor_mod.render(checks))
        return 0 if all(c.ok for c in checks) else 1

    _run(body)


ns = Collection(deploy, rollback, history, status, caddy, doctor)

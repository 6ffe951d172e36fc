"""Pure builders of the remote commands public-works runs: argv tuples, never shell strings from input.

Every command is an argv; `Command.shell()` quotes it with shlex for the SSH exec request. Where a
shell is needed (atomic writes, appends) the script is a constant and every variable part, file
contents included, is a positional argument ("$1", "$2"). Contents travel as an argument rather than
on stdin because invoke feeds a non-terminal stdin one byte per 10 ms (a 400-byte state file: 4 s).
Tests assert these argvs exactly.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .config import ServiceConfig

# docker ps fields public-works reads; tab-separated so no field needs quoting rules.
PS_FORMAT = "\t".join(
    (
        "{{.ID}}",
        "{{.Names}}",
        "{{.Image}}",
        "{{.State}}",
        '{{.Label "com.docker.compose.project"}}',
        '{{.Label "com.docker.compose.service"}}',
        "{{.Ports}}",
    )
)

_ATOMIC_WRITE = 'set -e; mkdir -p "$(dirname "$1")"; t=$(mktemp "$1.XXXXXX"); printf %s "$2" >"$t"; chmod 644 "$t"; mv -f "$t" "$1"'
_APPEND = 'set -e; mkdir -p "$(dirname "$1")"; printf %s "$2" >>"$1"'
_READ = '[ ! -e "$1" ] || cat "$1"'
_TAIL = '[ ! -e "$1" ] || tail -n "$2" "$1"'
# Newest matching lines first from the end (tac reads a file backwards), stop after $2 matches, oldest first.
_TAIL_MATCHING = '[ ! -e "$1" ] || tac "$1" | grep -m "$2" -F -e "$3" | tac'
# Take the marker atomically (rename), print what it says, delete it; exit 1 when there is none.
_CONSUME = 'mv "$1" "$1.taken" 2>/dev/null || exit 1; cat "$1.taken"; rm -f "$1.taken"'
_LOCK_PROBE = 'echo "inode=$(stat -c %i "$1" 2>/dev/null)"; cat /proc/locks; echo "--- holder"; cat "$1.holder" 2>/dev/null || true'
# Holds the flock while this SSH channel lives: the first stdin line (who holds it) goes next to the
# lock, "locked" tells the client, then a heartbeat line is expected at least every 20 s. EOF (the
# client closed or died) or a missed heartbeat (a half-open connection) ends it and frees the lock.
_LOCK_HOLD = (
    'IFS= read -r who; printf "%s\\n" "$who" >"$1.holder"; echo locked; '
    "while IFS= read -r -t 20 _; do :; done"
)
LOCK_CONFLICT_EXIT = 75


@dataclass(frozen=True)
class Command:
    """One remote command: an argv and a timeout in seconds."""

    argv: tuple[str, ...]
    timeout: float | None = 120

    def shell(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return self.shell()


def compose(svc: ServiceConfig, color: str, version: str, *args: str, timeout: float | None = 120) -> Command:
    """`docker compose` for one color of a service, the version handed over in its env variable."""
    files = [a for f in svc.files(color) for a in ("-f", f)]
    argv = ("env", f"{svc.version_env}={version}", "docker", "compose", "--project-directory", svc.dir, "-p", svc.project)
    return Command((*argv, *files, *args), timeout=timeout)


def pull(svc: ServiceConfig, color: str, version: str) -> Command:
    return compose(svc, color, version, "pull", "--quiet", *svc.unit_names(color), timeout=900)


def migrate(svc: ServiceConfig, color: str, version: str) -> Command | None:
    if not svc.migrate:
        return None
    unit = svc.unit_names(color)[0]
    return compose(svc, color, version, "run", "--rm", "-T", unit, *svc.migrate, timeout=1800)


def up(svc: ServiceConfig, color: str, version: str) -> Command:
    # --pull missing: a rollback pulls only when the old image is gone; a deploy has pulled already.
    return compose(svc, color, version, "up", "-d", "--pull", "missing", *svc.unit_names(color), timeout=600)


def stop(svc: ServiceConfig, color: str, version: str) -> Command:
    # stop, not down: the stopped containers are the instant way back.
    return compose(svc, color, version, "stop", "-t", str(svc.stop_grace), *svc.unit_names(color), timeout=svc.stop_grace + 60)


def stop_containers(ids: list[str], grace: int) -> Command:
    """Stop containers public-works adopted (started outside it) by id."""
    return Command(("docker", "stop", "-t", str(grace), *ids), timeout=grace + 60)


def logs(svc: ServiceConfig, color: str, version: str, tail: int = 50) -> Command:
    return compose(svc, color, version, "logs", "--no-color", "--tail", str(tail), *svc.unit_names(color), timeout=30)


def ps() -> Command:
    return Command(("docker", "ps", "-a", "--no-trunc", "--format", PS_FORMAT), timeout=30)


def docker_version() -> Command:
    return Command(("docker", "version", "--format", "{{.Server.Version}}"), timeout=30)


def compose_version() -> Command:
    return Command(("docker", "compose", "version", "--short"), timeout=30)


def read_file(path: str) -> Command:
    """Print a file; a missing file prints nothing and succeeds."""
    return Command(("sh", "-c", _READ, "sh", path), timeout=30)


def write_file(path: str, text: str) -> Command:
    """Replace a file atomically (temp file + rename): a reader never sees half of it."""
    return Command(("sh", "-c", _ATOMIC_WRITE, "sh", path, text), timeout=30)


def append_file(path: str, text: str) -> Command:
    return Command(("sh", "-c", _APPEND, "sh", path, text), timeout=30)


def tail_file(path: str, lines: int) -> Command:
    """The last `lines` lines: costs the same on a million-line file as on ten."""
    return Command(("sh", "-c", _TAIL, "sh", path, str(lines)), timeout=30)


def tail_matching(path: str, needle: str, lines: int) -> Command:
    """The last `lines` lines containing `needle`, read backwards from the end of the file."""
    return Command(("sh", "-c", _TAIL_MATCHING, "sh", path, str(lines), needle), timeout=30)


def consume_marker(path: str) -> Command:
    return Command(("sh", "-c", _CONSUME, "sh", path), timeout=30)


def lock_hold(lock_file: str, wait_seconds: float) -> Command:
    mode = ("-w", f"{wait_seconds:g}") if wait_seconds > 0 else ("-n",)
    argv = ("flock", *mode, "-E", str(LOCK_CONFLICT_EXIT), lock_file, "bash", "-c", _LOCK_HOLD, "lock", lock_file)
    return Command(argv, timeout=None)


def lock_probe(lock_file: str) -> Command:
    """Is the lock held, by whom — read from /proc/locks, without ever taking it."""
    return Command(("sh", "-c", _LOCK_PROBE, "sh", lock_file), timeout=30)

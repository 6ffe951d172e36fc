"""Pure builders of every remote command public-works runs: argv tuples, never shell strings from input.

Every command is an argv; `Command.shell()` quotes it with shlex for the SSH exec request. Where a
shell is needed the script is a constant and every variable part, file contents included, is a
positional argument ("$1", "$2"). Contents travel as an argument rather than on stdin because a
non-terminal stdin is fed one byte per 10 ms by invoke (a 400-byte state file took 4 s). Tests assert
these argvs exactly.

Commands that change the server are `mutating`: while a run holds the deploy lock they are sent
`fenced` — the server refuses them once the lock has changed hands (see `lock`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

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

_ATOMIC_WRITE = (
    'set -e; mkdir -p "$(dirname "$1")"; t=$(mktemp "$1.XXXXXX"); printf %s "$2" >"$t"; chmod 644 "$t"; mv -f "$t" "$1"'
)
_APPEND = 'set -e; mkdir -p "$(dirname "$1")"; printf %s "$2" >>"$1"'
_READ = '[ ! -e "$1" ] || cat "$1"'
_TAIL = '[ ! -e "$1" ] || tail -n "$2" "$1"'
# Newest matching lines first from the end (tac reads a file backwards), stop after $2 matches, oldest first.
_TAIL_MATCHING = '[ ! -e "$1" ] || tac "$1" | grep -m "$2" -F -e "$3" | tac'
# Take the marker atomically (rename), print what it says, delete it; exit 1 when there is none.
_CONSUME = 'mv "$1" "$1.taken" 2>/dev/null || exit 1; cat "$1.taken"; rm -f "$1.taken"'

LOCK_CONFLICT_EXIT = 75  # flock: someone else holds it
LOCK_REFUSED_EXIT = 78  # the lock file is unsafe (symlink, foreign owner) or its directory is missing
FENCE_EXIT = 74  # a fenced command arrived after the lock changed hands
FENCE_MARK = "public-works-fence:"

# Holds the deploy lock for as long as this SSH channel lives ($1 lock file, $2 seconds to wait, 0 = fail
# at once, $3 heartbeat window, $4 this run's token). The lock and its fence file are opened only when
# they are not symbolic links and belong to the deploy user. The first stdin line (who holds it) is
# written into the lock file; the token goes into the fence file under an exclusive fence lock, which
# waits for commands of a previous holder still in flight. "locked" tells the client; then a heartbeat
# line is expected at least every $3 seconds. EOF (the client closed or died) or a missed heartbeat (a
# half-open connection) ends it: the fence is cleared — refusing every later fenced command of this run
# — and the kernel frees the lock.
_LOCK_HOLD = r"""set -u
lock=$1 fence=$1.fence dir=$(dirname "$1") me=$(id -un)
refuse() { echo "public-works: $*" >&2; exit 78; }
if [ ! -d "$dir" ]; then
  if [ -d "$(dirname "$dir")" ] && [ -O "$(dirname "$dir")" ]; then mkdir -m 700 "$dir" || exit 78
  else refuse "the lock's directory $dir does not exist; create it as $me: mkdir -m 700 $dir"; fi
fi
for f in "$lock" "$fence"; do
  [ ! -L "$f" ] || refuse "$f is a symbolic link; refusing to follow it (remove it)"
  [ ! -e "$f" ] || [ -O "$f" ] || refuse "$f belongs to $(stat -c %U "$f"), not $me; refusing it." \
    "Remove it, or set server.lock_file in a directory only $me can write"
done
exec 9<>"$lock" 8<>"$fence" || exit 78
same() { [ "$(stat -L -c %d:%i "/dev/fd/$1")" = "$(stat -c %d:%i "$2")" ]; }
same 9 "$lock" && same 8 "$fence" || refuse "$lock changed while being opened; refusing it"
if [ "$2" = 0 ]; then flock -n 9 || exit 75; else flock -w "$2" 9 || exit 75; fi
IFS= read -r who || exit 0
flock -w 3600 8 || exit 76
printf '%s %s\n' "$4" "$$" >/dev/fd/8
flock -u 8
printf '%s\n' "$who" >/dev/fd/9
trap 'flock 8; : >/dev/fd/8; : >/dev/fd/9' EXIT
echo locked
while IFS= read -r -t "$3" _; do :; done
"""
# $1 fence file, $2 token, $3 seconds; then the command. Runs it under a shared fence lock, only while the
# fence holds this run's token and its holder process lives; bounded on the server by `timeout`.
_FENCED = (
    '[ -f "$1" ] && [ ! -L "$1" ] || { echo "public-works-fence: no lock on the server ($1)" >&2; exit 74; }; '
    'exec 8<"$1"; '
    'flock -s -w 60 8 || { echo "public-works-fence: the fence stayed busy for 60s" >&2; exit 74; }; '
    "IFS=' ' read -r t p <&8 || t=; "
    'if [ "$t" != "$2" ] || ! kill -0 "$p" 2>/dev/null; then '
    'echo "public-works-fence: this run no longer holds the deploy lock; the server refused it" >&2; exit 74; fi; '
    'shift 2; s=$1; shift; timeout -k 10 "$s" "$@" 8<&-'
)
_LOCK_PROBE = (
    'if [ -L "$1" ]; then echo symlink; fi; stat -c "file=%d:%i" "$1" 2>/dev/null; echo "--- locks"; '
    'cat /proc/locks; echo "--- holder"; [ -L "$1" ] || head -c 4096 "$1" 2>/dev/null || true'
)


@dataclass(frozen=True)
class Command:
    """One remote command: an argv, a timeout in seconds, and whether it changes the server."""

    argv: tuple[str, ...]
    timeout: float | None = 120
    mutating: bool = False

    def shell(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return self.shell()


def fenced(command: Command, lock_file: str, token: str) -> Command:
    """`command`, refused by the server unless this run (`token`) still holds the deploy lock."""
    bound = f"{command.timeout or 3600:g}"
    argv = ("sh", "-c", _FENCED, "fence", f"{lock_file}.fence", token, bound, *command.argv)
    return replace(command, argv=argv, timeout=(command.timeout or 3600) + 20)


def unfenced(command: Command) -> Command:
    """The command a `fenced` one wraps (for tests and logs)."""
    if command.argv[:4] == ("sh", "-c", _FENCED, "fence"):
        return replace(command, argv=command.argv[7:], timeout=(command.timeout or 20) - 20)
    return command


def compose(
    svc: ServiceConfig, color: str, version: str, *args: str, timeout: float | None = 120, mutating: bool = True
) -> Command:
    """`docker compose` for one color of a service, the version handed over in its env variable."""
    files = [a for f in svc.files(color) for a in ("-f", f)]
    argv = (
        "env",
        f"{svc.version_env}={version}",
        "docker",
        "compose",
        "--project-directory",
        svc.dir,
        "-p",
        svc.project,
    )
    return Command((*argv, *files, *args), timeout=timeout, mutating=mutating)


def pull(svc: ServiceConfig, color: str, version: str) -> Command:
    return compose(svc, color, version, "pull", "--quiet", "--", *svc.unit_names(color), timeout=900)


def migrate(svc: ServiceConfig, color: str, version: str) -> Command | None:
    if not svc.migrate:
        return None
    unit = svc.unit_names(color)[0]
    return compose(svc, color, version, "run", "--rm", "-T", "--", unit, *svc.migrate, timeout=1800)


def up(svc: ServiceConfig, color: str, version: str) -> Command:
    # --pull missing: a rollback pulls only when the old image is gone; a deploy has pulled already.
    return compose(svc, color, version, "up", "-d", "--pull", "missing", "--", *svc.unit_names(color), timeout=600)


def stop(svc: ServiceConfig, color: str, version: str) -> Command:
    # stop, not down: the stopped containers are the instant way back.
    grace = str(svc.stop_grace)
    return compose(svc, color, version, "stop", "-t", grace, "--", *svc.unit_names(color), timeout=svc.stop_grace + 60)


def stop_containers(ids: list[str], grace: int) -> Command:
    """Stop containers public-works adopted (started outside it) by id."""
    return Command(("docker", "stop", "-t", str(grace), "--", *ids), timeout=grace + 60, mutating=True)


def logs(svc: ServiceConfig, color: str, version: str, tail: int = 50) -> Command:
    args = ("logs", "--no-color", "--tail", str(tail), "--", *svc.unit_names(color))
    return compose(svc, color, version, *args, timeout=30, mutating=False)


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
    return Command(("sh", "-c", _ATOMIC_WRITE, "sh", path, text), timeout=30, mutating=True)


def append_file(path: str, text: str) -> Command:
    return Command(("sh", "-c", _APPEND, "sh", path, text), timeout=30, mutating=True)


def tail_file(path: str, lines: int) -> Command:
    """The last `lines` lines: costs the same on a million-line file as on ten."""
    return Command(("sh", "-c", _TAIL, "sh", path, str(lines)), timeout=30)


def tail_matching(path: str, needle: str, lines: int) -> Command:
    """The last `lines` lines containing `needle`, read backwards from the end of the file."""
    return Command(("sh", "-c", _TAIL_MATCHING, "sh", path, str(lines), needle), timeout=30)


def consume_marker(path: str) -> Command:
    return Command(("sh", "-c", _CONSUME, "sh", path), timeout=30, mutating=True)


def write_marker(path: str, note: str) -> Command:
    """Write a marker atomically, without the lock: the design's rollback request (to the deploy holding
    the lock), a deploy freeze."""
    return Command(("sh", "-c", _ATOMIC_WRITE, "sh", path, note), timeout=30)


def remove_file(path: str) -> Command:
    return Command(("rm", "-f", "--", path), timeout=30)


def lock_hold(lock_file: str, wait_seconds: float, window: float, token: str) -> Command:
    argv = ("bash", "-c", _LOCK_HOLD, "lock", lock_file, f"{max(0.0, wait_seconds):g}", f"{window:g}", token)
    return Command(argv, timeout=None)


def lock_probe(lock_file: str) -> Command:
    """Is the lock held, by whom — read from /proc/locks, without ever taking it."""
    return Command(("sh", "-c", _LOCK_PROBE, "sh", lock_file), timeout=30)


# -- what `doctor` reads (read-only) ---------------------------------------------------------------

_MISSING = 'for f; do [ -e "$f" ] || echo "$f"; done'
# A path that does not exist yet is writable when its nearest existing ancestor is (mkdir -p, then write).
_UNWRITABLE = 'for f; do d=$f; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; [ -w "$d" ] || echo "$f"; done'
_LOCK_DIR = (
    'f=$1; d=$(dirname "$f"); echo "user=$(id -un)"; '
    'if [ -d "$d" ]; then stat -c "dir=exists mode=%a owner=%U" "$d"; '
    'elif [ -d "$(dirname "$d")" ] && [ -O "$(dirname "$d")" ]; then echo dir=creatable; else echo dir=missing; fi; '
    'if [ -L "$f" ]; then echo file=symlink; elif [ -e "$f" ]; then stat -c "file=exists owner=%U" "$f"; fi'
)


def missing_paths(paths: list[str]) -> Command:
    return Command(("sh", "-c", _MISSING, "sh", *paths), timeout=30)


def unwritable_paths(paths: list[str]) -> Command:
    return Command(("sh", "-c", _UNWRITABLE, "sh", *paths), timeout=30)


def lock_dir_report(lock_file: str) -> Command:
    return Command(("sh", "-c", _LOCK_DIR, "sh", lock_file), timeout=30)


def compose_images(svc: ServiceConfig, color: str, version: str) -> Command:
    return compose(svc, color, version, "config", "--images", "--", *svc.unit_names(color), timeout=60, mutating=False)


def manifest_inspect(ref: str) -> Command:
    return Command(("docker", "manifest", "inspect", "--insecure", ref), timeout=60)


# -- disk, images, logs, one-off commands, the freeze --------------------------------------------------

# Docker's data root, then `df -Pk` of it and of the given paths (their nearest existing ancestors).
_DISK = (
    'd=$(docker info --format "{{.DockerRootDir}}") || exit 1; echo "root=$d"; '
    'for f in "$d" "$@"; do while [ ! -e "$f" ]; do f=$(dirname "$f"); done; df -Pk -- "$f" | tail -n 1; done'
)
IMAGES_FORMAT = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"


def disk(paths: list[str]) -> Command:
    """Free space on Docker's data root and under `paths` (read-only)."""
    return Command(("sh", "-c", _DISK, "disk", *paths), timeout=30)


def images() -> Command:
    return Command(("docker", "images", "--format", IMAGES_FORMAT), timeout=30)


def remove_images(refs: list[str]) -> Command:
    """Untag `refs` (repository:tag); an image's layers go when nothing else uses them."""
    return Command(("docker", "image", "rm", "--", *refs), timeout=300, mutating=True)


def pre_migrate(svc: ServiceConfig, color: str, version: str) -> Command | None:
    if not svc.pre_migrate:
        return None
    unit = svc.unit_names(color)[0]
    return compose(svc, color, version, "run", "--rm", "-T", "--", unit, *svc.pre_migrate, timeout=3600)


def logs_of(
    svc: ServiceConfig, colors: list[str], version: str, tail: int | None, since: str | None, follow: bool
) -> Command:
    """`docker compose logs` of the units of `colors` (their compose files together), each line prefixed."""
    files = list(dict.fromkeys(f for c in colors for f in svc.files(c)))
    argv = ["env", f"{svc.version_env}={version}", "docker", "compose", "--project-directory", svc.dir]
    argv += ["-p", svc.project] + [a for f in files for a in ("-f", f)] + ["logs", "--no-color", "--timestamps"]
    argv += (["--tail", str(tail)] if tail is not None else []) + (["--since", since] if since else [])
    argv += (["--follow"] if follow else []) + ["--", *(u for c in colors for u in svc.unit_names(c))]
    return Command(tuple(argv), timeout=None if follow else 120)


_UNTIL_HANGUP = '"$@" & p=$!; cat >/dev/null; kill "$p" 2>/dev/null; wait "$p"'


def until_hangup(command: Command) -> Command:
    """`command`, killed on the server once this side closes the channel (its stdin reaches EOF): a
    `logs --follow` must not outlive the Ctrl-C that ended it."""
    return replace(command, argv=("sh", "-c", _UNTIL_HANGUP, "hangup", *command.argv))


def run_once(svc: ServiceConfig, color: str, version: str, argv: list[str], tty: bool) -> Command:
    """A one-off container of `version`'s first unit running `argv` (like the migrations)."""
    unit = svc.unit_names(color)[0]
    return compose(svc, color, version, "run", "--rm", *(() if tty else ("-T",)), "--", unit, *argv, timeout=None)


def compose_config(svc: ServiceConfig, color: str, version: str) -> Command:
    """The color's compose model as JSON: which units exist, what they publish, which image (read-only)."""
    return compose(svc, color, version, "config", "--format", "json", timeout=60, mutating=False)

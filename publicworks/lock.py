"""The server's deploy lock: a flock held by one SSH channel, so it can never go stale — and a fence.

`flock` runs on the server for as long as our channel lives (see `commands.lock_hold`). When this
process exits, crashes, is SIGKILLed or loses the network, the channel closes or its heartbeat stops
and the kernel frees the lock: there is no lock file to clean by hand. Who holds it is written into the
lock file itself, so a refused deploy can say who is deploying what, and since when.

A lock that was freed behind our back — the network gone longer than the heartbeat window — must not
let this run go on changing the server. So every mutating command is sent `fenced` with this run's
token: the server runs it only while its fence holds that token and our holder process lives, and the
next holder replaces the token only once fenced commands in flight are done. A command that arrives
after the lock changed hands is refused there, whatever this process believes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import paramiko

from . import commands as cmd
from .clock import SystemClock, iso
from .commands import Command
from .errors import LockBusy, PublicWorksError
from .remote import Channel, Remote


@dataclass(frozen=True)
class Holder:
    action: str
    service: str
    version: str
    actor: str
    since: str
    pid: int = 0
    host: str = ""

    def describe(self) -> str:
        what = f"{self.action} of {self.service}" + (f" {self.version}" if self.version else "")
        return f"{what} by {self.actor} since {self.since}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            fields = {k: str(data.get(k) or "") for k in ("action", "service", "version", "actor", "since", "host")}
            return cls(**fields, pid=int(data.get("pid") or 0))
        except (ValueError, TypeError, AttributeError, RecursionError):
            return None


@dataclass(frozen=True)
class LockInfo:
    held: bool
    holder: Holder | None
    problem: str = ""  # the lock file is a symlink, or unreadable

    def describe(self) -> str:
        if self.problem:
            return self.problem
        if not self.held:
            return "free"
        return "held by " + (self.holder.describe() if self.holder else "an unknown process (no holder recorded)")

    def by_canary_of(self, service: str) -> bool:
        """Held by the deploy of `service` (the one that may be running its canary)."""
        return (
            self.held and self.holder is not None and self.holder.action == "deploy" and self.holder.service == service
        )


def parse_probe(text: str) -> LockInfo:
    """Parse `commands.lock_probe` output: the lock file's device and inode, /proc/locks, its content.
    /proc/locks names a lock's file as MAJOR:MINOR:INODE (hex, hex, decimal)."""
    head, _, holder_text = text.partition("--- holder\n")
    meta, _, locks = head.partition("--- locks\n")
    if meta.startswith("symlink"):
        return LockInfo(False, None, "the lock file is a symbolic link: refused (remove it)")
    ident = next((ln.partition("=")[2].strip() for ln in meta.splitlines() if ln.startswith("file=")), "")
    try:
        device, inode_text = ident.split(":")
        major, minor, inode = (
            os.major(int(device)),
            os.minor(int(device)),
            int(inode_text),
        )  # st_dev, as stat %d prints it
    except ValueError:
        return LockInfo(False, None)  # no lock file yet: free
    held = False
    for line in locks.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4142 fd:01:1059 0 EOF"; waiters carry "->" and hold nothing.
        if len(fields) < 6 or "->" in fields or fields[1] != "FLOCK":
            continue
        parts = fields[5].split(":")
        try:
            if (int(parts[0], 16), int(parts[1], 16), int(parts[2])) == (major, minor, inode):
                held = True
                break
        except (ValueError, IndexError):
            continue
    holder = Holder.from_json(holder_text.strip()) if held and holder_text.strip() else None
    return LockInfo(held, holder)


def probe(remote: Remote, lock_file: str) -> LockInfo:
    """Who holds the lock, without taking it (status and --dry-run must never block a deploy)."""
    return parse_probe(remote.run(cmd.lock_probe(lock_file)).stdout)


class Lock:
    """Hold the server's deploy lock for the life of this object's channel."""

    def __init__(self, remote: Remote, lock_file: str, holder: Holder, window: float = 20.0) -> None:
        self.remote = remote
        self.lock_file = lock_file
        self.holder = holder
        self.window = window
        self.token = secrets.token_hex(16)
        self._channel: Channel | None = None
        self._stop = threading.Event()

    def acquire(self, wait: float = 0, on_wait: Callable[[LockInfo], None] | None = None) -> None:
        """Take the lock; busy raises `LockBusy` at once, or after waiting up to `wait` seconds."""
        if self._try(0):
            return
        info = probe(self.remote, self.lock_file)
        if wait <= 0:
            raise LockBusy(
                f"another run holds the lock on the server ({self.lock_file}): {info.describe()}. "
                "Wait for it, or retry with --wait-lock SECONDS."
            )
        if on_wait:
            on_wait(info)
        if not self._try(wait):
            info = probe(self.remote, self.lock_file)
            raise LockBusy(f"gave up after waiting {wait:g}s for the lock ({self.lock_file}): {info.describe()}")

    def _try(self, wait: float) -> bool:
        command = cmd.lock_hold(self.lock_file, wait, self.window, self.token)
        channel = self.remote.channel(command)
        try:
            channel.sendall((self.holder.to_json() + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the holder already exited (busy, refused): its exit status says so below
        channel.settimeout(wait + 30)
        out = b""
        try:
            while not out.endswith(b"locked\n"):
                chunk = channel.recv(64)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            channel.close()
            raise PublicWorksError(f"no answer from the lock command within {wait + 30:g}s") from None
        if out.endswith(b"locked\n"):
            self._channel = channel
            threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True).start()
            return True
        code = channel.recv_exit_status()
        err = channel.recv_stderr(4096).decode(errors="replace").strip()
        channel.close()
        if code == cmd.LOCK_CONFLICT_EXIT:
            return False
        if code == cmd.LOCK_REFUSED_EXIT:
            raise PublicWorksError(f"the lock {self.lock_file} was refused: {err.removeprefix('public-works: ')}")
        raise PublicWorksError(f"could not take the lock {self.lock_file} (exit {code}): {err or out.decode()}")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.window / 4):
            channel = self._channel
            if channel is None or channel.closed:
                return
            try:
                channel.sendall(b"\n")
            except (OSError, EOFError, paramiko.SSHException):
                return

    @property
    def held(self) -> bool:
        """As far as this process can tell; the server's fence is the authority."""
        return self._channel is not None and not self._channel.closed and not self._channel.exit_status_ready()

    def fence(self, command: Command) -> Command:
        return cmd.fenced(command, self.lock_file, self.token)

    def release(self) -> None:
        self._stop.set()
        channel, self._channel = self._channel, None
        if channel is None:
            return
        try:
            channel.shutdown_write()  # EOF: the holder exits and the kernel frees the lock
            deadline = time.monotonic() + 5
            while not channel.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.01)
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the connection is gone: so is the lock
        finally:
            channel.close()

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def me(action: str, service: str, version: str, actor: str, since: str | None = None) -> Holder:
    """The holder record for this process."""
    return Holder(action, service, version, actor, since or iso(SystemClock().now()), os.getpid(), socket.gethostname())

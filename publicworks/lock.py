"""The server's deploy lock: a flock held by one SSH channel, so it can never go stale.

`flock` runs on the server for as long as our channel lives (see `commands.lock_hold`). When this
process exits, crashes, is SIGKILLed or loses the network, the channel closes or its heartbeat stops
and the kernel frees the lock: there is no lock file to clean by hand. Who holds it is written next
to the lock file, so a refused deploy can say who is deploying what, and since when.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import paramiko

from . import commands as cmd
from .history import now_iso
from .errors import LockBusy, PublicWorksError
from .remote import Remote

HEARTBEAT_SECONDS = 5


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
    def from_json(cls, text: str) -> "Holder | None":
        try:
            data = json.loads(text)
            return cls(**{k: data.get(k, "") for k in ("action", "service", "version", "actor", "since")},
                       pid=int(data.get("pid") or 0), host=str(data.get("host", "")))
        except (ValueError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class LockInfo:
    held: bool
    holder: Holder | None

    def describe(self) -> str:
        if not self.held:
            return "free"
        return "held by " + (self.holder.describe() if self.holder else "an unknown process (no holder file)")


def parse_probe(text: str) -> LockInfo:
    """Parse `commands.lock_probe` output: the lock file's inode, /proc/locks, the holder file."""
    head, _, holder_text = text.partition("--- holder\n")
    lines = head.splitlines()
    inode = lines[0].partition("=")[2].strip() if lines and lines[0].startswith("inode=") else ""
    held = False
    if inode:
        for line in lines[1:]:
            fields = line.split()
            # "1: FLOCK  ADVISORY  WRITE 4142 00:2d:1059 0 EOF"; waiters carry "->" and hold nothing.
            if len(fields) >= 6 and "->" not in fields and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == inode:
                held = True
                break
    holder = Holder.from_json(holder_text.strip()) if held and holder_text.strip() else None
    return LockInfo(held, holder)


def probe(remote: Remote, lock_file: str) -> LockInfo:
    """Who holds the lock, without taking it (status and --dry-run must never block a deploy)."""
    return parse_probe(remote.run(cmd.lock_probe(lock_file)).stdout)


class Lock:
    """Hold the server's deploy lock for the life of this object's channel."""

    def __init__(self, remote: Remote, lock_file: str, holder: Holder) -> None:
        self.remote = remote
        self.lock_file = lock_file
        self.holder = holder
        self._channel: paramiko.Channel | None = None
        self._stop = threading.Event()

    def acquire(self, wait: float = 0, on_wait: Callable[[LockInfo], None] | None = None) -> None:
        """Take the lock; busy raises `LockBusy` at once, or after waiting up to `wait` seconds."""
        if self._try(0):
            return
        info = probe(self.remote, self.lock_file)
        if wait <= 0:
            raise LockBusy(
                f"another deploy holds the lock on the server ({self.lock_file}): {info.describe()}. "
                "Wait for it, or retry with --wait-lock SECONDS."
            )
        if on_wait:
            on_wait(info)
        if not self._try(wait):
            info = probe(self.remote, self.lock_file)
            raise LockBusy(f"gave up after waiting {wait:g}s for the lock ({self.lock_file}): {info.describe()}")

    def _try(self, wait: float) -> bool:
        command = cmd.lock_hold(self.lock_file, wait)
        channel = self.remote.session()
        channel.exec_command(command.shell())
        try:
            channel.sendall((self.holder.to_json() + "\n").encode())
        except OSError:
            pass  # flock -n already exited (busy): its exit status says so below
        channel.settimeout(wait + 30)
        out = b""
        try:
            while not out.endswith(b"locked\n"):
                chunk = channel.recv(64)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            channel.close()
            raise PublicWorksError(f"no answer from the lock command within {wait + 30:g}s: {command}") from None
        if out.endswith(b"locked\n"):
            self._channel = channel
            threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True).start()
            return True
        code = channel.recv_exit_status()
        err = channel.recv_stderr(4096).decode(errors="replace").strip()
        channel.close()
        if code == cmd.LOCK_CONFLICT_EXIT:
            return False
        raise PublicWorksError(f"could not take the lock {self.lock_file} (exit {code}): {err or out.decode()}")

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            channel = self._channel
            if channel is None or channel.closed:
                return
            try:
                channel.sendall(b"\n")
            except (OSError, EOFError, paramiko.SSHException):
                return

    @property
    def held(self) -> bool:
        return self._channel is not None and not self._channel.exit_status_ready()

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

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def me(action: str, service: str, version: str, actor: str) -> Holder:
    """The holder record for this process."""
    return Holder(action, service, version, actor, now_iso(), os.getpid(), socket.gethostname())

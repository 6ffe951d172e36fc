"""The one I/O seam with the server: run a `Command`, talk HTTP through the tunnel, open a long-lived channel.

`Remote` is the protocol the orchestration is written against; `SSHRemote` is the real one, over the
run's single Fabric connection (tests use a fake). Commands are exec channels, HTTP is direct-tcpip
channels, the lock is one long-lived exec channel. No wait is unbounded: opening a channel and the
server's answer to an exec request each get server.ssh_timeout, and a command gets its own timeout —
paramiko would otherwise wait an hour for a channel and forever for an exec reply.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import sys
import termios
import threading
import time
import tty as tty_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import paramiko
from fabric import Connection

from . import tunnel
from .commands import Command, unfenced
from .config import ServerConfig
from .errors import ConnectionLost, PublicWorksError
from .ssh import open_connection

# paramiko logs every refused tunnel channel at ERROR ("Secsh channel 4 open FAILED"); a health check
# that polls a starting app expects exactly that, and reports it itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


@dataclass(frozen=True)
class Result:
    command: Command
    exited: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exited == 0

    def tail(self, lines: int = 10) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


class CommandFailed(PublicWorksError):
    def __init__(self, result: Result) -> None:
        super().__init__(f"exit {result.exited}: {result.command}\n{result.tail()}".rstrip())
        self.result = result


class Channel(Protocol):
    """The part of a paramiko Channel the lock uses."""

    closed: bool

    def sendall(self, data: bytes) -> None: ...
    def recv(self, nbytes: int) -> bytes: ...
    def recv_stderr(self, nbytes: int) -> bytes: ...
    def settimeout(self, timeout: float | None) -> None: ...
    def exit_status_ready(self) -> bool: ...
    def recv_exit_status(self) -> int: ...
    def shutdown_write(self) -> None: ...
    def close(self) -> None: ...


class Remote(Protocol):
    """What the orchestration needs from the server."""

    target: str  # user@host:port, for messages
    user: str

    def run(self, command: Command, check: bool = True) -> Result: ...
    def attach(self, command: Command, tty: bool = False, keep_stdin: bool = False) -> int: ...
    def http(self, timeout: float = 5.0, verify: bool = True) -> httpx.Client: ...
    def channel(self, command: Command) -> Channel: ...
    def close(self) -> None: ...


class SSHRemote:
    """Runs commands on the server over one open Fabric Connection."""

    def __init__(
        self, conn: Connection, target: str, user: str, start_timeout: float, echo: Callable[[str], None] | None = None
    ) -> None:
        self.conn = conn
        self.target = target
        self.user = user
        self._start_timeout = start_timeout
        self._echo = echo

    @property
    def transport(self) -> paramiko.Transport:
        transport = self.conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionLost(f"the SSH connection to {self.target} was lost")
        return transport

    def channel(self, command: Command, tty: bool = False) -> paramiko.Channel:
        """An exec channel running `command`, started within the start timeout (on a pty with `tty`)."""
        try:
            chan = self.transport.open_session(timeout=self._start_timeout)
            if tty:
                size = shutil.get_terminal_size()
                chan.get_pty(os.environ.get("TERM", "xterm"), size.columns, size.lines)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectionLost(
                f"the server did not open an SSH channel within {self._start_timeout:g}s ({e})"
            ) from None
        started = threading.Event()
        failed: list[BaseException] = []

        def start() -> None:
            try:
                chan.exec_command(command.shell())
            except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
                failed.append(e)
            finally:
                started.set()

        threading.Thread(target=start, name="exec-request", daemon=True).start()
        if not started.wait(self._start_timeout):
            chan.close()
            raise ConnectionLost(
                f"the server did not start the command within {self._start_timeout:g}s "
                f"(its SSH exec request went unanswered): {_short(command)}"
            )
        if failed:
            chan.close()
            raise ConnectionLost(f"the server refused to run {_short(command)}: {failed[0]}")
        return chan

    def run(self, command: Command, check: bool = True) -> Result:
        """Run one command; with `check`, a non-zero exit raises `CommandFailed`."""
        if self._echo:
            inner = unfenced(command)
            self._echo(f"$ {inner}" + ("   (fenced by the deploy lock)" if inner is not command else ""))
        chan = self.channel(command)
        try:
            chan.shutdown_write()  # no stdin: never forward this terminal's keystrokes to the server
            code, out, err = _collect(chan, command)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectionLost(f"the SSH connection failed while running {_short(command)}: {e}") from None
        finally:
            chan.close()
        result = Result(command, code, out, err)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def attach(self, command: Command, tty: bool = False, keep_stdin: bool = False) -> int:
        """Run `command` with its output streamed here as it comes; with `tty`, on a pty fed by this terminal.
        Returns its exit status. Ctrl-C without a pty ends it (KeyboardInterrupt, channel closed); with
        `keep_stdin` the remote stdin stays open until then (see `commands.until_hangup`)."""
        if self._echo:
            self._echo(f"$ {command}")
        chan = self.channel(command, tty=tty)
        try:
            with _raw_terminal(tty):
                return _relay(chan, tty, keep_stdin)
        finally:
            chan.close()

    def http(self, timeout: float = 5.0, verify: bool = True) -> httpx.Client:
        """httpx over this connection: http://127.0.0.1:PORT/ is PORT on the server's loopback."""
        return tunnel.client(self.transport, timeout, verify)

    def close(self) -> None:
        self.conn.close()


def _short(command: Command) -> str:
    text = command.shell()
    return text if len(text) <= 300 else text[:300] + "…"


def _collect(chan: paramiko.Channel, command: Command) -> tuple[int, str, str]:
    out, err = bytearray(), bytearray()
    deadline = None if command.timeout is None else time.monotonic() + command.timeout
    while True:
        if chan.recv_ready():
            out += chan.recv(65536)
        elif chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        elif chan.eof_received or chan.closed:
            break
        else:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise PublicWorksError(f"timed out after {command.timeout:g}s: {_short(command)}")
            select.select([chan], [], [], min(1.0, left) if left is not None else 1.0)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(65536)
    left = 10.0 if deadline is None else max(0.1, deadline - time.monotonic())
    if not chan.status_event.wait(left):
        raise ConnectionLost(f"no exit status from the server for {_short(command)}")
    return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")


@contextlib.contextmanager
def _raw_terminal(tty: bool) -> Iterator[None]:
    """Keystrokes go to the remote pty one by one (Ctrl-C included), as with `ssh -t`."""
    if not tty or not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty_mod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass  # nobody reads any more: the command goes on regardless


def _relay(chan: paramiko.Channel, tty: bool, keep_stdin: bool) -> int:
    if not tty and not keep_stdin:
        chan.shutdown_write()
    watch: list[Any] = [chan] + ([sys.stdin] if tty else [])
    while True:
        ready, _, _ = select.select(watch, [], [], 1.0)
        if chan.recv_ready():
            _write(1, chan.recv(65536))
        if chan.recv_stderr_ready():
            _write(2, chan.recv_stderr(65536))
        if tty and sys.stdin in ready:
            data = os.read(sys.stdin.fileno(), 1024)
            if data:
                chan.sendall(data)
            else:
                chan.shutdown_write()
                watch.remove(sys.stdin)
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            return chan.recv_exit_status()


def connect(server: ServerConfig, echo: Callable[[str], None] | None = None) -> SSHRemote:
    """Open the run's one SSH connection."""
    conn, target = open_connection(server)
    return SSHRemote(conn, str(target), target.user, server.ssh_timeout, echo=echo)

"""The one I/O seam with the server: run a `Command`, talk HTTP through the tunnel, open a raw channel.

Everything goes over the single Fabric Connection of the run: commands are exec channels, HTTP is
direct-tcpip channels, the lock is one long-lived exec channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import httpx
import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from . import tunnel

# paramiko logs every refused tunnel channel at ERROR ("Secsh channel 4 open FAILED"); a health check
# that polls a starting app expects exactly that, and reports it itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
from .commands import Command
from .config import ServerConfig
from .errors import PublicWorksError
from .ssh import open_connection


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


class Remote:
    """Runs commands on the server over one open Fabric Connection."""

    def __init__(self, conn: Connection, echo: Callable[[str], None] | None = None, stream: bool = False) -> None:
        self.conn = conn
        self._echo = echo
        self._stream = stream

    @property
    def transport(self) -> paramiko.Transport:
        transport = self.conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise PublicWorksError("the SSH connection to the server was lost")
        return transport

    def run(self, command: Command, check: bool = True) -> Result:
        """Run one command; with `check`, a non-zero exit raises `CommandFailed`."""
        if self._echo:
            self._echo(f"$ {command}")
        try:
            # in_stream=False: never forward this terminal's keystrokes to the server.
            r = self.conn.run(command.shell(), hide=not self._stream, warn=True, in_stream=False, timeout=command.timeout)
        except CommandTimedOut:
            raise PublicWorksError(f"timed out after {command.timeout:g}s: {command}") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise PublicWorksError(f"the SSH connection failed while running {command}: {e}") from None
        result = Result(command, r.exited, r.stdout, r.stderr)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def http(self, timeout: float = 5.0) -> httpx.Client:
        """httpx over this connection: http://127.0.0.1:PORT/ is PORT on the server's loopback."""
        return tunnel.client(self.transport, timeout)

    def session(self) -> paramiko.Channel:
        """A raw exec channel, for commands whose life spans the run (the lock)."""
        return self.transport.open_session()

    def close(self) -> None:
        self.conn.close()


def connect(server: ServerConfig, echo: Callable[[str], None] | None = None, stream: bool = False) -> Remote:
    """Open the run's one SSH connection."""
    return Remote(open_connection(server), echo=echo, stream=stream)

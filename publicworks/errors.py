"""The exit codes every task shares, and the exceptions that carry them."""

from __future__ import annotations

OK = 0
FAILED = 1  # the change did not happen (or not all of it); the last line says what serves
BAD_INPUT = 2  # bad arguments or configuration; nothing was touched
LOCK_BUSY = 3  # another run holds the server's lock, or deploys are frozen


class PublicWorksError(Exception):
    """An expected failure: `message` says what happened and what to do; `code` is the exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BadInput(PublicWorksError):
    def __init__(self, message: str) -> None:
        super().__init__(message, BAD_INPUT)


class LockBusy(PublicWorksError):
    def __init__(self, message: str) -> None:
        super().__init__(message, LOCK_BUSY)


class LockLost(PublicWorksError):
    """The server no longer holds our lock: nothing may be changed on its behalf from here on."""


class ConnectionLost(PublicWorksError):
    """The SSH connection to the server is gone (or stopped answering)."""

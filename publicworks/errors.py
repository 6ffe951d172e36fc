"""The exit codes every task shares, and the one exception that carries them."""

from __future__ import annotations

OK = 0
FAILED = 1  # the change did not happen; what served before still serves
BAD_INPUT = 2  # bad arguments or configuration; nothing was touched
LOCK_BUSY = 3  # another deploy holds the server's lock


class PublicWorksError(Exception):
    """An expected failure: `message` says what happened and what to do; `code` is the exit status."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LockBusy(PublicWorksError):
    def __init__(self, message: str) -> None:
        super().__init__(message, LOCK_BUSY)

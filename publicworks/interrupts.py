"""Ctrl-C and SIGTERM (a cancelled CI job) during a deploy: finish safely instead of dying mid-step.

The first signal is recorded; the run checks it between steps and inside every wait, and then takes
the safe way out (stop the unhealthy new color, or leave both colors serving). A second signal
raises KeyboardInterrupt at once: the lock still frees itself, and Caddy still routes only to what
answers its health checks.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any


class Interrupts:
    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[signal.Signals, Any] = {}  # whatever signal.signal returned: restored as it was

    def __call__(self) -> bool:
        """True once a signal arrived."""
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal is not None:
            raise KeyboardInterrupt(f"second signal ({name})")
        self.signal = name
        print(f"\n{name} received: finishing safely (again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

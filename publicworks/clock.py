"""Time, as one injectable seam: the orchestration never calls `time` directly, so tests need not sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

ISO = "%Y-%m-%dT%H:%M:%SZ"


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC, to the second, as the history and the state write it: 2026-11-26T14:32:01Z."""
    return moment.astimezone(UTC).strftime(ISO)


def iso_in(clock: Clock, seconds: float) -> str:
    return iso(clock.now() + timedelta(seconds=seconds))


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, ISO).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None

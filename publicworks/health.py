"""Health checks of one color, through the SSH tunnel, the way Caddy will see it: GET health_path == 200."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from .clock import Clock

POLL_SECONDS = 0.5  # at most one probe per half second


@dataclass(frozen=True)
class Probe:
    status: int | None  # None: no HTTP answer at all
    detail: str  # the error, or the start of the body
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else "no answer"
        return f"{head} in {self.seconds * 1000:.0f} ms" + (f": {self.detail}" if self.detail else "")


def probe(client: httpx.Client, port: int, path: str, clock: Clock, timeout: float = 5.0) -> Probe:
    t0 = clock.monotonic()
    try:
        r = client.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)
        body = " ".join(r.text.split())[:120] if r.status_code != 200 else ""
        return Probe(r.status_code, body, clock.monotonic() - t0)
    except httpx.ConnectError as e:
        detail = "connection refused" if "refused" in str(e) else f"cannot connect: {e}"
        return Probe(None, detail[:200], clock.monotonic() - t0)
    except httpx.HTTPError as e:
        return Probe(None, f"{type(e).__name__}: {e}"[:200], clock.monotonic() - t0)


@dataclass
class Wait:
    ok: bool
    seconds: float
    probes: list[Probe] = field(default_factory=list)  # the last 20
    count: int = 0
    at: float = 0.0  # clock.monotonic() when it ended

    def last(self, n: int = 5) -> list[Probe]:
        return self.probes[-n:]


def wait_healthy(
    client: httpx.Client,
    port: int,
    path: str,
    timeout: float,
    clock: Clock,
    stop: Callable[[], bool] = lambda: False,
) -> Wait:
    """Poll until 200 or `timeout` seconds (or `stop()` says give up)."""
    t0 = clock.monotonic()
    result = Wait(False, 0.0)
    while True:
        started = clock.monotonic()
        remaining = timeout - (started - t0)
        p = probe(client, port, path, clock, timeout=max(0.5, min(5.0, remaining)))
        result.count += 1
        result.probes.append(p)
        del result.probes[:-20]
        if p.ok:
            result.ok = True
            break
        if clock.monotonic() - t0 >= timeout or stop():
            break
        clock.sleep(max(0.0, min(POLL_SECONDS - (clock.monotonic() - started), timeout - (clock.monotonic() - t0))))
    result.seconds = clock.monotonic() - t0
    result.at = clock.monotonic()
    return result

"""Steady HTTP traffic through the sandbox's Caddy, every response counted.

Some clients keep Caddy's `lb_policy cookie` cookie (a returning user, pinned to one color); the rest
send none (a new user each time). `hey` cannot keep cookies, hence this. Used by the zero-failure test
and by bench/.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since start
    client: int
    cookie: bool
    status: int | None
    error: str | None
    seconds: float
    body: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Report:
    samples: list[Sample]
    marks: list[tuple[float, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @staticmethod
    def p99(samples: list[Sample]) -> float:
        xs = sorted(s.seconds for s in samples)
        return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else 0.0

    @staticmethod
    def slowest(samples: list[Sample]) -> float:
        return max((s.seconds for s in samples), default=0.0)

    def describe(self, samples: list[Sample] | None = None) -> str:
        xs = self.samples if samples is None else samples
        bad = [s for s in xs if not s.ok]
        kinds: dict[str, int] = {}
        for s in bad:
            key = str(s.status) if s.status is not None else (s.error or "error")
            kinds[key] = kinds.get(key, 0) + 1
        cookie = sum(1 for s in xs if s.cookie)
        return (
            f"{len(xs)} requests ({cookie} with a cookie), {len(bad)} failed {kinds or ''}, "
            f"p99 {self.p99(xs) * 1000:.0f} ms, slowest {self.slowest(xs) * 1000:.0f} ms"
        ).replace(" {}", "")


class Load:
    """`clients` threads sending `rate` requests per second in all to `url` with Host `host`."""

    def __init__(
        self, url: str, host: str, clients: int = 10, cookie_clients: int = 5, rate: float = 200, timeout: float = 15
    ) -> None:
        self.url, self.host, self.timeout = url, host, timeout
        self.clients, self.cookie_clients = clients, cookie_clients
        self.interval = clients / rate
        self.samples: list[Sample] = []
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.t0 = 0.0

    def _client(self, n: int) -> None:
        cookie = n < self.cookie_clients
        next_at = time.monotonic() + (n / self.clients) * self.interval
        with httpx.Client(headers={"Host": self.host}, timeout=self.timeout, trust_env=False) as client:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at += self.interval
                if not cookie:
                    client.cookies.clear()
                t = time.monotonic()
                try:
                    r = client.get(self.url)
                    sample = Sample(t - self.t0, n, cookie, r.status_code, None, time.monotonic() - t, r.text[:80])
                except httpx.HTTPError as e:
                    sample = Sample(t - self.t0, n, cookie, None, type(e).__name__, time.monotonic() - t, "")
                with self._lock:
                    self.samples.append(sample)

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic() - self.t0, label))

    def __enter__(self) -> Load:
        self.t0 = time.monotonic()
        for n in range(self.clients):
            th = threading.Thread(target=self._client, args=(n,), daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(self.timeout + 5)

    def report(self) -> Report:
        with self._lock:
            return Report(sorted(self.samples, key=lambda s: s.t), list(self.marks))

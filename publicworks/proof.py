"""Proof that Caddy itself will route to a color — read from Caddy's own health view, not from a timer.

Caddy's /metrics carries `caddy_reverse_proxy_upstreams_healthy{upstream=DIAL}`: 1 or 0 as of its
last refresh (every `METRICS_REFRESH` seconds in Caddy 2.6). Two traps: a value of 1 may be older
than the color (a stopped port reads 1 after a config load until the next refresh), and a config load
at any moment resets every upstream to 1. So a 1 counts as proof only when

- the same dial was seen at 0 earlier, with no config change since — Caddy's health flag went from
  unhealthy to healthy, which only a passing check does; or
- it has read 1 without a break for a whole health interval + timeout + refresh period, counted from
  when the color answered through the tunnel and from the last config change — long enough that a
  check of the running color must have been refreshed into it.

Config changes show in Caddy's own counters (admin API writes, process start time): see `Metrics.epoch`.

Where Caddy can be asked directly (pin.py: a request through its site, pinned by its own lb cookie to
the color's upstream), the same two rules apply to where it routes, in real time instead of at the
metric's next refresh: the color was seen not routed and then routed, with no config change between
(only a passing health check makes Caddy route to a color it did not); or routed without a break for a
whole interval + timeout since it answered and since the last config change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .caddy import METRICS_REFRESH, Metrics


@dataclass
class Proof:
    dials: tuple[str, ...]  # the color's upstreams, as Caddy's config spells them
    interval: float  # Caddy's active health interval for them
    timeout: float
    refresh: float = METRICS_REFRESH
    healthy_at: float | None = None  # monotonic: when the color answered 200 through the tunnel
    reloads: int = 0  # config changes seen while proving
    proven_at: float | None = None
    how: str = ""
    _epoch: tuple[float, float] | None = None
    _window: float = float("-inf")  # the last config change seen
    _zero: set[str] = field(default_factory=set)
    _ones: dict[str, float] = field(default_factory=dict)  # dial -> reading 1 without a break since
    _last: dict[str, float | None] = field(default_factory=dict)
    _unrouted: bool = False  # Caddy was seen routing elsewhere, since the last config change
    _routed_since: float | None = None

    @property
    def steady(self) -> float:
        """How long an unbroken 1 must last to prove anything on its own."""
        return self.interval + self.timeout + self.refresh + 0.5

    @property
    def bound(self) -> float:
        """How long after the color answered through the tunnel Caddy gets to call it healthy."""
        return 3 * self.interval + self.timeout + self.refresh + 1.0

    def observe(self, t: float, metrics: Metrics, routed: bool | None = None) -> bool:
        """Feed one reading of /metrics taken at monotonic `t` — and, if Caddy was asked just before, whether
        it routed to the color (None: not asked, or no clear answer); True once proven."""
        if self._epoch is not None and metrics.epoch != self._epoch:
            self._zero.clear()
            self._ones.clear()
            self._window = t
            self.reloads += 1
            self._unrouted, self._routed_since = False, None
            routed = None  # asked before the change or after it: it cannot tell which
        self._epoch = metrics.epoch
        if routed is True:
            self._routed_since = t if self._routed_since is None else self._routed_since
        elif routed is False:
            self._unrouted, self._routed_since = True, None
        for dial in self.dials:
            value = metrics.healthy.get(dial)
            self._last[dial] = value
            if value == 1:
                self._ones.setdefault(dial, t)
            else:
                self._ones.pop(dial, None)
                if value == 0:
                    self._zero.add(dial)
        if self.proven_at is None and self.healthy_at is not None and self.dials:
            hows = [self._proven(d, t) for d in self.dials]
            how = self._routed(t)
            if all(hows) or how:
                self.proven_at = t
                self.how = how or hows[0]
        return self.proven_at is not None

    def _routed(self, t: float) -> str:
        if self._routed_since is None:
            return ""
        if self._unrouted:
            return "Caddy routed to it: not routed → routed"
        start = max(self._routed_since, self._window, self.healthy_at or t)
        steady = self.interval + self.timeout + 0.5
        return f"Caddy routed to it for {t - start:.1f}s without a break" if t - start >= steady else ""

    def _proven(self, dial: str, t: float) -> str:
        if dial not in self._ones:
            return ""
        if dial in self._zero:
            return "unhealthy → healthy"
        start = max(self._ones[dial], self._window, self.healthy_at or t)
        return f"healthy for {t - start:.1f}s without a break" if t - start >= self.steady else ""

    def expired(self, t: float) -> bool:
        return self.healthy_at is not None and self.proven_at is None and t - self.healthy_at > self.bound

    def describe(self) -> str:
        """What Caddy says, for messages."""
        parts = []
        for dial in self.dials:
            value = self._last.get(dial)
            if value is None:
                parts.append(f"{dial}: no health reported")
            elif value == 1:
                parts.append(
                    f"{dial}: healthy"
                    + ("" if dial in self._zero else " (not yet distinguishable from a stale reading)")
                )
            else:
                parts.append(f"{dial}: unhealthy")
        if self.reloads:
            parts.append(f"Caddy's config changed {self.reloads} time(s) meanwhile")
        return "; ".join(parts) or "no upstream"

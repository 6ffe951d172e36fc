"""Slack notifications: `[status] service: message`, posted to SLACK_WEBHOOK_URL.

Posting happens on a background thread, in order, so a slow webhook never slows a step; when the run
ends, `close` waits at most TIMEOUT seconds for what is still queued. A webhook that fails, answers
4xx/5xx or hangs is reported in one line and never changes the run's outcome. The URL is a secret:
it is never printed, not even inside an error message.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Protocol

import httpx

ENV = "SLACK_WEBHOOK_URL"
TIMEOUT = 5.0


class _Out(Protocol):
    def note(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...


def message(status: str, service: str, text: str) -> str:
    """The design's format."""
    return f"[{status}] {service}: {text}"


def payload(status: str, service: str, text: str) -> dict:
    icon = {"success": ":white_check_mark:", "failure": ":x:", "rollback": ":rewind:"}.get(status, ":rocket:")
    line = message(status, service, text)
    return {"text": line, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {line}"}}]}


class Notifier:
    def __init__(self, url: str | None, out: _Out, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.out = out
        self.timeout = timeout
        self.sent: list[str] = []
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._failed = False
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, out: _Out) -> "Notifier":
        return cls(os.environ.get(ENV) or None, out)

    def announce(self) -> None:
        if not self.url:
            self.out.note(f"Slack notifications are off ({ENV} is not set)")

    def send(self, status: str, service: str, text: str) -> None:
        if not self.url:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="slack", daemon=True)
            self._thread.start()
        self._queue.put(payload(status, service, text))

    def _worker(self) -> None:
        with httpx.Client(timeout=self.timeout, trust_env=True) as client:
            while (item := self._queue.get()) is not None:
                try:
                    r = client.post(self.url, json=item)  # type: ignore[arg-type]
                    if r.status_code >= 400:
                        self._report(f"answered HTTP {r.status_code}")
                    else:
                        self.sent.append(item["text"])
                except httpx.HTTPError as e:
                    self._report(type(e).__name__)
                finally:
                    self._queue.task_done()

    def _report(self, what: str) -> None:
        if not self._failed:  # one line per run is enough
            self._failed = True
            self.out.warn(f"Slack notification failed ({what}); the deploy's outcome is unaffected")

    def close(self) -> None:
        """Wait at most `timeout` seconds for queued messages, then give up on the rest."""
        if self._thread is None:
            return
        deadline = time.monotonic() + self.timeout
        self._queue.put(None)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._report(f"no answer within {self.timeout:g}s")

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
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from .actor import run_url

ENV = "SLACK_WEBHOOK_URL"
TIMEOUT = 5.0
MAX_TEXT = 1500  # an app's whole HTML error page has no place in a chat message


class _Out(Protocol):
    def note(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...


def message(status: str, service: str, text: str) -> str:
    """The design's format."""
    return f"[{status}] {service}: {text}"


def _mrkdwn(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters (links, mentions).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def payload(status: str, service: str, text: str, link: str | None = None) -> dict[str, Any]:
    icon = {"success": ":white_check_mark:", "failure": ":x:", "rollback": ":rewind:"}.get(status, ":rocket:")
    line = _cap(message(status, service, " ".join(text.split())))
    block = f"{icon} {_mrkdwn(line)}" + (f" (<{link}|CI run>)" if link else "")
    return {"text": line, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": block}}]}


class Notifier:
    def __init__(self, url: str | None, out: _Out, timeout: float = TIMEOUT, link: str | None = None) -> None:
        self.url = url
        self.out = out
        self.timeout = timeout
        self.link = link
        self.sent: list[str] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._failed = False
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, out: _Out, env: Mapping[str, str] = os.environ) -> Notifier:
        url = (env.get(ENV) or "").strip() or None
        if url and not url.startswith(("https://", "http://")):
            out.warn(f"{ENV} is not an http(s) URL: Slack notifications are off")
            url = None
        return cls(url, out, link=run_url(env))

    def announce(self) -> None:
        if not self.url:
            self.out.note(f"Slack notifications are off ({ENV} is not set)")

    def send(self, status: str, service: str, text: str) -> None:
        if not self.url:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="slack", daemon=True)
            self._thread.start()
        self._queue.put(payload(status, service, text, self.link))

    def _worker(self) -> None:
        assert self.url is not None
        try:
            client = httpx.Client(timeout=self.timeout, trust_env=True)
        except Exception as e:  # noqa: BLE001  (a bad proxy setting must not kill the thread silently)
            self._report(type(e).__name__)
            client = None
        while (item := self._queue.get()) is not None:
            try:
                if client is not None:
                    r = client.post(self.url, json=item)
                    if r.status_code >= 400:
                        self._report(f"answered HTTP {r.status_code}")
                    else:
                        self.sent.append(item["text"])
            except Exception as e:  # noqa: BLE001  (every later message must still be tried)
                self._report(type(e).__name__)
            finally:
                self._queue.task_done()
        if client is not None:
            client.close()

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

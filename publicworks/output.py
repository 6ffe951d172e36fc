"""What a run prints: numbered steps with durations, notes, and one summary line at the end.

On GitHub Actions (GITHUB_ACTIONS=true) each step is a collapsible `::group::` and failures are
`::error::` annotations; elsewhere plain lines, with colour only on a terminal.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


class Reporter:
    def __init__(self, steps: list[str] | None = None, verbose: bool = False, out: TextIO | None = None) -> None:
        self.steps = steps or []
        self.verbose = verbose
        self.out = out or sys.stdout
        self.github = on_github()
        self.colour = not self.github and hasattr(self.out, "isatty") and self.out.isatty() and not os.environ.get("NO_COLOR")
        self.durations: dict[str, float] = {}
        self.failed_step: str | None = None
        self.t0 = time.monotonic()

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def number(self, name: str) -> str:
        if name in self.steps:
            return f"[{self.steps.index(name) + 1}/{len(self.steps)}] "
        return ""

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        """Time one step; an exception marks it failed and goes on up."""
        title = f"{self.number(name)}{name}" + (f": {detail}" if detail else "")
        self.line(f"::group::{title}" if self.github else self._paint(title, "1"))
        t0 = time.monotonic()
        try:
            yield
        except BaseException:
            self.durations[name] = time.monotonic() - t0
            self.failed_step = self.failed_step or name
            self.line(self._paint(f"      FAILED after {self.durations[name]:.1f}s", "31"))
            if self.github:
                self.line("::endgroup::")
            raise
        self.durations[name] = time.monotonic() - t0
        self.line(f"      done in {self.durations[name]:.1f}s")
        if self.github:
            self.line("::endgroup::")

    def skip(self, name: str, why: str) -> None:
        self.line(f"{self.number(name)}{name}: skipped ({why})")

    def note(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.line(f"      {line}")

    def warn(self, text: str) -> None:
        if self.github:
            self.line(f"::warning::{_escape(text)}")
        else:
            self.note(self._paint(f"warning: {text}", "33"))

    def command(self, text: str) -> None:
        if self.verbose:
            self.note(self._paint(text, "2"))

    def error(self, text: str) -> None:
        if self.github:
            self.line(f"::error::{_escape(text)}")
        else:
            self.line(self._paint(f"error: {text}", "31"))

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def summary(self, text: str, ok: bool, facts: dict[str, str] | None = None) -> None:
        """The run's one-line outcome; on GitHub Actions also appended to the job summary as markdown."""
        self.line(self._paint(text, "32" if ok else "31"))
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.github and path:
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(job_summary(text, ok, facts or {}, self.durations))
            except OSError as e:
                self.warn(f"could not write the job summary ({e.strerror})")


def _escape(text: str) -> str:
    # GitHub workflow commands end at a newline; these escapes keep a multi-line message whole.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def job_summary(text: str, ok: bool, facts: dict[str, str], durations: dict[str, float]) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: the outcome, the facts, each step's duration."""

    def cell(v: str) -> str:
        return v.replace("|", "\\|").replace("\n", " ")

    out = [f"### {'✅' if ok else '❌'} {cell(text)}", ""]
    if facts:
        out += ["| | |", "|---|---|"] + [f"| {k} | {cell(v)} |" for k, v in facts.items()] + [""]
    if durations:
        out += ["| step | duration |", "|---|---|"] + [f"| {k} | {v:.1f}s |" for k, v in durations.items()] + [""]
    return "\n".join(out) + "\n"

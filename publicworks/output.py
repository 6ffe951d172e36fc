"""What a run prints: numbered steps with durations, notes, and one summary line at the end.

On GitHub Actions (GITHUB_ACTIONS=true) each step is a collapsible `::group::` and failures are
`::error::` annotations; elsewhere plain lines, with colour only on a terminal. Output never stops a
run: a closed stdout or stderr (a dropped laptop terminal, `| head`) is dropped quietly (`quiet_pipes`).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from .clock import Clock, SystemClock
from .steps import Step


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


class _Quiet(io.TextIOBase):
    """A stream whose writes never raise: once its reader is gone, output goes to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def _drop(self) -> None:
        self._gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())  # the interpreter's own flush at exit must not fail either
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._drop()

    def isatty(self) -> bool:
        return not self._gone and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def quiet_pipes() -> None:
    """Make sys.stdout and sys.stderr safe to write to for the rest of the process."""
    if not isinstance(sys.stdout, _Quiet):
        sys.stdout = _Quiet(sys.stdout)
    if not isinstance(sys.stderr, _Quiet):
        sys.stderr = _Quiet(sys.stderr)


@dataclass
class Facts:
    """What the job summary shows about a run: service, version, colors, actor, the history line."""

    service: str
    version: str | None = None
    colors: str | None = None
    actor: str = ""
    history: str | None = None
    more: list[str] = field(default_factory=list)

    def table(self) -> dict[str, str]:
        out = {"service": self.service, "version": self.version or "-"}
        if self.colors:
            out["colors"] = self.colors
        out["actor"] = self.actor
        if self.history:
            out["history"] = f"`{self.history}`"
        out["more"] = f"`publicworks history --service {self.service}`, `publicworks status --service {self.service}`"
        return out


class Reporter:
    def __init__(
        self,
        steps: Sequence[Step] = (),
        verbose: bool = False,
        out: TextIO | None = None,
        clock: Clock | None = None,
        label: str = "",
    ) -> None:
        self.label = label  # a host's name, in front of every line, when a run spans several hosts
        self.steps = tuple(steps)
        self.verbose = verbose
        self.out = out or sys.stdout
        self.clock = clock or SystemClock()
        self.github = on_github()
        self.colour = (
            not self.github and hasattr(self.out, "isatty") and self.out.isatty() and not os.environ.get("NO_COLOR")
        )
        self.durations: dict[str, float] = {}
        self.failed_step: Step | None = None
        self.t0 = self.clock.monotonic()

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        try:
            if self.label and text:
                command, sep, rest = text.partition("::") if text.startswith("::") else ("", "", "")
                text = (
                    f"::{rest.split('::', 1)[0]}::[{self.label}] {rest.split('::', 1)[1]}"
                    if sep
                    else f"[{self.label}] {text}"
                )
            print(text, file=self.out, flush=True)
        except (OSError, ValueError):
            pass  # nobody reads any more: the run goes on regardless

    def number(self, step: Step) -> str:
        if step in self.steps:
            return f"[{self.steps.index(step) + 1}/{len(self.steps)}] "
        return ""

    @contextmanager
    def step(self, step: Step, detail: str = "") -> Iterator[None]:
        """Time one step; an exception marks it failed and goes on up."""
        title = f"{self.number(step)}{step}" + (f": {detail}" if detail else "")
        self.line(f"::group::{title}" if self.github else self._paint(title, "1"))
        t0 = self.clock.monotonic()
        try:
            yield
        except BaseException:
            self.durations[step.value] = self.clock.monotonic() - t0
            self.failed_step = self.failed_step or step
            self.line(self._paint(f"      FAILED after {self.durations[step.value]:.1f}s", "31"))
            if self.github:
                self.line("::endgroup::")
            raise
        self.durations[step.value] = self.clock.monotonic() - t0
        self.line(f"      done in {self.durations[step.value]:.1f}s")
        if self.github:
            self.line("::endgroup::")

    def skip(self, step: Step, why: str) -> None:
        self.line(f"{self.number(step)}{step}: skipped ({why})")

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
        return self.clock.monotonic() - self.t0

    def for_host(self, label: str) -> Reporter:
        """The same output, its lines marked with a host's name (a run across several hosts)."""
        r = Reporter(self.steps, self.verbose, self.out, self.clock, label)
        r.t0 = self.t0
        return r

    def summary(self, text: str, ok: bool, facts: Facts | None = None) -> None:
        """The run's one-line outcome; on GitHub Actions also appended to the job summary as markdown."""
        self.line(self._paint(text, "32" if ok else "31"))
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.github and path:
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(job_summary(text, ok, facts.table() if facts else {}, self.durations))
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

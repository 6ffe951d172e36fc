"""The `publicworks` console script: the same tasks as `inv`, with only the core flags that mean something.

Invoke's core flags run commands locally (`--dry`, `--echo`, `--pty`, `-f CONFIG`, ...); public-works
runs nothing locally, so here they are hidden from --help and refused, as is any unknown flag: exit 2,
one line. A closed stdout or stderr never turns into a traceback (`output.quiet_pipes`).
"""

from __future__ import annotations

from typing import Any

from invoke import Exit, ParseError, Program

from . import __version__
from .errors import BAD_INPUT
from .output import quiet_pipes
from .tasks import ns

KEPT = ("help", "version", "list")


class PublicWorksProgram(Program):
    def _refuse(self) -> None:
        for name, arg in self.core[0].args.items():
            if name not in KEPT and arg.got_value:
                flag = ("--" if len(name) > 1 else "-") + name
                raise Exit(
                    f"error: {flag} is not an option of {self.binary} (see `{self.binary} --help`)", code=BAD_INPUT
                )

    def parse_core(self, argv: Any) -> None:
        self.normalize_argv(argv)
        try:
            self.parse_core_args()
        except ParseError as e:
            raise Exit(f"error: {e}", code=BAD_INPUT) from None
        self._refuse()
        if self.args.version.value:
            self.print_version()
            raise Exit

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as e:
            raise Exit(f"error: {e}", code=BAD_INPUT) from None
        self._refuse()

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as e:
            raise Exit(f"error: {e}", code=BAD_INPUT) from None

    def print_help(self) -> None:
        print(f"Usage: {self.binary} [--help|--version|--list] <task> [--task-options] ...")
        print("")
        print("Options:")
        print("")
        kept = {f"--{name}" for name in KEPT}
        tuples = self.initial_context.help_tuples()
        self.print_columns([t for t in tuples if kept & {w.split("[")[0].split("=")[0] for w in t[0].split(", ")}])
        self.list_tasks()
        print(
            f"Per task: {self.binary} --help <task>. Exit codes: 0 done, 1 failed (the last line says what serves), "
            "2 bad input, 3 lock busy or frozen."
        )


program = PublicWorksProgram(namespace=ns, name="publicworks", binary="publicworks", version=__version__)


def main() -> None:
    quiet_pipes()
    program.run()

"""The `publicworks` console script: the same tasks as `inv`, without this checkout's tasks.py."""

from __future__ import annotations

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, name="publicworks", binary="publicworks", version=__version__)


def main() -> None:
    program.run()

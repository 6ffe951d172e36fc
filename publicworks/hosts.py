"""Work on several hosts at once, with Fabric's own groups.

Each host's run has its own `Session` over its own connection. Fabric's `ThreadingGroup` calls a
method of every connection of a group in threads and gathers the results — exceptions included — per
connection. `HostConnection` is a Fabric Connection with one more method, `call_with`, so that the
group can run this package's per-host steps, not only shell commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fabric import Connection, ThreadingGroup
from fabric.exceptions import GroupException

T = TypeVar("T")
K = TypeVar("K")


class HostConnection(Connection):
    """A Fabric Connection through which a group can run one of our functions for its host."""

    def call_with(self, work: Callable[[Any], Any], items: dict[Any, Any]) -> Any:
        return work(items[self])


def at_once(items: Sequence[K], conn: Callable[[K], HostConnection], work: Callable[[K], T]) -> dict[K, T | Exception]:
    """`work(item)` for every item at the same time, through a ThreadingGroup of their connections:
    item -> its result, or the exception it raised."""
    if not items:
        return {}
    by_conn = {conn(i): i for i in items}
    group = ThreadingGroup.from_connections(list(by_conn))
    try:
        results = group._do("call_with", work, by_conn)  # the groups' one worker entry point (run, put... use it)
    except GroupException as e:
        results = e.result
    return {by_conn[c]: r for c, r in results.items()}

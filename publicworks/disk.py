"""Free space on the server: Docker's data root (where every pull lands) and the records' directories.

A deploy checks before pulling and refuses below server.min_free_mb, touching nothing; `doctor`
reports it and warns below server.warn_free_mb. Pure parsing of `commands.disk` output.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Space:
    path: str  # the mount point df names
    free_mb: int
    total_mb: int


@dataclass(frozen=True)
class Disk:
    docker_root: str
    docker: Space  # the filesystem holding Docker's data root
    others: tuple[Space, ...]  # the filesystems of the paths asked about, in order


def parse(text: str) -> Disk:
    """`root=/var/lib/docker`, then one `df -Pk` line per path (the data root first)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("root="):
        raise ValueError(f"unexpected disk report: {text[:200]!r}")
    spaces = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[3].isdigit() and fields[1].isdigit():
            spaces.append(Space(fields[5], int(fields[3]) // 1024, int(fields[1]) // 1024))
    if not spaces:
        raise ValueError(f"no df output in {text[:200]!r}")
    return Disk(lines[0].removeprefix("root="), spaces[0], tuple(spaces[1:]))


def refusal(d: Disk, floor_mb: int) -> str | None:
    """Why a deploy must not pull, or None."""
    if d.docker.free_mb >= floor_mb:
        return None
    return (
        f"only {d.docker.free_mb} MB free on {d.docker.path}, where Docker keeps images ({d.docker_root}); "
        f"server.min_free_mb is {floor_mb}. Nothing was touched. Free space first: `publicworks prune "
        "--service S` removes images of versions no rollback needs"
    )

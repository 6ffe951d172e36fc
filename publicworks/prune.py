"""Old images off the server, so that the disk never fills: after each successful deploy, and `inv prune`.

A service keeps the images of the newest `keep_images` versions it has served (the ones a rollback
goes back to), and of every version a container still uses — running or stopped, of any service: the
stopped color is the instant way back. Everything else of its repositories is untagged (`docker image
rm`); a version removed here comes back from the registry if `rollback --to` ever names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import commands as cmd
from . import disk, plan, server
from .config import COLORS, ServiceConfig
from .history import Entry
from .observe import Container
from .session import Session

PROBE_TAG = "publicworks-prune-probe"


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    id: str
    size: str

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class PrunePlan:
    remove: tuple[Image, ...]
    keep: dict[str, str]  # version -> why it stays


def parse_images(text: str) -> list[Image]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[1] != "<none>":
            out.append(Image(*parts))
    return out


def repositories(config_images: str) -> set[str]:
    """The service's image repositories, from `docker compose config --images` with the probe tag."""
    return {ref.rsplit(":", 1)[0] for ref in config_images.split() if ref.endswith(":" + PROBE_TAG)}


def decide(
    svc: ServiceConfig, repos: set[str], images: list[Image], containers: list[Container], entries: list[Entry]
) -> PrunePlan:
    keep: dict[str, str] = {}
    for c in containers:
        repo, _, tag = c.image.rpartition(":")
        if repo in repos and tag:
            keep.setdefault(tag, f"used by {c.name} ({'running' if c.running else 'stopped'})")
    served = plan.served_order(entries)
    for version in served[: svc.keep_images]:
        keep.setdefault(version, f"one of the {svc.keep_images} newest versions served")
    remove = tuple(i for i in images if i.repository in repos and i.tag not in keep)
    return PrunePlan(remove, keep)


def gather(s: Session) -> PrunePlan:
    probes = [s.run(cmd.compose_images(s.svc, c, PROBE_TAG), check=False).stdout for c in COLORS]
    repos = set().union(*(repositories(p) for p in probes))
    return decide(s.svc, repos, parse_images(s.run(cmd.images()).stdout), server.containers(s.remote), s.history())


def free_mb(s: Session) -> int:
    return disk.parse(s.run(cmd.disk([])).stdout).docker.free_mb


def run(s: Session, dry_run: bool = False) -> str:
    """Remove what the plan removes; one line saying what went and what was freed."""
    p = gather(s)
    if not p.remove:
        return f"nothing to prune for {s.svc.name} (keeping {', '.join(sorted(p.keep)) or 'nothing'})"
    refs = [i.ref for i in p.remove]
    if dry_run:
        return f"would remove {len(refs)} image(s) of {s.svc.name}: {', '.join(refs)}"
    before = free_mb(s)
    s.run(cmd.remove_images(refs))
    return f"removed {len(refs)} image(s) of {s.svc.name} ({', '.join(refs)}): {free_mb(s) - before} MB freed"

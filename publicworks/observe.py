"""What the server reports: containers, and from them what each color of a service runs.

Pure parsing of `docker ps` output (see `commands.ps`). Deploy decisions are made from this, not from
the state file alone: what runs is the truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import COLORS, ServiceConfig

_HOST_PORT = re.compile(r":(\d+)->")


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image: str
    state: str
    project: str
    service: str
    ports: tuple[int, ...]

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")

    @property
    def version(self) -> str | None:
        """The image tag: public-works' version. None for an untagged or digest-pinned image."""
        if "@" in self.image or self.image.startswith("sha256:"):
            return None
        name, sep, tag = self.image.rpartition(":")
        return tag if sep and "/" not in tag else None


@dataclass(frozen=True)
class ColorView:
    """One color of one service as it is on the server."""

    color: str
    port: int
    containers: tuple[Container, ...]  # this color's units (running or stopped)
    adopted: tuple[Container, ...]  # running containers outside public-works publishing this color's port

    @property
    def running(self) -> bool:
        return any(c.running for c in self.containers) or bool(self.adopted)

    @property
    def version(self) -> str | None:
        # The first unit's container is the one serving the port: its tag is the color's version.
        for group in ([c for c in self.containers if c.running], list(self.containers), list(self.adopted)):
            for c in group:
                if c.version:
                    return c.version
        return None

    @property
    def exists(self) -> bool:
        return bool(self.containers or self.adopted)


def parse_ps(text: str) -> list[Container]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 7:
            continue
        cid, name, image, state, project, service, ports = parts[:7]
        host_ports = tuple(sorted({int(p) for p in _HOST_PORT.findall(ports)}))
        out.append(Container(cid, name, image, state, project, service, host_ports))
    return out


def view(svc: ServiceConfig, containers: list[Container]) -> dict[str, ColorView]:
    views = {}
    for color in COLORS:
        units = set(svc.unit_names(color))
        ours = tuple(
            sorted(
                (c for c in containers if c.project == svc.project and c.service in units),
                key=lambda c: svc.unit_names(color).index(c.service),
            )
        )
        ours_ids = {c.id for c in ours}
        adopted = tuple(c for c in containers if c.running and svc.ports[color] in c.ports and c.id not in ours_ids)
        views[color] = ColorView(color, svc.ports[color], ours, adopted)
    return views

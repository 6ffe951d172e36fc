"""What the server reports: containers, and from them what each color of a service runs.

Pure parsing of `docker ps` output (see `commands.ps`). Deploy decisions are made from this, not from
the state file alone: what runs is the truth. A container outside public-works is adopted as a color
only when it publishes exactly 127.0.0.1:PORT of that color; anything else holding a service's port
is a conflict, and nothing is started or stopped until someone looks at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import COLORS, ServiceConfig

LOOPBACK = "127.0.0.1"
# "127.0.0.1:8888->8000/tcp", "0.0.0.0:8880-8890->8000-8010/tcp", ":::8888->8000/tcp", "[::1]:8889->8000/tcp"
_PUBLISHED = re.compile(r"^(?P<ip>.*):(?P<start>\d+)(?:-(?P<end>\d+))?->")


@dataclass(frozen=True)
class Published:
    ip: str  # "" when docker printed none
    start: int
    end: int

    def covers(self, port: int) -> bool:
        return self.start <= port <= self.end


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image: str
    state: str
    project: str
    service: str
    published: tuple[Published, ...]

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")

    @property
    def version(self) -> str | None:
        """The image tag: public-works' version. None for an untagged or digest-pinned image."""
        if "@" in self.image or self.image.startswith("sha256:"):
            return None
        _, sep, tag = self.image.rpartition(":")
        return tag if sep and "/" not in tag else None

    def holds(self, port: int) -> bool:
        return self.running and any(p.covers(port) for p in self.published)

    def adoptable_on(self, port: int) -> bool:
        """Publishes exactly 127.0.0.1:port and nothing else that covers it."""
        covering = [p for p in self.published if p.covers(port)]
        return self.running and bool(covering) and all(p.ip == LOOPBACK and p.start == p.end == port for p in covering)

    def describe(self) -> str:
        project = f"compose project {self.project!r}" if self.project else "no compose project"
        return f"{self.name} ({project}, image {self.image})"


@dataclass(frozen=True)
class ColorView:
    """One color of one service as it is on the server."""

    color: str
    port: int
    containers: tuple[Container, ...]  # this color's units (running or stopped)
    adopted: tuple[Container, ...]  # running containers outside public-works on exactly 127.0.0.1:port
    conflicts: tuple[Container, ...] = ()  # anything else holding the port

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


def parse_ports(text: str) -> tuple[Published, ...]:
    out = []
    for part in text.split(","):
        m = _PUBLISHED.match(part.strip())
        if m:
            start = int(m["start"])
            ip = m["ip"].strip("[]")
            out.append(Published(ip, start, int(m["end"]) if m["end"] else start))
    return tuple(out)


def parse_ps(text: str) -> list[Container]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 7:
            continue
        cid, name, image, state, project, service, ports = parts[:7]
        out.append(Container(cid, name, image, state, project, service, parse_ports(ports)))
    return out


def view(svc: ServiceConfig, containers: list[Container]) -> dict[str, ColorView]:
    views = {}
    for color in COLORS:
        names = svc.unit_names(color)
        ours = tuple(
            sorted(
                (c for c in containers if c.project == svc.project and c.service in names),
                key=lambda c: names.index(c.service),
            )
        )
        ours_ids = {c.id for c in ours}
        port = svc.ports[color]
        strangers = [c for c in containers if c.id not in ours_ids and c.holds(port)]
        adopted = tuple(c for c in strangers if c.adoptable_on(port))
        conflicts = tuple(c for c in strangers if not c.adoptable_on(port))
        views[color] = ColorView(color, port, ours, adopted, conflicts)
    return views


def conflicts(views: dict[str, ColorView]) -> list[str]:
    """One line per container holding a service's port that public-works will neither adopt nor stop."""
    return [
        f"port {v.port} ({v.color}) is held by {c.describe()}, which is not exactly {LOOPBACK}:{v.port}: "
        "public-works will not adopt or stop it. Stop it yourself, or publish it on "
        f"{LOOPBACK}:{v.port} only to have it adopted"
        for v in views.values()
        for c in v.conflicts
    ]

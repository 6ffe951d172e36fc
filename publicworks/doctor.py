"""`inv doctor`: everything a deploy needs, checked over SSH; each failure says what to do. Read-only."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import httpx

from . import caddy
from . import commands as cmd
from . import state as state_mod
from .config import COLORS, Config, ServiceConfig
from .remote import Remote

PROBE_TAG = "publicworks-doctor-probe"

# Constant scripts; paths arrive as arguments.
_MISSING = 'for f; do [ -e "$f" ] || echo "$f"; done'
# A path that does not exist yet is writable when its nearest existing ancestor is (mkdir -p, then write).
_WRITABLE = 'for f; do d=$f; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; [ -w "$d" ] || echo "$f"; done'


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


class Doctor:
    def __init__(self, remote: Remote, cfg: Config, services: list[ServiceConfig]) -> None:
        self.remote, self.cfg, self.services = remote, cfg, services
        self.checks: list[Check] = []

    def add(self, name: str, ok: bool, detail: str = "", fix: str = "") -> None:
        self.checks.append(Check(name, ok, detail, "" if ok else fix))

    def run(self, command: cmd.Command):
        return self.remote.run(command, check=False)

    def all(self) -> list[Check]:
        self.docker()
        for svc in self.services:
            self.files(svc)
        self.records()
        self.caddy()
        for svc in self.services:
            self.registry(svc)
        return self.checks

    def docker(self) -> None:
        user = self.remote.conn.user
        r = self.run(cmd.docker_version())
        self.add("docker", r.ok, f"engine {r.stdout.strip()}" if r.ok else r.tail(2),
                 f"install Docker on the server, start it, and add {user} to the docker group (usermod -aG docker {user})")
        r = self.run(cmd.compose_version())
        v2 = r.ok and r.stdout.strip().lstrip("v").startswith("2.")
        self.add("docker compose v2", v2, r.stdout.strip() if r.ok else r.tail(2),
                 "install the Compose v2 plugin (docker-compose-plugin) so that `docker compose version` says 2.x")

    def files(self, svc: ServiceConfig) -> None:
        paths = [svc.dir] + sorted({f for c in COLORS for f in svc.files(c)})
        missing = self.run(cmd.Command(("sh", "-c", _MISSING, "sh", *paths))).stdout.split()
        self.add(f"{svc.name}: compose files", not missing, "missing: " + ", ".join(missing) if missing else svc.dir,
                 f"put the service's compose files in {svc.dir} on the server (services.toml: dir, compose_files)")

    def records(self) -> None:
        srv = self.cfg.server
        paths = [srv.lock_file, srv.history_file] + [self.cfg.state_file(s.name) for s in self.services]
        bad = self.run(cmd.Command(("sh", "-c", _WRITABLE, "sh", *paths))).stdout.split()
        self.add("lock, history and state writable", not bad, "not writable: " + ", ".join(bad) if bad else
                 f"{srv.lock_file}, {srv.history_file}, {srv.state_dir}/",
                 "give the deploy user write access to these paths (or their directories)")
        for svc in self.services:
            path = self.cfg.state_file(svc.name)
            r = self.run(cmd.read_file(path))
            try:
                st = state_mod.parse(r.stdout, svc.name) if r.ok else None
                ok, detail = r.ok, (f"active {st.active} ({st.active_version})" if st and st.active else "no state yet")
            except ValueError as e:
                ok, detail = False, f"{path}: {e}"
            self.add(f"{svc.name}: state readable", ok, detail if ok else (detail or r.tail(2)),
                     f"move the broken {path} aside; the next deploy goes by what runs and writes a new one")

    def caddy(self) -> None:
        admin_addr = self.cfg.server.caddy_admin
        if not admin_addr:
            self.add("caddy admin API", True, "not checked (server.caddy_admin is empty)")
            return
        host, _, port = admin_addr.rpartition(":")
        try:
            with self.remote.http(timeout=5) as client:
                r = client.get(f"http://{host or 'localhost'}:{port}/config/")
            r.raise_for_status()
            config = r.json()
        except (httpx.HTTPError, ValueError) as e:
            self.add("caddy admin API", False, f"{admin_addr} on the server: {type(e).__name__}: {e}",
                     f"start Caddy with its admin API on {admin_addr} (the Caddyfile's global `admin` option), or set "
                     "server.caddy_admin = \"\" to skip this check")
            return
        self.add("caddy admin API", True, f"{admin_addr} on the server")
        for svc in self.services:
            both, one = caddy.service_handlers(config, svc)
            ports = f"{svc.ports['blue']} and {svc.ports['green']}"
            if both and not one:
                self.add(f"{svc.name}: caddy lists both colors", True, f"ports {ports} in {len(both)} reverse_proxy")
            elif one:
                listed = sorted(p for h in one for p in h.ports() if p in svc.ports.values())
                self.add(f"{svc.name}: caddy lists both colors", False,
                         f"a reverse_proxy lists only port(s) {', '.join(map(str, listed))} of {ports}: the design's "
                         "problem #1 — a deploy to the other color would never get traffic",
                         f"list both colors in civic-band's Caddyfile template: `publicworks caddy --service {svc.name}`")
            else:
                self.add(f"{svc.name}: caddy lists both colors", False, f"no reverse_proxy lists ports {ports}",
                         f"add the service to civic-band's Caddyfile template: `publicworks caddy --service {svc.name}`")

    def registry(self, svc: ServiceConfig) -> None:
        color = COLORS[0]
        images = self.run(cmd.compose(svc, color, PROBE_TAG, "config", "--images", *svc.unit_names(color)))
        refs = sorted({i for i in images.stdout.split() if i.endswith(":" + PROBE_TAG)})
        if not images.ok or not refs:
            self.add(f"{svc.name}: registry", False, images.tail(2) or "no image uses the version variable",
                     f"each unit's image in the compose files should end in :${{{svc.version_env}}}")
            return
        problems = []
        for ref in refs:
            r = self.run(cmd.Command(("docker", "manifest", "inspect", "--insecure", ref), timeout=60))
            if not r.ok and "no such manifest" not in (r.stdout + r.stderr):
                problems.append(f"{ref.rsplit(':', 1)[0]}: {r.tail(1)}")
        registries = ", ".join(sorted({r.split("/")[0] for r in refs}))
        self.add(f"{svc.name}: registry", not problems, "; ".join(problems) or f"{registries} reachable from the server",
                 "make the registry reachable from the server and `docker login` there as the deploy user")


def run(remote: Remote, cfg: Config, services: list[ServiceConfig]) -> list[Check]:
    return Doctor(remote, cfg, services).all()


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{'ok ' if c.ok else 'BAD'}  {c.name}: {c.detail}")
        if c.fix:
            lines.append(f"       what to do: {c.fix}")
    bad = sum(1 for c in checks if not c.ok)
    lines.append("all good: a deploy has what it needs" if not bad else f"{bad} problem(s)")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=2)

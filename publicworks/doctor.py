"""`inv doctor`: everything a deploy needs, checked over SSH; each problem says what to do. Read-only.

The checks are pure functions of what the server answered (`check_*`); `run` only gathers the answers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from . import caddy, disk
from . import commands as cmd
from . import state as state_mod
from .admin import Admin, CaddyUnreachable
from .config import COLORS, DESIGN_LOCK_FILE, Config, ServiceConfig
from .remote import Remote, Result

PROBE_TAG = "publicworks-doctor-probe"
OK, WARN, BAD = "ok", "warn", "bad"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | bad
    detail: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != BAD


def check(name: str, good: bool, detail: str, fix: str) -> Check:
    return Check(name, OK if good else BAD, detail, "" if good else fix)


def check_docker(version: Result, compose: Result, user: str) -> list[Check]:
    v2 = compose.ok and compose.stdout.strip().lstrip("v").startswith("2.")
    return [
        check(
            "docker",
            version.ok,
            f"engine {version.stdout.strip()}" if version.ok else version.tail(2),
            f"install Docker on the server, start it, and add {user} to the docker group (usermod -aG docker {user})",
        ),
        check(
            "docker compose v2",
            v2,
            compose.stdout.strip() if compose.ok else compose.tail(2),
            "install the Compose v2 plugin (docker-compose-plugin) so that `docker compose version` says 2.x",
        ),
    ]


def check_files(svc: ServiceConfig, missing: str) -> Check:
    gone = missing.split()
    return check(
        f"{svc.name}: compose files",
        not gone,
        "missing: " + ", ".join(gone) if gone else svc.dir,
        f"put the service's compose files in {svc.dir} on the server (services.toml: dir, compose_files)",
    )


def check_writable(cfg: Config, unwritable: str) -> Check:
    bad = unwritable.split()
    srv = cfg.server
    return check(
        "history and state writable",
        not bad,
        "not writable: " + ", ".join(bad) if bad else f"{srv.history_file}, {srv.state_dir}/",
        "give the deploy user write access to these paths (or their directories)",
    )


def check_lock(cfg: Config, report: str) -> Check:
    """The lock's directory: present (or creatable), only the deploy user's, no planted file or link."""
    f = cfg.server.lock_file
    lines = {
        ln.split("=", 1)[0]: dict(p.split("=", 1) for p in ln.split() if "=" in p)
        for ln in report.splitlines()
        if "=" in ln
    }
    user = lines.get("user", {}).get("user", "deploy")
    d, file = lines.get("dir", {}), lines.get("file", {})
    directory = f.rsplit("/", 1)[0] or "/"
    if d.get("dir") == "missing":
        return Check(
            "lock",
            BAD,
            f"the lock's directory {directory} does not exist",
            f"create it as {user}: mkdir -m 700 {directory} (or set server.lock_file)",
        )
    if file.get("file") == "symlink":
        return Check("lock", BAD, f"{f} is a symbolic link: deploys refuse it", f"remove it: rm {f}")
    if file.get("owner", user) != user:
        return Check(
            "lock",
            BAD,
            f"{f} belongs to {file['owner']}, not {user}: deploys refuse it",
            f"remove it (as root), or set server.lock_file in a directory only {user} can write",
        )
    mode = int(d.get("mode", "700"), 8)
    if d.get("dir") == "exists" and (mode & 0o022 or d.get("owner", user) != user):
        design = " (the design's path)" if f == DESIGN_LOCK_FILE else ""
        return Check(
            "lock",
            WARN,
            f"{directory}{design} is writable by others (mode {mode:o}, owner {d.get('owner')})",
            f"another local user could hold the lock or plant files next to it: use a directory only {user} "
            'can write, e.g. server.lock_file = "/home/deploy/.publicworks/deploy.lock" (the default)',
        )
    where = (
        "its directory is created at the first deploy" if d.get("dir") == "creatable" else f"only {user} writes there"
    )
    return Check("lock", OK, f"{f} ({where})")


def check_state(cfg: Config, svc: ServiceConfig, r: Result) -> Check:
    path = cfg.state_file(svc.name)
    try:
        st = state_mod.parse(r.stdout, svc.name) if r.ok else None
    except ValueError as e:
        return Check(
            f"{svc.name}: state readable",
            BAD,
            f"{path}: {e}",
            f"move the broken {path} aside; the next deploy goes by what runs and writes a new one",
        )
    detail = f"active {st.active} ({st.active_version})" if st and st.active else "no state yet"
    return check(
        f"{svc.name}: state readable", r.ok, detail if r.ok else r.tail(2), f"make {path} readable by the deploy user"
    )


def check_caddy(cfg: Config, svc: ServiceConfig, config: Any) -> Check:
    name = f"{svc.name}: caddy routes both colors"
    problems = [p for c in COLORS for p in caddy.route(config, svc, c).problems]
    if not problems:
        return Check(name, OK, f"ports {svc.ports['blue']} and {svc.ports['green']}, health_uri {svc.health_path}")
    both, one = caddy.service_handlers(config, svc)
    if one and not both:
        listed = sorted(p for h in one for p in h.ports() if p in svc.ports.values())
        problems.insert(
            0,
            f"a reverse_proxy lists only port(s) {', '.join(map(str, listed))}: the design's "
            "problem #1 — a deploy to the other color would never get traffic",
        )
    block = "\n".join(caddy.service_block(cfg, svc, svc.health_path))
    return Check(
        name,
        BAD,
        "; ".join(problems),
        f"in civic-band's Caddyfile template, use `publicworks caddy --service {svc.name}`:\n{block}",
    )


def check_units(svc: ServiceConfig, color: str, r: Result) -> Check:
    """Each unit of the color exists in its compose files; the first publishes 127.0.0.1:PORT; images take
    the version variable. What is missing comes with the compose lines to add."""
    name = f"{svc.name}: {color} units"
    port = svc.ports[color]
    first = svc.unit_names(color)[0]
    example = (
        f"services:\n  {first}:\n    image: <registry>/<image>:${{{svc.version_env}}}\n"
        f'    ports:\n      - "127.0.0.1:{port}:<the app\'s port>"'
    )
    where = f"in {svc.dir}'s compose files ({', '.join(svc.files(color))}):\n{example}"
    if not r.ok:
        return Check(name, BAD, f"`docker compose config` fails: {r.tail(1)}", where)
    try:
        services = json.loads(r.stdout).get("services") or {}
    except ValueError:
        return Check(name, BAD, "docker compose config did not print JSON", "upgrade Compose v2")
    problems = [f"no unit {u}" for u in svc.unit_names(color) if u not in services]
    if first in services:
        published = [(p.get("host_ip", ""), str(p.get("published", ""))) for p in services[first].get("ports") or []]
        if ("127.0.0.1", str(port)) not in published:
            problems.append(f"{first} does not publish 127.0.0.1:{port} (it publishes {published or 'nothing'})")
    for u in svc.unit_names(color):
        image = str((services.get(u) or {}).get("image", ""))
        if u in services and not image.endswith(":" + PROBE_TAG):
            problems.append(f"{u}'s image {image!r} does not end in :${{{svc.version_env}}}")
    if not problems:
        return Check(name, OK, f"{', '.join(svc.unit_names(color))}; {first} on 127.0.0.1:{port}")
    return Check(name, BAD, "; ".join(problems), where)


def check_disk(cfg: Config, report: str) -> Check:
    srv = cfg.server
    try:
        d = disk.parse(report)
    except ValueError as e:
        return Check("disk", BAD, str(e), "make `docker info` and `df` work for the deploy user")
    spaces = [("Docker's data root " + d.docker_root, d.docker)] + [
        (f"the {what}", space) for what, space in zip(("history", "state"), d.others, strict=False)
    ]
    low = min(spaces, key=lambda x: x[1].free_mb)
    detail = "; ".join(f"{what}: {s.free_mb} MB free of {s.total_mb} MB" for what, s in spaces)
    if low[1].free_mb < srv.min_free_mb:
        return Check(
            "disk",
            BAD,
            detail,
            f"free space on {low[1].path}: deploys refuse below server.min_free_mb "
            f"({srv.min_free_mb} MB); `publicworks prune --service S` removes old images",
        )
    if low[1].free_mb < srv.warn_free_mb:
        return Check(
            "disk",
            WARN,
            detail,
            f"{low[1].path} is below server.warn_free_mb ({srv.warn_free_mb} MB): "
            "`publicworks prune --service S`, or more disk",
        )
    return Check("disk", OK, detail)


def check_registry(svc: ServiceConfig, images: Result, inspected: dict[str, Result]) -> Check:
    name = f"{svc.name}: registry"
    refs = sorted(inspected)
    if not images.ok or not refs:
        return Check(
            name,
            BAD,
            images.tail(2) or "no image uses the version variable",
            f"each unit's image in the compose files should end in :${{{svc.version_env}}}",
        )
    problems = [
        f"{ref.rsplit(':', 1)[0]}: {r.tail(1)}"
        for ref, r in inspected.items()
        if not r.ok and "no such manifest" not in (r.stdout + r.stderr)
    ]
    registries = ", ".join(sorted({r.split("/")[0] for r in refs}))
    return check(
        name,
        not problems,
        "; ".join(problems) or f"{registries} reachable from the server",
        "make the registry reachable from the server and `docker login` there as the deploy user",
    )


def run(remote: Remote, cfg: Config, services: list[ServiceConfig]) -> list[Check]:
    """Gather the server's answers and check them."""
    q = lambda c: remote.run(c, check=False)  # noqa: E731
    checks = check_docker(q(cmd.docker_version()), q(cmd.compose_version()), remote.user)
    for svc in services:
        paths = [svc.dir] + sorted({f for c in COLORS for f in svc.files(c)})
        checks.append(check_files(svc, q(cmd.missing_paths(paths)).stdout))
    srv = cfg.server
    checks.append(check_lock(cfg, q(cmd.lock_dir_report(srv.lock_file)).stdout))
    writable = [srv.history_file] + [cfg.state_file(s.name) for s in services]
    checks.append(check_writable(cfg, q(cmd.unwritable_paths(writable)).stdout))
    checks += [check_state(cfg, svc, q(cmd.read_file(cfg.state_file(svc.name)))) for svc in services]
    dirs = [srv.history_file.rsplit("/", 1)[0] or "/", srv.state_dir]
    checks.append(check_disk(cfg, q(cmd.disk(dirs)).stdout))
    checks += [check_units(svc, c, q(cmd.compose_config(svc, c, PROBE_TAG))) for svc in services for c in COLORS]
    behind = [svc for svc in services if svc.behind_caddy]
    if behind:
        with Admin(remote, srv.caddy_admin, timeout=5) as admin:
            try:
                config = admin.config()
                checks.append(Check("caddy admin API", OK, f"{srv.caddy_admin} on the server"))
                checks += [check_caddy(cfg, svc, config) for svc in behind]
            except CaddyUnreachable as e:
                checks.append(
                    Check(
                        "caddy admin API",
                        BAD,
                        e.message,
                        f"start Caddy with its admin API on {srv.caddy_admin} (the Caddyfile's global `admin` "
                        "option), or set behind_caddy = false for services Caddy does not proxy",
                    )
                )
    for svc in services:
        images = q(cmd.compose_images(svc, COLORS[0], PROBE_TAG))
        refs = sorted({i for i in images.stdout.split() if i.endswith(":" + PROBE_TAG)})
        checks.append(check_registry(svc, images, {ref: q(cmd.manifest_inspect(ref)) for ref in refs}))
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{ {OK: 'ok ', WARN: 'WARN', BAD: 'BAD'}[c.status]:<4} {c.name}: {c.detail}")
        if c.fix:
            lines += [
                f"       what to do: {line}" if i == 0 else f"         {line}"
                for i, line in enumerate(c.fix.splitlines())
            ]
    bad = sum(1 for c in checks if c.status == BAD)
    lines.append("all good: a deploy has what it needs" if not bad else f"{bad} problem(s)")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps(
        {"ok": all(c.ok for c in checks), "checks": [{**asdict(c), "ok": c.ok} for c in checks]}, indent=2
    )

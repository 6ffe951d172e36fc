"""services.toml: the one registry of what is deployed, where, and how.

Loaded with tomllib into frozen dataclasses. Every mistake is a `ConfigError` naming the key path,
e.g. ``services.corkboard-django.ports.green: expected an integer``, so a typo never turns into a
half-done deploy. Environment overrides of the server (PUBLICWORKS_HOST/_USER/_PORT) are applied in
one place, `ssh.target`, together with the ssh config.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._schema import (
    REQUIRED,
    ConfigError,
    Spec,
    abs_path,
    boolean,
    bounded,
    fields,
    is_int,
    num,
    str_,
    strlist,
    table,
)

COLORS = ("blue", "green")
CONFIG_ENV = "PUBLICWORKS_CONFIG"
DEFAULT_CONFIG = "services.toml"
DESIGN_LOCK_FILE = "/tmp/civic-deploy.lock"  # the design's path: accepted, but `doctor` warns

_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a compose service name: never starts with '-'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[?[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*\]?")
_USER = re.compile(r"[a-z_][a-z0-9_-]*\$?")
_URL_PATH = re.compile(r"/[\x21-\x7e]*")  # printable ASCII, no spaces: it goes into an HTTP request line


@dataclass(frozen=True)
class ServerConfig:
    host: str
    user: str
    port: int
    lock_file: str
    history_file: str
    state_dir: str
    caddy_admin: str  # host:port of Caddy's admin API as seen on the server (read-only); "" = no Caddy
    lock_timeout: float  # the server frees the lock after this long without a heartbeat
    ssh_timeout: float  # connect, banner, login, channel open and command start, each
    min_free_mb: int  # a deploy refuses to pull with less free on Docker's data root
    warn_free_mb: int  # doctor warns below this
    name: str = ""  # its name under [hosts]; "" for [server] itself (which PUBLICWORKS_HOST/_USER/_PORT override)

    @property
    def label(self) -> str:
        return self.name or self.host

    def frozen_file(self, service: str) -> str:
        return f"{self.state_dir}/{service}.frozen"

    @property
    def heartbeat(self) -> float:
        return self.lock_timeout / 4

    def state_file(self, service: str) -> str:
        return f"{self.state_dir}/{service}.json"


@dataclass(frozen=True)
class CaddyConfig:
    """The health-proxy settings that `inv caddy` renders (see README: why they differ from the design)."""

    lb_policy: str
    lb_try_duration: str
    lb_try_interval: str
    health_interval: str
    health_timeout: str


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    dir: str
    project: str
    compose_files: tuple[str, ...]  # may hold "{color}"
    units: tuple[str, ...]  # compose services of one color, each holding "{color}"
    ports: dict[str, int]
    health_path: str
    version_env: str
    migrate: tuple[str, ...]  # argv run in a one-off container of the first unit; () = none
    ready_timeout: float
    canary_seconds: float
    canary_failures: int
    canary_probe_interval: float
    stop_grace: int
    behind_caddy: bool  # false: Caddy does not proxy it, the switch needs no Caddy proof
    keep_images: int  # the newest versions it has served whose images stay on the server
    pre_migrate: tuple[str, ...]  # argv run before the migrations (a database dump); () = none
    hosts: tuple[str, ...] = ()  # names under [hosts]; () = the [server] host
    hosts_at_once: int = 1  # hosts switched at a time in a rolling deploy

    def files(self, color: str) -> list[str]:
        """Absolute compose file paths for `color`."""
        named = (f.format(color=color) for f in self.compose_files)
        return [f if f.startswith("/") else f"{self.dir}/{f}" for f in named]

    def unit_names(self, color: str) -> list[str]:
        return [u.format(color=color) for u in self.units]

    @property
    def marker(self) -> str:
        """The design's rollback request file."""
        return f"{self.dir}/.rollback-requested"


@dataclass(frozen=True)
class Config:
    path: str
    server: ServerConfig
    caddy: CaddyConfig
    services: dict[str, ServiceConfig]
    hosts: dict[str, ServerConfig] = field(default_factory=dict)  # [hosts.NAME]

    def by_host(self, services: list[ServiceConfig]) -> list[tuple[ServerConfig, list[ServiceConfig]]]:
        """The hosts these services run on, each with its services: one connection per host reads them all."""
        out: dict[tuple[str, str, int], tuple[ServerConfig, list[ServiceConfig]]] = {}
        for svc in services:
            for server in self.targets(svc):  # by address: [server] may also be named under [hosts]
                out.setdefault((server.host, server.user, server.port), (server, []))[1].append(svc)
        return list(out.values())

    def targets(self, svc: ServiceConfig) -> list[ServerConfig]:
        """The hosts a service runs on, in its order (the [server] host when it names none)."""
        return [self.hosts[h] for h in svc.hosts] if svc.hosts else [self.server]

    def target(self, svc: ServiceConfig, host: str | None) -> ServerConfig:
        """The one host `--host` names among the service's (default: its first)."""
        targets = self.targets(svc)
        if host is None:
            return targets[0]
        for server in targets:
            if host in (server.label, server.name):
                return server
        names = ", ".join(s.label for s in targets)
        raise ConfigError(f"--host {host}: {svc.name} runs on {names}")

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise ConfigError(f"unknown service {name!r}; services.toml ({self.path}) knows: {known}") from None

    def state_file(self, service: str) -> str:
        return self.server.state_file(service)


def check_version(version: str, flag: str = "--version") -> str:
    """A version is a valid image tag, nothing else: it reaches the server only as one argv element."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ConfigError(
            f"{flag} {version!r} is not a valid image tag: 1-128 of letters, digits, '_', '.', '-', "
            "not starting with '.' or '-' (e.g. a git sha)"
        )
    return version


def check_host(host: str, where: str) -> str:
    if not _HOST.fullmatch(host):
        raise ConfigError(
            f"{where}: {host!r} is not a host name or address (no user@ and no :port here; "
            "the user and port have their own settings)"
        )
    return host


def parse_admin(addr: str, where: str = "server.caddy_admin") -> tuple[str, int]:
    """'localhost:2019' -> ('localhost', 2019)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or not _HOST.fullmatch(host):
        raise ConfigError(f"{where}: expected host:port of Caddy's admin API, e.g. localhost:2019; got {addr!r}")
    return host, int(port)


# -- the schema: key -> (type check, default) -------------------------------------------------------

_SERVER: dict[str, Spec] = {
    "host": (str_, REQUIRED),
    "user": (str_, "deploy"),
    "port": (is_int, 22),
    "lock_file": (str_, "/home/deploy/.publicworks/deploy.lock"),
    "history_file": (str_, "/home/deploy/deploy-history.log"),
    "state_dir": (str_, "/home/deploy/.publicworks"),
    "caddy_admin": (str_, "localhost:2019"),
    "lock_timeout": (num, 20),
    "min_free_mb": (is_int, 1024),
    "warn_free_mb": (is_int, 5120),
    "ssh_timeout": (num, 15),
}
_CADDY: dict[str, Spec] = {
    "lb_policy": (str_, "cookie"),
    "lb_try_duration": (str_, "5s"),
    "lb_try_interval": (str_, "250ms"),
    "health_interval": (str_, "2s"),
    "health_timeout": (str_, "2s"),
}
_SERVICE: dict[str, Spec] = {
    "dir": (str_, REQUIRED),
    "project": (str_, REQUIRED),
    "compose_files": (strlist, REQUIRED),
    "units": (strlist, REQUIRED),
    "ports": (table, REQUIRED),
    "health_path": (str_, "/health/"),
    "version_env": (str_, "IMAGE_TAG"),
    "migrate": (str_, ""),
    "ready_timeout": (num, 60),
    "canary_seconds": (num, 600),
    "canary_failures": (is_int, 3),
    "canary_probe_interval": (num, 2),
    "stop_grace": (is_int, 30),
    "behind_caddy": (boolean, True),
    "keep_images": (is_int, 5),
    "pre_migrate": (str_, ""),
    "hosts": (strlist, []),
    "hosts_at_once": (is_int, 1),
}
_HOST_TABLE: dict[str, Spec] = {"host": (str_, REQUIRED), "user": (str_, None), "port": (is_int, None)}
_LIMITS = {  # key: (low, high, low allowed)
    "ready_timeout": (0, 3600, False),
    "canary_seconds": (0, 86400, True),
    "canary_failures": (0, 1000, False),
    "canary_probe_interval": (0, 3600, False),
    "stop_grace": (0, 3600, True),
    "keep_images": (0, 1000, False),
    "hosts_at_once": (0, 1000, False),
}


def _formatted(template: str, where: str) -> None:
    """Only {color} may be substituted: anything else would fail at deploy time instead of now."""
    try:
        template.format(color="blue")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"{where}: {template!r}: only {{color}} may appear in braces ({e})") from None


def _ports(where: str, ports: dict[str, Any], used: dict[int, str]) -> dict[str, int]:
    for key in ports:
        if key not in COLORS:
            raise ConfigError(f"{where}.ports.{key}: unknown color (colors are blue and green)")
    for color in COLORS:
        key_path = f"{where}.ports.{color}"
        if color not in ports:
            raise ConfigError(f"{key_path}: missing (both colors need a port)")
        if not is_int(ports[color]):
            raise ConfigError(f"{key_path}: expected an integer")
        if not 0 < ports[color] < 65536:
            raise ConfigError(f"{key_path}: {ports[color]} is not a TCP port")
        if ports[color] in used:
            raise ConfigError(f"{key_path}: port {ports[color]} is already used by {used[ports[color]]}")
        used[ports[color]] = key_path
    return {c: ports[c] for c in COLORS}


def _service(name: str, data: Any, used_ports: dict[int, str]) -> ServiceConfig:
    where = f"services.{name}"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a service name is lowercase letters, digits, '-' and '_'")
    f = fields(data, _SERVICE, where)
    directory = abs_path(f["dir"], f"{where}.dir")
    if not _NAME.fullmatch(f["project"]):
        raise ConfigError(f"{where}.project: a compose project name is lowercase letters, digits, '-' and '_'")
    for key in ("compose_files", "units"):
        if not f[key]:
            raise ConfigError(f"{where}.{key}: must not be empty")
    for i, path in enumerate(f["compose_files"]):
        _formatted(path, f"{where}.compose_files[{i}]")
        if ".." in path.split("/") or "\n" in path:
            raise ConfigError(f"{where}.compose_files[{i}]: {path!r} must not contain '..' or newlines")
    for i, unit in enumerate(f["units"]):
        if "{color}" not in unit:
            raise ConfigError(
                f"{where}.units[{i}]: {unit!r} must contain {{color}}, or both colors would be one container"
            )
        _formatted(unit, f"{where}.units[{i}]")
        if not _UNIT.fullmatch(unit.format(color="blue")):
            raise ConfigError(
                f"{where}.units[{i}]: {unit!r} is not a compose service name (letters, digits, '_', '.', '-')"
            )
    if not _URL_PATH.fullmatch(f["health_path"]):
        raise ConfigError(f"{where}.health_path: must start with '/' and hold only printable characters, no spaces")
    if not _ENV_NAME.fullmatch(f["version_env"]):
        raise ConfigError(f"{where}.version_env: not an environment variable name")
    commands = {}
    for key in ("migrate", "pre_migrate"):
        try:
            commands[key] = tuple(shlex.split(f[key]))
        except ValueError as e:
            raise ConfigError(f"{where}.{key}: {e}") from None
    limits = {key: bounded(f[key], f"{where}.{key}", low, high, ok) for key, (low, high, ok) in _LIMITS.items()}
    return ServiceConfig(
        name=name,
        dir=directory,
        project=f["project"],
        compose_files=tuple(f["compose_files"]),
        units=tuple(f["units"]),
        ports=_ports(where, f["ports"], used_ports),
        health_path=f["health_path"],
        version_env=f["version_env"],
        migrate=commands["migrate"],
        ready_timeout=limits["ready_timeout"],
        canary_seconds=limits["canary_seconds"],
        canary_failures=int(limits["canary_failures"]),
        canary_probe_interval=limits["canary_probe_interval"],
        stop_grace=int(limits["stop_grace"]),
        behind_caddy=f["behind_caddy"],
        keep_images=int(limits["keep_images"]),
        pre_migrate=commands["pre_migrate"],
        hosts=tuple(f["hosts"]),
        hosts_at_once=int(limits["hosts_at_once"]),
    )


def _check_shared_projects(services: dict[str, ServiceConfig]) -> None:
    """Units sharing a compose project must be disjoint, or deploying one would stop the other."""
    owner: dict[tuple[str, str], str] = {}
    for svc in services.values():
        for color in COLORS:
            for unit in svc.unit_names(color):
                key = (svc.project, unit)
                if key in owner and owner[key] != svc.name:
                    raise ConfigError(
                        f"services.{svc.name}.units: {unit!r} is also a unit of services.{owner[key]} "
                        f"(same compose project {svc.project!r})"
                    )
                owner[key] = svc.name


def _server(data: Any) -> ServerConfig:
    s = fields(data, _SERVER, "server")
    check_host(s["host"], "server.host")
    if not _USER.fullmatch(s["user"]):
        raise ConfigError(f"server.user: {s['user']!r} is not a user name")
    if not 0 < s["port"] < 65536:
        raise ConfigError(f"server.port: {s['port']} is not a TCP port")
    paths = {key: abs_path(s[key], f"server.{key}") for key in ("lock_file", "history_file", "state_dir")}
    if s["caddy_admin"]:
        parse_admin(s["caddy_admin"])
    return ServerConfig(
        host=s["host"],
        user=s["user"],
        port=s["port"],
        caddy_admin=s["caddy_admin"],
        lock_timeout=bounded(s["lock_timeout"], "server.lock_timeout", 2, 3600, True),
        ssh_timeout=bounded(s["ssh_timeout"], "server.ssh_timeout", 0, 600),
        min_free_mb=int(bounded(s["min_free_mb"], "server.min_free_mb", 0, 10**9, True)),
        warn_free_mb=int(bounded(s["warn_free_mb"], "server.warn_free_mb", 0, 10**9, True)),
        **paths,
    )


def parse(text: str, path: str = "<string>") -> Config:
    """Parse and validate services.toml text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for key in data:
        if key not in ("server", "hosts", "caddy", "services"):
            raise ConfigError(f"{key}: unknown key (known: server, hosts, caddy, services)")
    server = _server(data.get("server", {}))
    hosts = _hosts(data.get("hosts", {}), server)
    caddy = fields(data.get("caddy", {}), _CADDY, "caddy")
    for key in ("lb_try_duration", "lb_try_interval", "health_interval", "health_timeout"):
        if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", caddy[key]):
            raise ConfigError(f"caddy.{key}: expected a duration like 2s or 250ms, got {caddy[key]!r}")
    tables = data.get("services")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("services: at least one [services.NAME] table is required")
    used: dict[int, str] = {}
    services = {name: _service(name, table_, used) for name, table_ in tables.items()}
    _check_shared_projects(services)
    for svc in services.values():
        for i, name in enumerate(svc.hosts):
            if name not in hosts:
                known = ", ".join(sorted(hosts)) or "none: add a [hosts.NAME] table"
                raise ConfigError(f"services.{svc.name}.hosts[{i}]: {name!r} is not a host (known: {known})")
        if len(set(svc.hosts)) != len(svc.hosts):
            raise ConfigError(f"services.{svc.name}.hosts: a host is named twice")
    behind = [s.name for s in services.values() if s.behind_caddy]
    if behind and not server.caddy_admin:
        raise ConfigError(
            f"server.caddy_admin: required, because {', '.join(behind)} {'is' if len(behind) == 1 else 'are'} "
            "behind Caddy (a switch waits for Caddy's proof); for a service Caddy does not proxy, set "
            "behind_caddy = false in its table"
        )
    return Config(path=path, server=server, caddy=CaddyConfig(**caddy), services=services, hosts=hosts)


def _hosts(data: Any, server: ServerConfig) -> dict[str, ServerConfig]:
    """[hosts.NAME] tables: an address (and user, port) each; everything else as in [server]."""
    if not isinstance(data, dict):
        raise ConfigError("hosts: expected tables [hosts.NAME]")
    out = {}
    for name, table_ in data.items():
        where = f"hosts.{name}"
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: a host name is lowercase letters, digits, '-' and '_'")
        f = fields(table_, _HOST_TABLE, where)
        check_host(f["host"], f"{where}.host")
        user = f["user"] if f["user"] is not None else server.user
        if not _USER.fullmatch(user):
            raise ConfigError(f"{where}.user: {user!r} is not a user name")
        port = f["port"] if f["port"] is not None else server.port
        if not 0 < port < 65536:
            raise ConfigError(f"{where}.port: {port} is not a TCP port")
        out[name] = replace(server, host=f["host"], user=user, port=port, name=name)
    return out


def default_path() -> Path:
    """PUBLICWORKS_CONFIG, else ./services.toml, else the services.toml next to this package's checkout."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    here = Path(DEFAULT_CONFIG)
    if here.exists():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_CONFIG


def load(path: str | Path | None = None) -> Config:
    """Load services.toml (see `default_path`) and validate it."""
    p = Path(path) if path else default_path()
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror}); set {CONFIG_ENV} to your services.toml") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    return parse(text, str(p))

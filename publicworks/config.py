"""services.toml: the one registry of what is deployed, where, and how.

Loaded with tomllib into frozen dataclasses. Every mistake is a `ConfigError`
naming the key path, e.g. ``services.corkboard-django.ports.green: expected an
integer``, so a typo never turns into a half-done deploy.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._schema import REQUIRED, ConfigError, Spec, fields, is_int, num, positive, str_, strlist, table

COLORS = ("blue", "green")
CONFIG_ENV = "PUBLICWORKS_CONFIG"
DEFAULT_CONFIG = "services.toml"

_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ServerConfig:
    host: str
    user: str
    port: int
    lock_file: str
    history_file: str
    state_dir: str
    caddy_admin: str  # host:port of Caddy's admin API as seen on the server (read-only); "" = not used


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

    def files(self, color: str) -> list[str]:
        """Absolute compose file paths for `color`."""
        return [f if f.startswith("/") else f"{self.dir}/{f}" for f in (x.format(color=color) for x in self.compose_files)]

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

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise ConfigError(f"unknown service {name!r}; services.toml ({self.path}) knows: {known}") from None

    def state_file(self, service: str) -> str:
        return f"{self.server.state_dir}/{service}.json"


def check_version(version: str) -> str:
    """A version is a valid image tag, nothing else: it reaches the server only as one argv element."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ConfigError(
            f"--version {version!r} is not a valid image tag: 1-128 of letters, digits, '_', '.', '-', "
            "not starting with '.' or '-' (e.g. a git sha)"
        )
    return version


# -- the schema: key -> (type check, default) -------------------------------------------------------

_SERVER: dict[str, Spec] = {
    "host": (str_, REQUIRED),
    "user": (str_, "deploy"),
    "port": (is_int, 22),
    "lock_file": (str_, "/tmp/civic-deploy.lock"),
    "history_file": (str_, "/home/deploy/deploy-history.log"),
    "state_dir": (str_, "/home/deploy/.publicworks"),
    "caddy_admin": (str_, "localhost:2019"),
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
}


def _service(name: str, data: Any, used_ports: dict[int, str]) -> ServiceConfig:
    where = f"services.{name}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a service name is lowercase letters, digits, '-' and '_'")
    f = fields(data, _SERVICE, where)
    if not f["dir"].startswith("/"):
        raise ConfigError(f"{where}.dir: must be an absolute path")
    if not _NAME.match(f["project"]):
        raise ConfigError(f"{where}.project: a compose project name is lowercase letters, digits, '-' and '_'")
    for key in ("compose_files", "units"):
        if not f[key]:
            raise ConfigError(f"{where}.{key}: must not be empty")
    for i, unit in enumerate(f["units"]):
        if "{color}" not in unit:
            raise ConfigError(f"{where}.units[{i}]: {unit!r} must contain {{color}}, or both colors would be one container")
    ports = f["ports"]
    for key in ports:
        if key not in COLORS:
            raise ConfigError(f"{where}.ports.{key}: unknown color (colors are blue and green)")
    for color in COLORS:
        if color not in ports:
            raise ConfigError(f"{where}.ports.{color}: missing (both colors need a port)")
        if not is_int(ports[color]):
            raise ConfigError(f"{where}.ports.{color}: expected an integer")
        if not 0 < ports[color] < 65536:
            raise ConfigError(f"{where}.ports.{color}: {ports[color]} is not a TCP port")
        key_path = f"{where}.ports.{color}"
        if ports[color] in used_ports:
            raise ConfigError(f"{key_path}: port {ports[color]} is already used by {used_ports[ports[color]]}")
        used_ports[ports[color]] = key_path
    if not f["health_path"].startswith("/"):
        raise ConfigError(f"{where}.health_path: must start with '/'")
    if not _ENV_NAME.match(f["version_env"]):
        raise ConfigError(f"{where}.version_env: not an environment variable name")
    try:
        migrate = tuple(shlex.split(f["migrate"]))
    except ValueError as e:
        raise ConfigError(f"{where}.migrate: {e}") from None
    for key in ("ready_timeout", "canary_probe_interval", "canary_failures"):
        positive(f[key], f"{where}.{key}")
    for key in ("canary_seconds", "stop_grace"):
        positive(f[key], f"{where}.{key}", allow_zero=True)
    return ServiceConfig(
        name=name,
        dir=f["dir"].rstrip("/"),
        project=f["project"],
        compose_files=tuple(f["compose_files"]),
        units=tuple(f["units"]),
        ports={c: ports[c] for c in COLORS},
        health_path=f["health_path"],
        version_env=f["version_env"],
        migrate=migrate,
        ready_timeout=float(f["ready_timeout"]),
        canary_seconds=float(f["canary_seconds"]),
        canary_failures=f["canary_failures"],
        canary_probe_interval=float(f["canary_probe_interval"]),
        stop_grace=f["stop_grace"],
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


def parse(text: str, path: str = "<string>", env: dict[str, str] | None = None) -> Config:
    """Parse and validate services.toml text; `env` supplies the PUBLICWORKS_HOST/_USER/_PORT overrides."""
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for key in data:
        if key not in ("server", "caddy", "services"):
            raise ConfigError(f"{key}: unknown key (known: server, caddy, services)")
    server = fields(data.get("server", {}), _SERVER, "server")
    for key in ("lock_file", "history_file", "state_dir"):
        if not server[key].startswith("/"):
            raise ConfigError(f"server.{key}: must be an absolute path")
    for key in ("host", "user"):
        if env.get(f"PUBLICWORKS_{key.upper()}"):
            server[key] = env[f"PUBLICWORKS_{key.upper()}"]
    if env.get("PUBLICWORKS_PORT"):
        try:
            server["port"] = int(env["PUBLICWORKS_PORT"])
        except ValueError:
            raise ConfigError(f"PUBLICWORKS_PORT: expected an integer, got {env['PUBLICWORKS_PORT']!r}") from None
    caddy = fields(data.get("caddy", {}), _CADDY, "caddy")
    for key in ("lb_try_duration", "lb_try_interval", "health_interval", "health_timeout"):
        if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", caddy[key]):
            raise ConfigError(f"caddy.{key}: expected a duration like 2s or 250ms, got {caddy[key]!r}")
    tables = data.get("services")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("services: at least one [services.NAME] table is required")
    used: dict[int, str] = {}
    services = {name: _service(name, data, used) for name, data in tables.items()}
    _check_shared_projects(services)
    return Config(
        path=path,
        server=ServerConfig(**{**server, "state_dir": server["state_dir"].rstrip("/")}),
        caddy=CaddyConfig(**caddy),
        services=services,
    )


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
    return parse(text, str(p))

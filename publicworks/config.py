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
from typing import Any, Callable

COLORS = ("blue", "green")
CONFIG_ENV = "PUBLICWORKS_CONFIG"
DEFAULT_CONFIG = "services.toml"

_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """services.toml (or an override) is wrong; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str
    user: str
    port: int
    lock_file: str
    history_file: str
    state_dir: str
    caddy_admin: str  # host:port of Caddy's admin API as seen on the server; "" = never touch Caddy


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

    def color_of_port(self, port: int) -> str | None:
        return next((c for c, p in self.ports.items() if p == port), None)

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


# -- field specs: (type check, default) --------------------------------------------------------------

_REQUIRED = object()


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return _int(v) or isinstance(v, float)


def _strlist(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


_KIND = {_str: "a string", _int: "an integer", _num: "a number", _strlist: "a list of strings"}

_SERVER: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "host": (_str, _REQUIRED),
    "user": (_str, "deploy"),
    "port": (_int, 22),
    "lock_file": (_str, "/tmp/civic-deploy.lock"),
    "history_file": (_str, "/home/deploy/deploy-history.log"),
    "state_dir": (_str, "/home/deploy/.publicworks"),
    "caddy_admin": (_str, "localhost:2019"),
}
_CADDY: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "lb_policy": (_str, "cookie"),
    "lb_try_duration": (_str, "5s"),
    "lb_try_interval": (_str, "250ms"),
    "health_interval": (_str, "2s"),
    "health_timeout": (_str, "2s"),
}
_SERVICE: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "dir": (_str, _REQUIRED),
    "project": (_str, _REQUIRED),
    "compose_files": (_strlist, _REQUIRED),
    "units": (_strlist, _REQUIRED),
    "ports": (dict, _REQUIRED),
    "health_path": (_str, "/health/"),
    "version_env": (_str, "IMAGE_TAG"),
    "migrate": (_str, ""),
    "ready_timeout": (_num, 60),
    "canary_seconds": (_num, 600),
    "canary_failures": (_int, 3),
    "canary_probe_interval": (_num, 2),
    "stop_grace": (_int, 30),
}


def _fields(table: Any, spec: dict, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in table:
        if key not in spec:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(spec)})")
    out = {}
    for key, (check, default) in spec.items():
        if key not in table:
            if default is _REQUIRED:
                raise ConfigError(f"{where}.{key}: required")
            out[key] = default
            continue
        value = table[key]
        ok = isinstance(value, dict) if check is dict else check(value)
        if not ok:
            kind = "a table" if check is dict else _KIND[check]
            raise ConfigError(f"{where}.{key}: expected {kind}")
        out[key] = value
    return out


def _positive(value: float, where: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}")


def _service(name: str, table: Any, used_ports: dict[int, str]) -> ServiceConfig:
    where = f"services.{name}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a service name is lowercase letters, digits, '-' and '_'")
    f = _fields(table, _SERVICE, where)
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
        if not _int(ports[color]):
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
        _positive(f[key], f"{where}.{key}")
    for key in ("canary_seconds", "stop_grace"):
        _positive(f[key], f"{where}.{key}", allow_zero=True)
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
    server = _fields(data.get("server", {}), _SERVER, "server")
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
    caddy = _fields(data.get("caddy", {}), _CADDY, "caddy")
    for key in ("lb_try_duration", "lb_try_interval", "health_interval", "health_timeout"):
        if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", caddy[key]):
            raise ConfigError(f"caddy.{key}: expected a duration like 2s or 250ms, got {caddy[key]!r}")
    tables = data.get("services")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("services: at least one [services.NAME] table is required")
    used: dict[int, str] = {}
    services = {name: _service(name, table, used) for name, table in tables.items()}
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

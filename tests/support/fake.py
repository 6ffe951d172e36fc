"""A fake server for offline tests of the orchestration: `FakeRemote` plays the VPS, `FakeClock` its time.

The fake interprets the exact commands public-works sends (docker compose up/stop/pull/run, docker ps,
the state and history scripts, the lock and its fence) against a small model of the server — containers
with the times they ran, files, the deploy lock — and answers HTTP through `httpx.MockTransport`: health
checks from that model, and Caddy's admin API from a simulated Caddy that health-checks every interval
and refreshes its metrics every 10 s, as Caddy 2.6 does. Nothing sleeps: `FakeClock.sleep` advances time.

Tests assert outcomes (what runs, the state, the history) and the sequence of mutating commands.
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from publicworks import commands as cmd
from publicworks import deploy as deploy_mod
from publicworks import rollback as rollback_mod
from publicworks.commands import Command
from publicworks.config import COLORS, Config
from publicworks.hosts import HostConnection
from publicworks.output import Reporter
from publicworks.remote import CommandFailed, Result

START = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """Monotonic and wall time that move only when the code sleeps (or a test advances them)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._events: list[tuple[float, Callable[[], None]]] = []
        self._lock = threading.RLock()  # several hosts' threads share one clock

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t - 1000.0)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._advance(seconds)

    def _advance(self, seconds: float) -> None:
        target = self.t + seconds
        while True:
            due = sorted((t, i) for i, (t, _) in enumerate(self._events) if t <= target)
            if not due:
                break
            t, i = due[0]
            self.t = max(self.t, t)
            _, fn = self._events.pop(i)
            fn()
        self.t = target

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        """Call `fn` once `delay` seconds from now have passed."""
        self._events.append((self.t + delay, fn))


@dataclass
class App:
    """How a version behaves."""

    ready_after: float = 0.3  # seconds from start until it listens
    status: int = 200  # what /health/ answers once ready
    migrate_ok: bool = True
    sick_after: float | None = None  # from start: /health/ answers 500 from then on


@dataclass
class Container:
    id: str
    name: str
    project: str
    service: str
    version: str
    port: int | None
    runs: list[list[float | None]] = field(default_factory=list)  # [start, stop or None]
    foreign_image: str | None = None
    published: str | None = None  # `docker ps` Ports text, for containers outside public-works

    @property
    def running(self) -> bool:
        return bool(self.runs) and self.runs[-1][1] is None

    def started_at(self, t: float) -> float | None:
        for start, stop in self.runs:
            if start is not None and start <= t and (stop is None or t < stop):
                return start
        return None

    def ps_line(self) -> str:
        image = self.foreign_image or f"127.0.0.1:5000/{self.project}:{self.version}"
        ports = (
            self.published if self.published is not None else (f"127.0.0.1:{self.port}->8000/tcp" if self.port else "")
        )
        state = "running" if self.running else "exited"
        return "\t".join((self.id, self.name, image, state, self.project, self.service, ports if self.running else ""))


class FakeCaddy:
    """Caddy 2.6 as public-works sees it through the admin API: config, health checks, 10 s metrics."""

    def __init__(self, server: FakeServer, cfg: Config, interval: float = 2.0) -> None:
        self.server = server
        self.interval = interval
        self.up = True
        self.loaded_at = server.clock.t - 3600  # loaded long ago
        self.writes = 0
        self.config: dict[str, Any] = self.render(cfg)
        self.stale: dict[str, float] = {}
        self.blind: set[str] = set()  # dials whose checks fail in Caddy, whatever the app answers

    def render(self, cfg: Config, **override: Any) -> dict[str, Any]:
        handlers = []
        for svc in cfg.services.values():
            if not svc.behind_caddy:
                continue
            active = {"uri": svc.health_path, "interval": int(self.interval * 1e9), "timeout": 2_000_000_000}
            active.update(override.get(svc.name, {}))
            dials = [{"dial": f"127.0.0.1:{svc.ports[c]}"} for c in COLORS]
            handlers.append({"handler": "reverse_proxy", "upstreams": dials, "health_checks": {"active": active}})
        return {"apps": {"http": {"servers": {"srv0": {"routes": [{"handle": [h]} for h in handlers]}}}}}

    def load(self, config: dict[str, Any]) -> None:
        """A config load through the admin API: every upstream reads healthy again until its next refresh."""
        for dial in self.dials():
            self.stale[dial] = self.gauge(dial, self.server.clock.t)
        self.config = config
        self.loaded_at = self.server.clock.t
        self.writes += 1

    def dials(self) -> list[str]:
        out = []
        for route in self.config["apps"]["http"]["servers"]["srv0"]["routes"]:
            for h in route["handle"]:
                out += [u["dial"] for u in h.get("upstreams", [])]
        return out

    def _checked(self, dial: str) -> bool:
        for route in self.config["apps"]["http"]["servers"]["srv0"]["routes"]:
            for h in route["handle"]:
                if any(u["dial"] == dial for u in h.get("upstreams", [])):
                    return bool((h.get("health_checks") or {}).get("active"))
        return False

    def _uri(self, dial: str) -> str:
        for route in self.config["apps"]["http"]["servers"]["srv0"]["routes"]:
            for h in route["handle"]:
                if any(u["dial"] == dial for u in h.get("upstreams", [])):
                    return str(((h.get("health_checks") or {}).get("active") or {}).get("uri", "/"))
        return "/"

    def gauge(self, dial: str, t: float) -> float:
        """The metric at `t`: the health flag as of the last 10 s refresh since the config load."""
        tick = self.loaded_at + math.floor((t - self.loaded_at) / 10.0) * 10.0
        if not self._checked(dial) or tick - self.loaded_at < self.interval:
            return 1.0  # no check yet since the load: healthy by default
        last_check = self.loaded_at + math.floor((tick - self.loaded_at) / self.interval) * self.interval
        port = int(dial.rpartition(":")[2])
        if dial in self.blind:
            return 0.0
        return 1.0 if self.server.answers(port, self._uri(dial), last_check) == 200 else 0.0

    def without(self, port: int) -> dict[str, Any]:
        """The running config with `port` removed from every reverse_proxy (the design's problem #1)."""
        config = json.loads(json.dumps(self.config))
        for route in config["apps"]["http"]["servers"]["srv0"]["routes"]:
            for h in route["handle"]:
                h["upstreams"] = [u for u in h["upstreams"] if not u["dial"].endswith(f":{port}")]
        return config

    def metrics(self) -> str:
        t = self.server.clock.t
        lines = [f'caddy_reverse_proxy_upstreams_healthy{{upstream="{d}"}} {self.gauge(d, t):g}' for d in self.dials()]
        lines += [
            f'caddy_reverse_proxy_upstreams_healthy{{upstream="{d}"}} {v:g}'
            for d, v in self.stale.items()
            if d not in self.dials()
        ]
        lines.append(
            f'caddy_admin_http_requests_total{{code="200",handler="load",method="POST",path="/load"}} {self.writes}'
        )
        lines.append("process_start_time_seconds 1.7e9")
        return "\n".join(["# TYPE caddy_reverse_proxy_upstreams_healthy gauge", *lines]) + "\n"


class FakeServer:
    """The VPS's model: containers, files, the lock."""

    def __init__(self, cfg: Config, clock: FakeClock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.containers: dict[str, Container] = {}
        self.files: dict[str, str] = {}
        self.apps: dict[str, App] = {}
        self.missing: set[str] = set()  # versions the registry does not have
        self.lock_token: str | None = None
        self.lock_holder = ""
        self.lock_open = False  # our lock channel is alive
        self.unwritable: set[str] = set()  # paths whose writes fail (a full disk, a read-only file)
        self.free_mb = 50_000  # on Docker's data root
        self.images: set[str] = set()  # repository:tag of the images present (pulls add to it)
        self.caddy = FakeCaddy(self, cfg)
        self._ids = 0

    def app(self, version: str) -> App:
        return self.apps.get(version, App())

    def answers(self, port: int, path: str, t: float) -> int | None:
        """What GET path on 127.0.0.1:port answers at time t (None: connection refused)."""
        for c in self.containers.values():
            if c.port != port:
                continue
            start = c.started_at(t)
            if start is None:
                continue
            app = self.app(c.version)
            if t < start + app.ready_after:
                return None
            if app.sick_after is not None and t >= start + app.sick_after:
                return 500
            return app.status if path.startswith("/health") else 200
        return None

    def running(self, project: str | None = None) -> dict[str, str]:
        return {
            c.name: c.version
            for c in self.containers.values()
            if c.running and (project is None or c.project == project)
        }

    def state(self, service: str) -> dict[str, Any] | None:
        text = self.files.get(self.cfg.state_file(service))
        return json.loads(text) if text else None

    def history(self) -> list[str]:
        return self.files.get(self.cfg.server.history_file, "").splitlines()

    def adopt(self, name: str, port: int, image: str, published: str | None = None) -> Container:
        """A container started outside public-works."""
        self._ids += 1
        c = Container(
            f"x{self._ids}",
            name,
            "",
            "",
            image.rpartition(":")[2],
            port,
            [[self.clock.t, None]],
            foreign_image=image,
            published=published,
        )
        self.containers[name] = c
        return c

    def compose(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        env = argv[1]
        version = env.partition("=")[2]
        project = argv[argv.index("-p") + 1]
        rest = list(argv[argv.index("-p") + 2 :])
        while rest and rest[0] == "-f":
            rest = rest[2:]
        sub, args = rest[0], rest[1:]
        units = args[args.index("--") + 1 :] if "--" in args else []
        svc = next(
            s
            for s in self.cfg.services.values()
            if s.project == project and any(u in s.unit_names(c) for c in COLORS for u in units)
        )
        color = next(c for c in COLORS if units[0] in svc.unit_names(c))
        first = svc.unit_names(color)[0]
        if sub == "pull":
            if version in self.missing:
                return 1, "", f"manifest for {version} not found"
            self.images.add(f"127.0.0.1:5000/{project}:{version}")
            return 0, "", ""
        if sub == "run":
            ok = self.app(version).migrate_ok
            return (0, f"applied migrations for {version}\n", "") if ok else (1, "", "migration failed\n")
        if sub == "logs":
            return 0, "\n".join(f"{u} | log line" for u in units), ""
        if sub == "config":
            return 0, "\n".join(f"127.0.0.1:5000/{project}:{version}" for _ in units), ""
        if sub == "logs":
            return 0, "", ""
        for unit in units:
            name = f"{project}-{unit}-1"
            c = self.containers.get(name)
            if sub == "up":
                if version in self.missing and (c is None or c.version != version):
                    return 1, "", f"pull access denied for {version}"
                if c is None or c.version != version:
                    if c is not None and c.running:
                        c.runs[-1][1] = self.clock.t
                    self._ids += 1
                    c = Container(
                        f"c{self._ids}", name, project, unit, version, svc.ports[color] if unit == first else None
                    )
                    self.containers[name] = c
                if not c.running:
                    c.runs.append([self.clock.t, None])
            elif sub == "stop" and c is not None and c.running:
                c.runs[-1][1] = self.clock.t
        return 0, "", ""

    def script(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        script, args = argv[2], argv[4:]
        files = self.files
        if script == cmd._READ:
            return 0, files.get(args[0], ""), ""
        if script in (cmd._ATOMIC_WRITE,):
            if args[0] in self.unwritable:
                return 1, "", f"sh: can't create {args[0]}: Permission denied\n"
            files[args[0]] = args[1]
            return 0, "", ""
        if script == cmd._APPEND:
            if args[0] in self.unwritable:
                return 1, "", f"sh: can't create {args[0]}: No space left on device\n"
            files[args[0]] = files.get(args[0], "") + args[1]
            return 0, "", ""
        if script == cmd._TAIL:
            return 0, "\n".join(files.get(args[0], "").splitlines()[-int(args[1]) :]) + "\n", ""
        if script == cmd._TAIL_MATCHING:
            lines = [ln for ln in files.get(args[0], "").splitlines() if args[2] in ln]
            return 0, "\n".join(lines[-int(args[1]) :]) + "\n", ""
        if script == cmd._CONSUME:
            if args[0] not in files:
                return 1, "", ""
            return 0, files.pop(args[0]), ""
        if script == cmd._DISK:
            free = self.free_mb * 1024
            line = f"/dev/vda 100000000 1 {free} 1% /"
            return 0, "root=/var/lib/docker\n" + "\n".join(line for _ in range(1 + len(args))) + "\n", ""
        if script == cmd._LOCK_PROBE:
            held = self.lock_token is not None
            locks = "1: FLOCK  ADVISORY  WRITE 99 00:2d:7 0 EOF\n" if held else ""
            return 0, f"file=45:7\n--- locks\n{locks}--- holder\n{self.lock_holder if held else ''}\n", ""
        raise AssertionError(f"the fake does not know this script: {script[:60]!r}")


class FakeLockChannel:
    """The lock's long-lived channel, as the server's flock script behaves."""

    def __init__(self, server: FakeServer, command: Command) -> None:
        self.server = server
        self.token = command.argv[-1]
        self.closed = False
        self._busy = server.lock_token is not None
        self._sent = b""
        self._out = b"" if self._busy else b"locked\n"
        self._exit: int | None = 75 if self._busy else None

    def sendall(self, data: bytes) -> None:
        self._sent += data
        if not self._busy and self.server.lock_token is None and b"\n" in self._sent and self._exit is None:
            self.server.lock_token = self.token
            self.server.lock_holder = self._sent.split(b"\n", 1)[0].decode()
            self.server.lock_open = True

    def recv(self, n: int) -> bytes:
        out, self._out = self._out[:n], self._out[n:]
        return out

    def recv_stderr(self, n: int) -> bytes:
        return b""

    def settimeout(self, timeout: float | None) -> None:
        pass

    def exit_status_ready(self) -> bool:
        if self._exit is None and self.server.lock_token != self.token:
            self._exit = 0  # the server let go (a missed heartbeat)
        return self._exit is not None

    def recv_exit_status(self) -> int:
        return self._exit if self._exit is not None else 0

    def shutdown_write(self) -> None:
        if self.server.lock_token == self.token:
            self.server.lock_token = None
            self.server.lock_open = False
        self._exit = 0

    def close(self) -> None:
        self.closed = True


class FakeRemote:
    """Plays the server for `Session`: records every command, answers from `FakeServer`."""

    def __init__(self, cfg: Config, clock: FakeClock | None = None, name: str = "vps") -> None:
        self.clock = clock or FakeClock()
        self.server = FakeServer(cfg, self.clock)
        self.conn = HostConnection(f"fake-{name}")  # never opened: what Fabric's groups hold
        self.target = f"deploy@{name}:22"
        self.user = "deploy"
        self.ran: list[Command] = []  # every command, unwrapped from its fence
        self.fenced: list[bool] = []
        self.hooks: list[tuple[Callable[[Command], bool], Callable[[Command], Result | None]]] = []
        self.command_cost = 0.05  # seconds each command takes
        self.closed = False

    def on(self, match: Callable[[Command], bool], action: Callable[[Command], Result | None]) -> None:
        """Before a matching command runs: `action` may change the world, raise, or answer in its place."""
        self.hooks.append((match, action))

    def mutations(self) -> list[Command]:
        return [c for c in self.ran if c.mutating]

    def run(self, command: Command, check: bool = True) -> Result:
        inner = cmd.unfenced(command)
        self.ran.append(inner)
        fenced = inner is not command
        self.fenced.append(fenced)
        self.clock.advance(self.command_cost)
        for match, action in list(self.hooks):
            if match(inner):
                answer = action(inner)
                if answer is not None:
                    return self._result(command, answer, check)
        if fenced and self.server.lock_token != command.argv[5]:
            return self._result(command, Result(command, cmd.FENCE_EXIT, "", f"{cmd.FENCE_MARK} refused\n"), check)
        argv = inner.argv
        if argv[:2] == ("docker", "ps"):
            out = "\n".join(c.ps_line() for c in self.server.containers.values())
            return self._result(command, Result(command, 0, out + "\n", ""), check)
        if argv[:2] == ("docker", "images"):
            rows = [
                f"{ref.rpartition(':')[0]}\t{ref.rpartition(':')[2]}\tsha256:{abs(hash(ref))}\t10MB"
                for ref in sorted(self.server.images)
            ]
            return self._result(command, Result(command, 0, "\n".join(rows) + "\n", ""), check)
        if argv[:3] == ("docker", "image", "rm"):
            self.server.images -= set(argv[argv.index("--") + 1 :])
            return self._result(command, Result(command, 0, "", ""), check)
        if argv[:2] == ("rm", "-f"):
            self.server.files.pop(argv[-1], None)
            return self._result(command, Result(command, 0, "", ""), check)
        if argv[:2] == ("docker", "stop"):
            for cid in argv[argv.index("--") + 1 :]:
                for c in self.server.containers.values():
                    if c.id == cid and c.running:
                        c.runs[-1][1] = self.clock.t
            return self._result(command, Result(command, 0, "", ""), check)
        if argv[0] == "env" and argv[2:4] == ("docker", "compose"):
            code, out, err = self.server.compose(argv)
        elif argv[:2] == ("sh", "-c"):
            code, out, err = self.server.script(argv)
        else:
            raise AssertionError(f"the fake does not know {inner}")
        return self._result(command, Result(command, code, out, err), check)

    def _result(self, command: Command, result: Result, check: bool) -> Result:
        result = Result(command, result.exited, result.stdout, result.stderr)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def attach(self, command: Command, tty: bool = False, keep_stdin: bool = False) -> int:
        """Streamed commands (logs, exec): recorded; a hook may answer with its exit status."""
        self.ran.append(command)
        self.fenced.append(False)
        for match, action in list(self.hooks):
            if match(command):
                answer = action(command)
                if answer is not None:
                    return answer.exited
        return 0

    def channel(self, command: Command) -> FakeLockChannel:
        assert command.argv[:2] == ("bash", "-c"), command
        self.ran.append(command)
        self.fenced.append(False)
        return FakeLockChannel(self.server, command)

    def http(self, timeout: float = 5.0, verify: bool = True) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._answer), timeout=timeout)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(0.01)
        url = request.url
        if url.port == 2019:
            if not self.server.caddy.up:
                raise httpx.ConnectError("connection refused", request=request)
            if url.path == "/config/":
                return httpx.Response(200, json=self.server.caddy.config)
            if url.path == "/metrics":
                return httpx.Response(200, text=self.server.caddy.metrics())
            return httpx.Response(404)
        status = self.server.answers(url.port or 80, url.path, self.clock.t)
        if status is None:
            raise httpx.ConnectError(f"127.0.0.1:{url.port} on the server refused the connection", request=request)
        return httpx.Response(status, text="ok" if status == 200 else "unhealthy")

    def close(self) -> None:
        self.closed = True

    # -- conveniences for tests -------------------------------------------------------------------------

    def lose_lock(self) -> None:
        """The server frees the lock behind our back (a network loss longer than the heartbeat window)."""
        self.server.lock_token = None
        self.server.lock_holder = ""

    def connect(self, *args: Any, **kwargs: Any) -> FakeRemote:
        """For `open_session(connect_to=...)`."""
        return self


class World:
    """One fake server, its clock, and public-works' runs against it, output captured."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.clock = FakeClock()
        self.remote = FakeRemote(cfg, self.clock)
        self.server = self.remote.server
        self.out = io.StringIO()

    def reporter(self) -> Reporter:
        return Reporter(out=self.out, clock=self.clock)

    def deploy(self, service: str, version: str, canary: float | None = 0, wait_lock: float = 0) -> int:
        opts = deploy_mod.Options(service, version, wait_lock=wait_lock, canary=canary)
        return deploy_mod.deploy(self.cfg, opts, self.reporter(), connect_to=self.remote.connect)

    def rollback(
        self, service: str, to: str | None = None, yes: bool = False, ask: Callable[[str], bool] | None = None
    ) -> int:
        opts = rollback_mod.Options(service, to=to, yes=yes)
        return rollback_mod.rollback(self.cfg, opts, self.reporter(), connect_to=self.remote.connect, ask=ask)

    def text(self) -> str:
        return self.out.getvalue()

    def last_lines(self, n: int = 1) -> str:
        return "\n".join(self.text().rstrip().splitlines()[-n:])

    def mark(self) -> int:
        """Where the command log is now: `since(mark)` gives what ran after."""
        return len(self.remote.ran)

    def since(self, mark: int, mutating_only: bool = True) -> list[Command]:
        return [c for c in self.remote.ran[mark:] if c.mutating or not mutating_only]


class Fleet:
    """Several fake hosts of one service, one clock: a deploy across hosts against them."""

    def __init__(self, cfg: Config, service: str, names: tuple[str, ...] = ("h1", "h2", "h3")) -> None:
        hosts = {n: replace(cfg.server, host=f"10.9.0.{i + 2}", name=n) for i, n in enumerate(names)}
        svc = replace(cfg.services[service], hosts=names)
        self.cfg = replace(cfg, hosts=hosts, services={**cfg.services, service: svc})
        self.clock = FakeClock()
        self.remotes = {n: FakeRemote(self.cfg, self.clock, n) for n in names}
        self.out = io.StringIO()

    def server(self, name: str) -> FakeServer:
        return self.remotes[name].server

    def connect(self, server: Any, **kwargs: Any) -> FakeRemote:
        return self.remotes[server.label]

    def reporter(self) -> Reporter:
        return Reporter(out=self.out, clock=self.clock)

    def deploy(self, service: str, version: str, canary: float | None = 0) -> int:
        opts = deploy_mod.Options(service, version, canary=canary)
        return deploy_mod.deploy(self.cfg, opts, self.reporter(), connect_to=self.connect)

    def deploy_dry(self, service: str, version: str) -> int:
        opts = deploy_mod.Options(service, version, canary=0, dry_run=True)
        return deploy_mod.deploy(self.cfg, opts, self.reporter(), connect_to=self.connect)

    def rollback(self, service: str, to: str | None = None, yes: bool = False) -> int:
        opts = rollback_mod.Options(service, to=to, yes=yes)
        return rollback_mod.rollback(self.cfg, opts, self.reporter(), connect_to=self.connect)

    def text(self) -> str:
        return self.out.getvalue()

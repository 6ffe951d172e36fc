"""The sandbox VPS, from the tests' and the bench's side: run public-works as a user would, look at the
VPS directly (its own ssh, not public-works' code), and change it (stop Caddy, cut the link, ...).

Used by tests/integration (through its fixtures) and by bench/; it imports neither.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SB = Path(os.environ.get("PUBLICWORKS_SANDBOX_DIR", "/var/lib/publicworks-sandbox"))
SSH_CONFIG = SB / "client" / "ssh_config"


def _host() -> int:
    """The sandbox VPS this process uses: one per pytest-xdist worker (gw0 -> 1), or PUBLICWORKS_SANDBOX_HOST, or 1."""
    if os.environ.get("PUBLICWORKS_SANDBOX_HOST"):
        return int(os.environ["PUBLICWORKS_SANDBOX_HOST"])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) + 1 if worker.startswith("gw") else 1


HOST = _host()
VPS_IP = f"10.200.0.{HOST + 1}"
ALIAS = f"sandbox-vps{HOST}"  # in the sandbox's ssh config
VPS_DIR = SB / f"vps{HOST}"
SITES = {
    "civic-observer": "civic.observer",
    "corkboard-django": "django.civic.band",
    "corkboard-datasette": "civic.band",
}

ENV = {
    "PUBLICWORKS_CONFIG": str(ROOT / "sandbox" / "services.toml"),
    "PUBLICWORKS_SSH_CONFIG": str(SSH_CONFIG),
    "PUBLICWORKS_HOST": VPS_IP,
    "PUBLICWORKS_SANDBOX_DIR": str(SB),
}


def poll(condition: Callable[[], object], timeout: float = 20, every: float = 0.1, what: str = "condition"):
    """Return condition()'s first truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def pw_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLICWORKS_", "GITHUB_", "SLACK_"))}
    return {**env, **ENV, "PUBLICWORKS_ACTOR": "tests@runner", **extra}


def pw(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Run:
    """Run the `publicworks` console script as a user would, and wait for it."""
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "publicworks", *args],
        capture_output=True,
        text=True,
        env=env or pw_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def pw_start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "publicworks", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or pw_env(),
        stdin=subprocess.DEVNULL,
    )


class VPS:
    """Direct access to a sandbox VPS for assertions: its own ssh, not public-works' code. VPS() is this
    process's; VPS(2) is the second of a sandbox started with --hosts 3."""

    def __init__(self, n: int = HOST) -> None:
        self.n = n
        self.ip = f"10.200.0.{n + 1}"
        self.alias = f"sandbox-vps{n}"

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> str:
        p = subprocess.run(
            ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", self.alias, script],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"on the VPS: {script!r} exited {p.returncode}: {p.stderr}")
        return p.stdout

    def put(self, path: str, text: str) -> None:
        """Write a file on the VPS as the deploy user (relative paths are under /home/deploy)."""
        subprocess.run(
            ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", self.alias, "cat", ">", path],
            input=text,
            text=True,
            check=True,
            timeout=30,
            capture_output=True,
        )

    def containers(self, project: str | None = None) -> dict[str, dict]:
        """name -> {id, image, state, version} of every container (of one compose project)."""
        out = self.sh("docker ps -a --no-trunc --format '{{json .}}'")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        result = {}
        for r in rows:
            labels = dict(kv.split("=", 1) for kv in r["Labels"].split(",") if "=" in kv)
            if project and labels.get("com.docker.compose.project") != project:
                continue
            result[r["Names"]] = {
                "id": r["ID"],
                "image": r["Image"],
                "state": r["State"],
                "version": r["Image"].rpartition(":")[2],
            }
        return result

    def running(self, project: str) -> dict[str, str]:
        """name -> version of the running containers of a project."""
        return {n: c["version"] for n, c in self.containers(project).items() if c["state"] == "running"}

    def state(self, service: str) -> dict | None:
        text = self.sh(f"cat /home/deploy/.publicworks/{service}.json 2>/dev/null || true")
        return json.loads(text) if text.strip() else None

    def history(self) -> list[str]:
        return self.sh("cat /home/deploy/deploy-history.log 2>/dev/null || true").splitlines()

    def get(self, port: int, path: str = "/") -> str:
        """GET on the VPS's own loopback (from inside, as the health check sees it)."""
        return self.sh(f"timeout 5 busybox wget -q -O - http://127.0.0.1:{port}{path} || true")

    def clean(self) -> None:
        self.sh(
            "docker ps -aq | xargs -r docker rm -f >/dev/null; "
            "docker volume ls -q | xargs -r docker volume rm -f >/dev/null; "
            "rm -rf .publicworks deploy-history.log civic-observer/.rollback-requested* corkboard/.rollback-requested*"
        )


def caddy_get(
    service: str, cookies: httpx.Cookies | None = None, timeout: float = 10, ip: str = VPS_IP
) -> httpx.Response:
    """What a user of the service gets, through the VPS's Caddy on its public address."""
    return httpx.get(
        f"http://{ip}/", headers={"Host": SITES[service]}, cookies=cookies, timeout=timeout, trust_env=False
    )


def answer(service: str, ip: str = VPS_IP) -> str:
    try:
        r = caddy_get(service, ip=ip)
        return r.text.strip() if r.status_code == 200 else f"HTTP {r.status_code}"
    except httpx.HTTPError as e:
        return f"error {type(e).__name__}"


def sshd_accepted(n: int = HOST) -> int:
    """SSH logins VPS n's sshd has accepted so far (its log)."""
    return sshd_log(n).count("Accepted publickey for deploy")


def sshd_log(n: int = HOST) -> str:
    return (SB / "log" / f"vps{n}-sshd.log").read_text(errors="replace")


def config_with(tmp_path: Path, **changes: object) -> dict[str, str]:
    """The sandbox's services.toml with `key = value` set — replaced where the key is, else added to every
    service table (service keys) or to [server] — as the environment of a run."""
    from publicworks.config import _SERVICE

    text = (ROOT / "sandbox" / "services.toml").read_text()
    for key, value in changes.items():
        line = f"{key} = {value}"
        if re.search(rf"(?m)^{key} = ", text):
            text = re.sub(rf"(?m)^{key} = .*$", lambda _, line=line: line, text)
        elif key in _SERVICE:
            text = re.sub(r"(?m)^(\[services\.[^]]+\])$", lambda m, line=line: f"{m.group(1)}\n{line}", text)
        else:
            text = text.replace("[server]\n", f"[server]\n{line}\n", 1)
    f = tmp_path / "services.toml"
    f.write_text(text)
    return pw_env(PUBLICWORKS_CONFIG=str(f))


def deploy(version: str, service: str = "civic-observer", *extra: str, **kw) -> Run:
    """`publicworks deploy` of `version` with no canary."""
    return pw("deploy", "--service", service, "--version", version, "--canary", "0", *extra, **kw)


def canary_deploy(
    version: str, seconds: int = 60, service: str = "civic-observer", env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A deploy with a canary, started in the background."""
    return pw_start("deploy", "--service", service, "--version", version, "--canary", str(seconds), env=env)


def wait_canary(vps: VPS, service: str = "civic-observer") -> dict:
    """The canary as the state records it, once it has started."""
    return poll(lambda: (vps.state(service) or {}).get("canary"), timeout=60, what="the canary to start")


def kill(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    p.send_signal(sig)
    p.wait(timeout=60)


# -- faults: what the tests do to the VPS from outside ------------------------------------------------------

HOST_IF = f"pw-h{HOST}"  # the runner's end of the veth pair to this VPS


def as_root(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command as root inside the VPS's namespaces (mounts, network)."""
    holder = (VPS_DIR / "holder.pid").read_text().strip()
    return subprocess.run(
        ["nsenter", "-t", holder, "-m", "-n", "--", *argv], capture_output=True, text=True, check=check, timeout=60
    )


def stop_daemon(name: str) -> None:
    """Stop one of this VPS's daemons (caddy, sshd); `start_daemons` brings it back."""
    pid = (VPS_DIR / f"{name}.pid").read_text().strip()
    subprocess.run(["kill", pid], check=False)
    poll(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, what=f"{name} to stop")


def start_daemons() -> None:
    """Start whatever of this VPS's daemons is not running."""
    subprocess.run(
        [str(ROOT / "sandbox" / "sandbox"), "revive", str(HOST)], check=True, capture_output=True, timeout=120
    )


@contextlib.contextmanager
def registry_refused() -> Iterator[None]:
    """The registry refuses this VPS's connections, as a stopped registry does (other VPSes unaffected)."""
    rule = ["OUTPUT", "-p", "tcp", "-d", "10.200.0.2", "--dport", "5000", "-j", "REJECT", "--reject-with", "tcp-reset"]
    as_root("iptables", "-I", *rule)
    try:
        yield
    finally:
        as_root("iptables", "-D", *rule, check=False)


def set_link(up: bool) -> None:
    subprocess.run(["ip", "link", "set", HOST_IF, "up" if up else "down"], check=True)


class Watched:
    """A background `publicworks` run whose output is read as it comes, line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.p = pw_start(*args, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        poll(
            lambda: any(text in line for line in self.lines) or self.p.poll() is not None,
            timeout=timeout,
            every=0.02,
            what=f"{text!r} in the output",
        )
        assert any(text in line for line in self.lines), "".join(self.lines)

    def finish(self, timeout: float = 180) -> Run:
        code = self.p.wait(timeout=timeout)
        self._reader.join(10)
        return Run(code, "".join(self.lines), "", 0.0)

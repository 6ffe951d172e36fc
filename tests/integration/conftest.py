"""The sandbox VPS, from the tests' side: run public-works as a user would, look at the VPS directly.

Every test here talks to the real thing: OpenSSH, Docker + Compose v2, the registry, Caddy. The `vps`
fixture wipes the VPS's containers, state and history first, so each test starts from a clean server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SB = Path(os.environ.get("PUBLICWORKS_SANDBOX_DIR", "/var/lib/publicworks-sandbox"))
SSH_CONFIG = SB / "client" / "ssh_config"
VPS_IP = "10.200.0.2"
SITES = {"civic-observer": "civic.observer", "corkboard-django": "django.civic.band", "corkboard-datasette": "civic.band"}

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
    p = subprocess.run([sys.executable, "-m", "publicworks", *args], capture_output=True, text=True,
                       env=env or pw_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def pw_start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "publicworks", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env or pw_env(), stdin=subprocess.DEVNULL)


class VPS:
    """Direct access to the sandbox VPS for assertions: its own ssh, not public-works' code."""

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> str:
        p = subprocess.run(["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", "sandbox-vps", script],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"on the VPS: {script!r} exited {p.returncode}: {p.stderr}")
        return p.stdout

    def containers(self, project: str | None = None) -> dict[str, dict]:
        """name -> {id, image, state, version} of every container (of one compose project)."""
        out = self.sh("docker ps -a --no-trunc --format '{{json .}}'")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        result = {}
        for r in rows:
            labels = dict(kv.split("=", 1) for kv in r["Labels"].split(",") if "=" in kv)
            if project and labels.get("com.docker.compose.project") != project:
                continue
            result[r["Names"]] = {"id": r["ID"], "image": r["Image"], "state": r["State"],
                                  "version": r["Image"].rpartition(":")[2]}
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
        self.sh("docker ps -aq | xargs -r docker rm -f >/dev/null; docker volume ls -q | xargs -r docker volume rm -f >/dev/null; "
                "rm -rf .publicworks deploy-history.log /tmp/civic-deploy.lock.holder "
                "civic-observer/.rollback-requested* corkboard/.rollback-requested*")


def caddy_get(service: str, cookies: httpx.Cookies | None = None, timeout: float = 10) -> httpx.Response:
    """What a user of the service gets, through the VPS's Caddy on its public address."""
    return httpx.get(f"http://{VPS_IP}/", headers={"Host": SITES[service]}, cookies=cookies, timeout=timeout,
                     trust_env=False)


def answer(service: str) -> str:
    try:
        r = caddy_get(service)
        return r.text.strip() if r.status_code == 200 else f"HTTP {r.status_code}"
    except httpx.HTTPError as e:
        return f"error {type(e).__name__}"


def sshd_accepted() -> int:
    """SSH logins the VPS's sshd has accepted so far (its log)."""
    return (SB / "log" / "sshd.log").read_text(errors="replace").count("Accepted publickey for deploy")


@pytest.fixture(scope="session")
def sandbox() -> VPS:
    vps = VPS()
    try:
        vps.sh("true", timeout=10)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"the sandbox VPS is not reachable ({e}); start it with ./dev up")
    return vps


@pytest.fixture
def vps(sandbox: VPS) -> VPS:
    sandbox.clean()
    return sandbox


def kill(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    p.send_signal(sig)
    p.wait(timeout=60)


@pytest.fixture
def server(monkeypatch):
    """The sandbox's ServerConfig, for tests that open their own public-works connection."""
    from publicworks import config

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return config.load().server

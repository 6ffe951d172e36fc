"""The ground is real: SSH with a pinned host key, Compose v2, loopback-only ports, the registry, Caddy."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid

import httpx
import pytest
from fabric import Config, Connection

from publicworks import config, remote
from publicworks.commands import Command
from tests.support.sandbox import ALIAS, ROOT, SB, SSH_CONFIG, VPS_IP, pw, pw_env


def test_ssh_as_deploy_in_the_docker_group_with_the_pinned_key(sandbox, server):
    r = remote.connect(server)
    try:
        assert r.run(Command(("id", "-un"))).stdout.strip() == "deploy"
        assert "docker" in r.run(Command(("id", "-Gn"))).stdout.split()
        # Key-only: the account has no password to offer.
        assert r.run(Command(("sh", "-c", "getent passwd deploy | cut -d: -f1"))).stdout.strip() == "deploy"
    finally:
        r.close()


def _sshconfig_with(tmp_path, known_hosts_text: str):
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_text)
    cfg = tmp_path / "ssh_config"
    cfg.write_text(SSH_CONFIG.read_text().replace(str(SB / "client" / "known_hosts"), str(kh)))
    return cfg


def dry_run_with(ssh_config):
    """A dry-run deploy (it connects, changes nothing) through another ssh config."""
    return pw(
        "deploy",
        "--service",
        "civic-observer",
        "--version",
        "a1c0ffe",
        "--dry-run",
        env=pw_env(PUBLICWORKS_SSH_CONFIG=str(ssh_config)),
    )


def test_a_changed_host_key_is_refused(sandbox, tmp_path):
    fake = tmp_path / "fake"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fake)], check=True)
    cfg = _sshconfig_with(tmp_path, f"{VPS_IP} {' '.join(fake.with_suffix('.pub').read_text().split()[:2])}\n")
    r = dry_run_with(cfg)
    assert r.code == 2, r.text
    assert f"REFUSED: the host key of {VPS_IP} changed (got ssh-ed25519 SHA256:" in r.err
    # OpenSSH agrees: the pinned key is what both clients check.
    p = subprocess.run(["ssh", "-F", str(cfg), "-o", "BatchMode=yes", ALIAS, "true"], capture_output=True, text=True)
    assert p.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in p.stderr


def test_an_unknown_host_key_is_refused_not_added(sandbox, tmp_path):
    cfg = _sshconfig_with(tmp_path, "")
    r = dry_run_with(cfg)
    assert r.code == 2 and "is not in" in r.err and "never trusts an unknown host key" in r.err
    assert (tmp_path / "known_hosts").read_text() == ""


def test_docker_compose_is_v2_over_ssh(sandbox):
    assert sandbox.sh("docker compose version --short").startswith("2.")


def test_a_port_on_the_vps_loopback_is_reachable_only_through_the_tunnel(vps):
    vps.sh("docker run -d --name loopback-probe -p 127.0.0.1:18080:8000 10.200.0.2:5000/civic-observer:a1c0ffe")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{VPS_IP}:18080/", timeout=3, trust_env=False)
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:18080/", timeout=3, trust_env=False)
    conn = Connection(ALIAS, config=Config(runtime_ssh_path=str(SSH_CONFIG)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    try:
        with conn.forward_local(local, remote_port=18080, remote_host="127.0.0.1", local_host="127.0.0.1"):

            def ok():
                try:
                    return httpx.get(f"http://127.0.0.1:{local}/health/", timeout=3, trust_env=False).status_code == 200
                except httpx.HTTPError:
                    return False

            deadline = time.monotonic() + 15
            while not ok():
                assert time.monotonic() < deadline, "no answer through the Fabric tunnel"
                time.sleep(0.2)
    finally:
        conn.close()


def test_registry_push_from_the_runner_then_pull_on_the_vps(vps, tmp_path):
    tag = f"t{uuid.uuid4().hex[:10]}"
    ctx = tmp_path / "ctx"
    shutil.copytree(ROOT / "sandbox" / "app" / "rootfs", ctx / "rootfs", symlinks=True)
    shutil.copy(ROOT / "sandbox" / "app" / "Dockerfile", ctx)
    shutil.copy("/bin/busybox", ctx / "busybox")
    subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"VERSION={tag}", "-t", f"pushtest:{tag}", str(ctx)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(ROOT / "sandbox" / "sandbox"), "push", f"pushtest:{tag}", f"civic-observer:{tag}"],
        check=True,
        capture_output=True,
    )
    assert tag not in vps.sh("docker images --format '{{.Tag}}'")
    vps.sh(f"docker pull -q 10.200.0.2:5000/civic-observer:{tag}")
    env = json.loads(
        vps.sh(f"docker image inspect 10.200.0.2:5000/civic-observer:{tag} --format '{{{{json .Config.Env}}}}'")
    )
    assert f"APP_VERSION={tag}" in env
    vps.sh(f"docker rmi -f 10.200.0.2:5000/civic-observer:{tag} >/dev/null")


def _upstream_sets(node) -> list[set[str]]:
    """The dial addresses of every reverse_proxy handler in Caddy's JSON config."""
    found = []
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            found.append({u.get("dial", "") for u in node.get("upstreams", [])})
        for v in node.values():
            found += _upstream_sets(v)
    elif isinstance(node, list):
        for v in node:
            found += _upstream_sets(v)
    return found


def test_caddy_admin_api_lists_both_colors_of_every_service(sandbox, server):
    r = remote.connect(server)
    try:
        with r.http() as client:
            cfg = client.get("http://localhost:2019/config/").json()
    finally:
        r.close()
    ports = {frozenset(d.rpartition(":")[2] for d in s) for s in _upstream_sets(cfg)}
    services = config.load(ROOT / "sandbox" / "services.toml").services.values()
    for svc in services:
        assert frozenset(str(p) for p in svc.ports.values()) in ports, svc.name

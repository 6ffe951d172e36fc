"""Opening the run's one SSH connection: ssh_config, agent and keys as Fabric does; host keys pinned.

Where to connect is decided once, in `target`: services.toml, overridden by a matching `Host` block of
the ssh config (~/.ssh/config, or PUBLICWORKS_SSH_CONFIG), overridden by PUBLICWORKS_HOST/_USER/_PORT.
Unlike Fabric's default (AutoAddPolicy), an unknown host key is refused: the key must be pinned in
known_hosts (UserKnownHostsFile, else ~/.ssh/known_hosts), and a changed key is always refused. Every
wait is bounded by server.ssh_timeout: the TCP connect, the SSH banner, the login.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config as FabricConfig
from fabric import Connection

from ._schema import ConfigError
from .config import ServerConfig, check_host
from .errors import BAD_INPUT, PublicWorksError
from .hosts import HostConnection

SSH_CONFIG_ENV = "PUBLICWORKS_SSH_CONFIG"


@dataclass(frozen=True)
class Target:
    host: str  # as named (an ssh config alias or an address)
    user: str
    port: int
    known_hosts: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def target(server: ServerConfig, env: Mapping[str, str], entry: Mapping[str, Any]) -> Target:
    """Where to connect: services.toml < the ssh config's Host block < PUBLICWORKS_HOST/_USER/_PORT (the
    environment overrides the [server] host only, never a named one of [hosts])."""
    if server.name:
        env = {}
    host = env.get("PUBLICWORKS_HOST") or server.host
    if env.get("PUBLICWORKS_HOST"):
        check_host(host, "PUBLICWORKS_HOST")
    user = env.get("PUBLICWORKS_USER") or entry.get("user") or server.user
    port_text = env.get("PUBLICWORKS_PORT") or entry.get("port") or server.port
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"PUBLICWORKS_PORT: expected an integer, got {port_text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"PUBLICWORKS_PORT: {port} is not a TCP port")
    known = tuple(str(Path(p).expanduser()) for p in str(entry.get("userknownhostsfile", "~/.ssh/known_hosts")).split())
    return Target(host, str(user), port, known)


def _fabric_config() -> FabricConfig:
    path = os.environ.get(SSH_CONFIG_ENV)
    if path and not Path(path).is_file():
        raise PublicWorksError(f"{SSH_CONFIG_ENV}={path}: no such file", BAD_INPUT)
    # With PUBLICWORKS_SSH_CONFIG that file replaces ~/.ssh/config and /etc/ssh/ssh_config, so the
    # sandbox and CI never pick up a maintainer's personal config.
    return FabricConfig(runtime_ssh_path=path or None)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form, as `ssh-keygen -lf` prints it: SHA256:base64, unpadded."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def open_connection(server: ServerConfig) -> tuple[Connection, Target]:
    """Connect, turning every SSH failure into one line that says what to do."""
    fab = _fabric_config()
    named = server.host if server.name else os.environ.get("PUBLICWORKS_HOST") or server.host
    resolved = target(server, os.environ, fab.base_ssh_config.lookup(named))
    t = server.ssh_timeout
    conn = HostConnection(
        resolved.host,
        user=resolved.user,
        port=resolved.port,
        config=fab,
        connect_timeout=t,
        connect_kwargs={"banner_timeout": t, "auth_timeout": t, "channel_timeout": t},
    )
    client = conn.client
    for path in resolved.known_hosts:
        if Path(path).is_file():
            client.load_host_keys(path)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    files = " or ".join(resolved.known_hosts) or "~/.ssh/known_hosts"
    try:
        conn.open()
    except paramiko.BadHostKeyException as e:
        raise PublicWorksError(
            f"REFUSED: the host key of {resolved.host} changed (got {e.key.get_name()} {fingerprint(e.key)}); "
            f"it does not match {files}. If the server was really re-installed, verify the new key out of "
            f"band (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server) and replace the line in {files}.",
            BAD_INPUT,
        ) from None
    except paramiko.SSHException as e:
        text = str(e)
        transport = conn.client.get_transport()
        if transport is not None and not transport.remote_version:
            text = "banner"  # paramiko reports a silent peer as a missing session: name it
        if "not found in known_hosts" in text:
            raise PublicWorksError(
                f"REFUSED: {resolved.host} is not in {files}; public-works never trusts an unknown host key. "
                "Add it after checking its fingerprint: "
                f"ssh-keyscan -p {resolved.port} {resolved.host} >> ~/.ssh/known_hosts",
                BAD_INPUT,
            ) from None
        if "banner" in text.lower():
            raise PublicWorksError(
                f"no SSH banner from {resolved} within {t:g}s: something listens there, but it is not an SSH "
                "server that answers. Check the host and port (PUBLICWORKS_HOST, PUBLICWORKS_PORT, services.toml)."
            ) from None
        raise PublicWorksError(f"SSH to {resolved} failed: {e}") from None
    except (TimeoutError, OSError, EOFError) as e:
        raise PublicWorksError(
            f"cannot reach {resolved}: {e}. Check the host, the network, and PUBLICWORKS_HOST."
        ) from None
    transport = conn.client.get_transport()
    if transport is not None:
        transport.set_keepalive(10)  # notice a dead connection, and keep NAT paths open
    return conn, resolved

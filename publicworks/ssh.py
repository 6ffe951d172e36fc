"""Opening the run's one SSH connection: ssh_config, agent and keys as Fabric does; host keys pinned.

Host/user/port come from services.toml, overridden by a matching `Host` block of the ssh config
(~/.ssh/config, or PUBLICWORKS_SSH_CONFIG), overridden by PUBLICWORKS_HOST/_USER/_PORT. Unlike
Fabric's default (AutoAddPolicy), an unknown host key is refused: the key must be pinned in
known_hosts (UserKnownHostsFile, else ~/.ssh/known_hosts), and a changed key is always refused.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import paramiko
from fabric import Config as FabricConfig
from fabric import Connection

from .config import ServerConfig
from .errors import BAD_INPUT, PublicWorksError

SSH_CONFIG_ENV = "PUBLICWORKS_SSH_CONFIG"


def _ssh_config_path() -> str | None:
    path = os.environ.get(SSH_CONFIG_ENV)
    if path:
        if not Path(path).is_file():
            raise PublicWorksError(f"{SSH_CONFIG_ENV}={path}: no such file", BAD_INPUT)
        return path
    return None  # Fabric's own default: ~/.ssh/config and /etc/ssh/ssh_config


def connection(server: ServerConfig) -> Connection:
    """A Fabric Connection to the server, not yet open; see `open_connection`."""
    ssh_path = _ssh_config_path()
    # With PUBLICWORKS_SSH_CONFIG that file replaces ~/.ssh/config and /etc/ssh/ssh_config, so the
    # sandbox and CI never pick up a maintainer's personal config.
    fab = FabricConfig(runtime_ssh_path=ssh_path)
    entry = fab.base_ssh_config.lookup(server.host)
    user = os.environ.get("PUBLICWORKS_USER") or entry.get("user") or server.user
    port = int(os.environ.get("PUBLICWORKS_PORT") or entry.get("port") or server.port)
    conn = Connection(server.host, user=user, port=port, config=fab, connect_timeout=15)
    client = conn.client
    known = entry.get("userknownhostsfile", "~/.ssh/known_hosts").split()
    for path in known:
        p = Path(path).expanduser()
        if p.is_file():
            client.load_host_keys(str(p))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.known_hosts_files = [str(Path(p).expanduser()) for p in known]  # type: ignore[attr-defined]
    return conn


def open_connection(server: ServerConfig) -> Connection:
    """Connect, turning every SSH failure into one line that says what to do."""
    conn = connection(server)
    target = f"{conn.user}@{conn.host}:{conn.port}"
    files = " or ".join(conn.known_hosts_files) or "~/.ssh/known_hosts"  # type: ignore[attr-defined]
    try:
        conn.open()
    except paramiko.BadHostKeyException as e:
        raise PublicWorksError(
            f"REFUSED: the host key of {conn.host} changed (got {e.key.get_name()} "
            f"{e.key.get_fingerprint().hex()}); it does not match {files}. If the server was really "
            f"re-installed, verify the new key out of band and replace the line in {files}.",
            BAD_INPUT,
        ) from None
    except paramiko.SSHException as e:
        if "not found in known_hosts" in str(e):
            raise PublicWorksError(
                f"REFUSED: {conn.host} is not in {files}; public-works never trusts an unknown host key. "
                f"Add it after checking its fingerprint: ssh-keyscan -p {conn.port} {conn.host} >> ~/.ssh/known_hosts",
                BAD_INPUT,
            ) from None
        raise PublicWorksError(f"SSH to {target} failed: {e}") from None
    except (OSError, socket.timeout, EOFError) as e:
        raise PublicWorksError(f"cannot reach {target}: {e}. Check the host, the network, and PUBLICWORKS_HOST.") from None
    client_transport = conn.client.get_transport()
    if client_transport is not None:
        client_transport.set_keepalive(10)  # notice a dead connection, and keep NAT paths open
    return conn

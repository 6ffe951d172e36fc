"""No wait is unbounded: a server that stalls the SSH banner, the channel open or the exec request gets a
clear error within server.ssh_timeout — never a CI job hanging until GitHub kills it.

The stalling servers are paramiko's server side on 127.0.0.1, in this process.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest

from publicworks import commands as cmd
from publicworks import lock
from publicworks.config import parse
from publicworks.errors import PublicWorksError
from publicworks.remote import connect

HOST_KEY = paramiko.RSAKey.generate(1024)
CLIENT_KEY = paramiko.RSAKey.generate(1024)


class Stalling(paramiko.ServerInterface):
    def __init__(self, stall: str, release: threading.Event) -> None:
        self.stall = stall
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if self.stall == "open":
            self.release.wait(30)
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        if self.stall == "exec":
            self.release.wait(30)
        return True


def serve(stall: str) -> tuple[int, threading.Event]:
    """A one-connection SSH server on 127.0.0.1 that logs in anyone, then stalls at `stall`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    release = threading.Event()

    def run() -> None:
        conn, _ = listener.accept()
        if stall == "banner":
            release.wait(30)
            conn.close()
            return
        t = paramiko.Transport(conn)
        t.add_server_key(HOST_KEY)
        t.start_server(server=Stalling(stall, release))
        release.wait(30)
        t.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], release


@pytest.fixture
def client(tmp_path: Path, monkeypatch):
    key = tmp_path / "id"
    CLIENT_KEY.write_private_key_file(str(key))

    def server_config(port: int):
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {HOST_KEY.get_name()} {HOST_KEY.get_base64()}\n")
        ssh_config = tmp_path / "ssh_config"
        ssh_config.write_text(
            f"Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
        )
        monkeypatch.setenv("PUBLICWORKS_SSH_CONFIG", str(ssh_config))
        for var in ("PUBLICWORKS_HOST", "PUBLICWORKS_PORT", "PUBLICWORKS_USER", "SSH_AUTH_SOCK"):
            monkeypatch.delenv(var, raising=False)
        text = (
            f'[server]\nhost = "127.0.0.1"\nport = {port}\nssh_timeout = 1\n'
            '[services.w]\ndir = "/w"\nproject = "w"\ncompose_files = ["c.yml"]\nunits = ["w-{color}"]\n'
            "ports = { blue = 1, green = 2 }\n"
        )
        return parse(text).server

    return server_config


def timed(fn) -> tuple[float, str]:
    t0 = time.monotonic()
    with pytest.raises(PublicWorksError) as e:
        fn()
    return time.monotonic() - t0, e.value.message


def test_a_listener_that_never_speaks_ssh_is_named_as_such(client):
    port, release = serve("banner")
    try:
        took, message = timed(lambda: connect(client(port)))
    finally:
        release.set()
    assert took < 5
    assert message.startswith(f"no SSH banner from deploy@127.0.0.1:{port} within 1s")


@pytest.mark.parametrize("stall", ["open", "exec"])
def test_a_server_that_stalls_a_command_fails_it_within_the_timeout(client, stall):
    port, release = serve(stall)
    remote = connect(client(port))
    try:
        took, message = timed(lambda: remote.run(cmd.ps()))
    finally:
        release.set()
        remote.close()
    assert took < 5
    assert (
        "did not open an SSH channel within 1s" if stall == "open" else "did not start the command within 1s"
    ) in message


def test_taking_the_lock_on_a_stalling_server_fails_within_the_timeout(client):
    port, release = serve("exec")
    remote = connect(client(port))
    try:
        took, message = timed(lambda: lock.Lock(remote, "/l", lock.me("deploy", "w", "v", "t")).acquire())
    finally:
        release.set()
        remote.close()
    assert took < 5 and "did not start the command within 1s" in message

"""HTTP to the server's loopback through the run's SSH connection: httpx over direct-tcpip channels.

Each HTTP connection is one SSH "direct-tcpip" channel on the already-open transport — the mechanism
behind `ssh -L` and Fabric's `forward_local`, without a local listening port. Fabric's forward_local
is not used because its TunnelManager thread dies on the first refused channel (a health check that
starts before the app listens, which is every health check): later requests then hang until timeout
even once the app is up. Here a refused channel is an ordinary `httpx.ConnectError`, every time.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpcore
import httpx
import paramiko


class _ChannelStream(httpcore.NetworkStream):
    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._channel.settimeout(timeout)
        try:
            return self._channel.recv(max_bytes)
        except socket.timeout as e:
            raise httpcore.ReadTimeout(str(e) or "read timed out") from e

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._channel.settimeout(timeout)
        try:
            self._channel.sendall(buffer)
        except socket.timeout as e:
            raise httpcore.WriteTimeout(str(e) or "write timed out") from e
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    def close(self) -> None:
        self._channel.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("TLS through the tunnel is not supported: the server side is plain HTTP on loopback")

    def get_extra_info(self, info: str) -> Any:
        # httpcore asks before reusing a kept-alive connection: readable while idle means the server
        # closed it (or sent garbage), so it must not be reused.
        if info == "is_readable":
            c = self._channel
            return c.closed or c.eof_received or c.recv_ready()
        return None


class _ChannelBackend(httpcore.NetworkBackend):
    def __init__(self, transport: paramiko.Transport) -> None:
        self._transport = transport

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            channel = self._transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as e:
            raise httpcore.ConnectError(f"{host}:{port} on the server refused the connection ({e.text})") from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise httpcore.ConnectError(f"SSH channel to {host}:{port} failed: {e}") from e
        return _ChannelStream(channel)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _ChannelTransport(httpx.HTTPTransport):
    def __init__(self, transport: paramiko.Transport) -> None:
        super().__init__(retries=0)
        # httpx has no public hook for the network backend; its pool takes one.
        self._pool = httpcore.ConnectionPool(network_backend=_ChannelBackend(transport), retries=0)


def client(transport: paramiko.Transport, timeout: float = 5.0) -> httpx.Client:
    """An httpx client whose requests to http://127.0.0.1:PORT/ reach PORT on the server's loopback."""
    # trust_env=False: a runner's HTTP(S)_PROXY must never capture requests meant for the tunnel.
    return httpx.Client(transport=_ChannelTransport(transport), timeout=timeout, trust_env=False)

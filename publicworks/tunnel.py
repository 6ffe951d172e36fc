"""HTTP to the server's loopback through the run's SSH connection: httpx over direct-tcpip channels.

Each HTTP connection is one SSH "direct-tcpip" channel on the already-open transport — the mechanism
behind `ssh -L` and Fabric's `forward_local`, without a local listening port. Fabric's forward_local
is not used because its TunnelManager thread dies on the first refused channel (a health check that
starts before the app listens, which is every health check): later requests then hang until timeout
even once the app is up. Here a refused channel is an ordinary `httpx.ConnectError`, every time.

Built on public API only: an `httpx.BaseTransport` around an `httpcore.ConnectionPool` whose network
backend opens SSH channels. HTTPS (asking Caddy's TLS site where it routes) runs TLS over the channel.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import paramiko

# httpcore's exceptions, as httpx's own transport maps them (most specific first).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as e:
        for theirs, ours in _ERRORS:
            if isinstance(e, theirs):
                raise ours(str(e) or type(e).__name__) from e
        raise


class _ChannelStream(httpcore.NetworkStream):
    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._channel.settimeout(timeout)
        try:
            return bytes(self._channel.recv(max_bytes))
        except TimeoutError as e:
            raise httpcore.ReadTimeout(str(e) or "read timed out") from e
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise httpcore.ReadError(str(e) or type(e).__name__) from e

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._channel.settimeout(timeout)
        try:
            self._channel.sendall(buffer)
        except TimeoutError as e:
            raise httpcore.WriteTimeout(str(e) or "write timed out") from e
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise httpcore.WriteError(str(e) or type(e).__name__) from e

    def close(self) -> None:
        self._channel.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _TLSStream(self, ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        # httpcore asks before reusing a kept-alive connection: readable while idle means the server
        # closed it (or sent garbage), so it must not be reused.
        if info == "is_readable":
            c = self._channel
            return c.closed or c.eof_received or c.recv_ready()
        return None


class _TLSStream(httpcore.NetworkStream):
    """TLS over a channel: the SSL object works on memory buffers, the channel carries the bytes (a channel
    is not a socket, so ssl.wrap_socket cannot be used)."""

    def __init__(
        self, raw: _ChannelStream, ctx: ssl.SSLContext, server_hostname: str | None, timeout: float | None
    ) -> None:
        self._raw = raw
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = ctx.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        try:
            self._retry(self._ssl.do_handshake, timeout)
        except ssl.SSLError as e:
            raise httpcore.ConnectError(f"TLS handshake failed: {e}") from e

    def _retry(self, op: Any, timeout: float | None, *args: Any) -> Any:
        while True:
            try:
                result = op(*args)
            except ssl.SSLWantReadError:
                self._flush(timeout)
                data = self._raw.read(65536, timeout)
                if data:
                    self._in.write(data)
                else:
                    self._in.write_eof()
                continue
            self._flush(timeout)
            return result

    def _flush(self, timeout: float | None) -> None:
        pending = self._out.read()
        if pending:
            self._raw.write(pending, timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return bytes(self._retry(self._ssl.read, timeout, max_bytes))
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLError as e:
            raise httpcore.ReadError(str(e)) from e

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        try:
            while view:
                view = view[self._retry(self._ssl.write, timeout, view) :]
        except ssl.SSLError as e:
            raise httpcore.WriteError(str(e)) from e

    def close(self) -> None:
        self._raw.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("TLS inside TLS is not needed here")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._ssl
        return self._raw.get_extra_info(info)


class _ChannelBackend(httpcore.NetworkBackend):
    def __init__(self, transport: paramiko.Transport) -> None:
        self._transport = transport

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            channel = self._transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as e:
            raise httpcore.ConnectError(f"{host}:{port} on the server refused the connection ({e.text})") from e
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise httpcore.ConnectError(f"SSH channel to {host}:{port} failed: {e}") from e
        return _ChannelStream(channel)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class ChannelTransport(httpx.BaseTransport):
    """httpx transport whose connections are direct-tcpip channels of one SSH transport."""

    def __init__(self, transport: paramiko.Transport, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = httpcore.ConnectionPool(
            network_backend=_ChannelBackend(transport), retries=0, ssl_context=ssl_context
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        )
        req = httpcore.Request(
            method=request.method,
            url=url,
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            resp = self._pool.handle_request(req)
        return httpx.Response(
            status_code=resp.status, headers=resp.headers, stream=_Body(resp.stream), extensions=resp.extensions
        )

    def close(self) -> None:
        self._pool.close()


def client(transport: paramiko.Transport, timeout: float = 5.0, verify: bool = True) -> httpx.Client:
    """An httpx client whose requests to http://127.0.0.1:PORT/ reach PORT on the server's loopback.
    verify=False: TLS without checking the certificate — for the server's own loopback, which the SSH
    connection already authenticates (Caddy's site certificate is for its public name)."""
    ctx = None
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    # trust_env=False: a runner's HTTP(S)_PROXY must never capture requests meant for the tunnel.
    return httpx.Client(transport=ChannelTransport(transport, ctx), timeout=timeout, trust_env=False)

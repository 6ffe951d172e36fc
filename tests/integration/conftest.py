"""Fixtures for the tests against the sandbox VPS: real OpenSSH, Docker + Compose v2, registry, Caddy.

The `vps` fixture wipes the VPS's containers, state and history first, so each test starts from a
clean server. Helpers live in tests/support/sandbox.py.
"""

from __future__ import annotations

import pytest

from tests.support.sandbox import ENV, VPS


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.sandbox)


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


@pytest.fixture
def server(monkeypatch):
    """The sandbox's ServerConfig, for tests that open their own public-works connection."""
    from publicworks import config

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return config.load().server


@pytest.fixture
def admin(server):
    """HTTP to Caddy's admin API on the VPS; Caddy's running config is put back as it was afterwards."""
    from publicworks import remote

    r = remote.connect(server)
    client = r.http()
    original = client.get("http://localhost:2019/config/").json()
    yield client
    client.post("http://localhost:2019/load", json=original)
    client.close()
    r.close()

"""The switch sequence under load that the zero-failure test asserts and bench/ measures.

Steady traffic through the sandbox's Caddy (half the clients keep Caddy's cookie) while public-works
deploys a new version (canary 0), deploys with a canary and is rolled back during it, deploys again,
and rolls back after that completed deploy.
"""

from __future__ import annotations

import time

import httpx

from tests.support.load import Load, Report
from tests.support.sandbox import SITES, VPS, VPS_IP, poll, pw, pw_start

SERVICE = "civic-observer"


def _deploy(version: str, canary: int = 0) -> None:
    r = pw("deploy", "--service", SERVICE, "--version", version, "--canary", str(canary))
    assert r.code == 0, r.text


def switches_under_load(vps: VPS, rate: float = 250, total: int = 12_000) -> Report:
    vps.clean()
    _deploy("a1c0ffe")
    poll(
        lambda: (
            httpx.get(f"http://{VPS_IP}/", headers={"Host": SITES[SERVICE]}, timeout=5, trust_env=False).status_code
            == 200
        ),
        what="Caddy to serve blue",
    )
    with Load(f"http://{VPS_IP}/", SITES[SERVICE], clients=10, cookie_clients=5, rate=rate) as load:
        time.sleep(4)
        load.mark("deploy")
        _deploy("b2beef0")  # cookie clients were all pinned to blue
        time.sleep(4)
        load.mark("canary rollback")
        p = pw_start("deploy", "--service", SERVICE, "--version", "c3d00d0", "--canary", "60")
        poll(lambda: (vps.state(SERVICE) or {}).get("canary"), timeout=30, what="the canary")
        time.sleep(5)  # both serve; new users land on blue too
        assert pw("rollback", "--service", SERVICE).code == 0  # stops blue during its canary
        assert p.wait(timeout=60) == 1
        time.sleep(4)
        load.mark("deploy again")
        _deploy("c3d00d0")
        time.sleep(4)
        load.mark("rollback")
        assert pw("rollback", "--service", SERVICE).code == 0  # after a completed deploy
        poll(lambda: len(load.samples) >= total, timeout=120, what=f"{total} requests")
        load.mark("end")
    return load.report()


def windows(report: Report) -> dict[str, list]:
    """Each switch from its start to the next one's: its aftermath (Caddy catching up) included."""
    marks = report.marks
    return {
        label: [s for s in report.samples if start <= s.t < end]
        for (start, label), (end, _) in zip(marks, marks[1:], strict=False)
    }

"""Caddy: the rendered config is what runs and deploys never change it; `inv doctor`; in-flight requests
finish; zero failed requests under load through deploys, a canary rollback and a rollback — cookie-pinned
users included."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

import httpx
import pytest

from publicworks import caddy, config, remote
from tests.support import scenario
from tests.support.sandbox import ROOT, SITES, VPS_IP, config_with, deploy, poll, pw

CO = "civic-observer"
DJ = "corkboard-django"
ADMIN = "http://localhost:2019"


@pytest.fixture
def admin(server):
    """HTTP to Caddy's admin API on the VPS; Caddy's running config is put back as it was afterwards."""
    r = remote.connect(server)
    client = r.http()
    original = client.get(f"{ADMIN}/config/").json()
    yield client
    client.post(f"{ADMIN}/load", json=original)
    client.close()
    r.close()


def running_handler(admin, service: str) -> dict:
    svc = config.load(ROOT / "sandbox" / "services.toml").services[service]
    both, _ = caddy.service_handlers(admin.get(f"{ADMIN}/config/").json(), svc)
    assert len(both) == 1
    return admin.get(f"{ADMIN}{both[0].url}").json()


def test_the_sandbox_caddy_runs_what_inv_caddy_prints(sandbox, admin, tmp_path):
    rendered = pw("caddy")
    assert rendered.code == 0
    f = tmp_path / "Caddyfile"
    f.write_text(
        "{\n\tadmin off\n\tauto_https off\n}\n"
        + rendered.out
        + "\nhttp://civic.observer {\n\timport civic-observer\n}\n"
    )
    adapted = json.loads(
        subprocess.run(
            ["caddy", "adapt", "--config", str(f), "--adapter", "caddyfile"], capture_output=True, text=True, check=True
        ).stdout
    )
    expected = caddy.handlers(adapted)[0]
    running = running_handler(admin, CO)
    assert running["load_balancing"] == {
        "selection_policy": {"policy": "cookie"},
        "try_duration": 5000000000,
        "try_interval": 250000000,
    }
    assert running["health_checks"]["active"] == {"interval": 2000000000, "timeout": 2000000000, "uri": "/health/"}
    assert [{"dial": d} for d in expected.dials] == running["upstreams"]


def test_doctor_all_good(sandbox):
    r = pw("doctor")
    assert r.code == 0, r.text
    assert r.out.splitlines()[-1] == "all good: a deploy has what it needs"
    data = json.loads(pw("doctor", "--json").out)
    assert data["ok"] and {c["name"] for c in data["checks"]} >= {
        "docker",
        "docker compose v2",
        "caddy admin API",
        "civic-observer: caddy routes both colors",
        "civic-observer: registry",
        "lock",
        "history and state writable",
    }


def test_doctor_names_the_designs_problem_1(sandbox, admin):
    h = caddy.service_handlers(
        admin.get(f"{ADMIN}/config/").json(), config.load(ROOT / "sandbox" / "services.toml").services[DJ]
    )[0][0]
    admin.patch(f"{ADMIN}{h.url}/upstreams", json=[{"dial": "localhost:8000"}])  # a template listing one color
    r = pw("doctor", "--service", DJ)
    assert r.code == 1
    assert (
        "BAD  corkboard-django: caddy routes both colors: a reverse_proxy lists only port(s) 8000: "
        "the design's problem #1"
    ) in r.out
    assert "no reverse_proxy in Caddy's running config lists 127.0.0.1:8001 (green)" in r.out
    assert "what to do: in civic-band's Caddyfile template, use `publicworks caddy --service corkboard-django`" in r.out
    assert "reverse_proxy 127.0.0.1:8000 127.0.0.1:8001 {" in r.out


def test_doctor_says_what_to_do_about_missing_files_and_an_unreachable_caddy(vps, tmp_path):
    vps.sh("mv corkboard/docker-compose.yml corkboard/docker-compose.yml.away")
    try:
        r = pw("doctor", "--json", env=config_with(tmp_path, caddy_admin='"localhost:2999"'))
    finally:
        vps.sh("mv corkboard/docker-compose.yml.away corkboard/docker-compose.yml")
    assert r.code == 1
    bad = {c["name"]: c for c in json.loads(r.out)["checks"] if not c["ok"]}
    assert bad["corkboard-django: compose files"]["detail"] == "missing: /home/deploy/corkboard/docker-compose.yml"
    assert "put the service's compose files in /home/deploy/corkboard" in bad["corkboard-django: compose files"]["fix"]
    assert "localhost:2999" in bad["caddy admin API"]["detail"] and "admin" in bad["caddy admin API"]["fix"]
    assert "civic-observer: compose files" not in bad


def test_deploys_and_rollbacks_never_change_caddys_running_config(vps, admin):
    before = admin.get(f"{ADMIN}/config/").json()
    assert deploy("a1c0ffe").code == 0
    assert deploy("b2beef0").code == 0
    assert pw("rollback", "--service", CO).code == 0
    assert admin.get(f"{ADMIN}/config/").json() == before


def test_in_flight_requests_finish_before_their_color_stops(vps, tmp_path):
    env = config_with(tmp_path, stop_grace=40)  # longer than the request: it must finish, not be killed
    assert deploy("a1c0ffe", env=env).code == 0
    poll(
        lambda: httpx.get(f"http://{VPS_IP}/", headers={"Host": SITES[CO]}, timeout=5).status_code == 200,
        what="Caddy to serve blue",
    )
    result: dict = {}

    def slow():
        r = httpx.get(f"http://{VPS_IP}/cgi-bin/slow?25", headers={"Host": SITES[CO]}, timeout=60)
        result["answer"] = (r.status_code, r.text.strip())

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)  # the request is in flight on blue
    r = deploy("b2beef0", env=env)
    t.join()
    assert r.code == 0, r.text
    assert result["answer"] == (200, "slow request done after 25s by version=a1c0ffe color=blue")
    stop = float(re.search(r"\[9/10\] stop.*?done in ([\d.]+)s", r.out, re.S).group(1))
    assert stop > 0.5  # blue's graceful stop waited for the request in flight


def test_zero_failed_requests_through_deploys_a_canary_rollback_and_a_rollback(vps):
    """Steady traffic, half the clients keeping Caddy's cookie: every response counted."""
    rep = scenario.switches_under_load(vps)
    print("\nzero-failure load test:", rep.describe())
    for name, w in scenario.windows(rep).items():
        print(f"  during the {name} switch: {rep.describe(w)}")
    versions = {s.body.split(" color=")[0] for s in rep.samples if s.ok}
    assert versions == {f"service=civic-observer version={v}" for v in ("a1c0ffe", "b2beef0", "c3d00d0")}
    assert len(rep.samples) >= 10_000
    assert rep.failures == [], rep.describe()

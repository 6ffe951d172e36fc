"""The runbook "Moving to public-works" (README), run step by step on today's civic.band, under load.

Today's VPS: civic-observer as one `web` on 127.0.0.1:8888 with its worker, postgres and redis in one
compose file; corkboard's django and datasette in blue/green, both colors left running by the old
restart script; a Caddyfile that hard-codes 8888 and health-checks nothing; no state, no history. Load
runs through Caddy on civic.observer and django.civic.band from the first command to the last.
"""

from __future__ import annotations

import time

from tests.support.load import Load
from tests.support.sandbox import ROOT, SITES, VPS_IP, answer, deploy, poll, pw

CO = "civic-observer"
LEGACY = ROOT / "sandbox" / "legacy"
AFTER = ROOT / "sandbox" / "vps"
GLOBAL = "{\n\tadmin localhost:2019\n\tauto_https off\n}\n"


def load_caddyfile(admin, text: str) -> None:
    r = admin.post("http://localhost:2019/load", content=text, headers={"Content-Type": "text/caddyfile"})
    assert r.status_code == 200, r.text


def todays_vps(vps, admin) -> None:
    vps.sh("rm -f civic-observer/*.yml")
    vps.put(
        "civic-observer/docker-compose.production-base.yml",
        (LEGACY / "civic-observer" / "docker-compose.production-base.yml").read_text(),
    )
    vps.sh(
        "cd civic-observer && IMAGE_TAG=a1c0ffe docker compose -p civic-observer "
        "-f docker-compose.production-base.yml up -d --quiet-pull 2>/dev/null"
    )
    vps.sh(
        "cd corkboard && IMAGE_TAG=a1c0ffe DATASETTE_TAG=a1c0ffe docker compose -p corkboard up -d "
        "django-blue django-green datasette-blue datasette-green 2>/dev/null"
    )
    load_caddyfile(admin, (LEGACY / "Caddyfile").read_text())
    poll(lambda: answer(CO).startswith("service=civic-observer version=a1c0ffe color=legacy"), what="today's site")
    for _ in range(20):  # both of today's django colors answer (no health checks would hide one that does not)
        poll(lambda: answer("corkboard-django").startswith("service=corkboard-django"), what="today's django")


def restore_compose_files(vps) -> None:
    vps.sh("rm -f civic-observer/*.yml")
    for f in (AFTER / "civic-observer").iterdir():
        vps.put(f"civic-observer/{f.name}", f.read_text())


def test_the_runbook_moves_civic_band_over_without_a_failed_request(vps, admin):
    todays_vps(vps, admin)
    try:
        with (
            Load(f"http://{VPS_IP}/", SITES[CO], clients=4, cookie_clients=2, rate=60) as co_load,
            Load(f"http://{VPS_IP}/", SITES["corkboard-django"], clients=4, cookie_clients=2, rate=60) as dj_load,
        ):
            time.sleep(2)
            # 1. doctor says what is missing, with the lines to add
            r = pw("doctor")
            assert r.code == 1
            assert (
                "BAD  civic-observer: compose files: missing: /home/deploy/civic-observer/docker-compose.blue.yml"
                in r.out
            )
            assert "BAD  civic-observer: blue units: `docker compose config` fails" in r.out
            assert '- "127.0.0.1:8888:<the app\'s port>"' in r.out  # what to add
            assert "civic-observer: caddy routes both colors: a reverse_proxy lists only port(s) 8888" in r.out
            assert "does not health-check its upstreams" in r.out  # corkboard: no health checks today
            # 2. split civic-observer's compose file: base (db, redis) + one file per color; nothing restarts
            for f in (AFTER / "civic-observer").iterdir():
                vps.put(f"civic-observer/{f.name}", f.read_text())
            # 3. clerk's Caddyfile template gets `publicworks caddy`'s output; Caddy reloads
            co_load.mark("caddy reload")
            dj_load.mark("caddy reload")
            rendered = pw("caddy").out
            load_caddyfile(admin, GLOBAL + rendered + (ROOT / "sandbox" / "caddy" / "sites.caddy").read_text())
            time.sleep(3)
            co_load.mark("after the reload")
            dj_load.mark("after the reload")
            # 4. doctor, until all is good
            r = pw("doctor")
            assert r.code == 0, r.out
            # 5. the first deploys adopt what runs: civic-observer's `web` (on exactly 127.0.0.1:8888) as blue
            r = deploy("a1c0ffe")
            assert r.code == 0, r.text
            assert "civic-observer-web-1, started outside public-works: adopted as blue" in r.out
            for svc in ("corkboard-django", "corkboard-datasette"):
                r = deploy("a1c0ffe", svc)
                assert r.code == 0, r.text
                assert "both colors run; blue counts as serving (no state)" in r.out
            # 6. the old worker, which no port names, goes by hand; the old scripts are deleted in their repos
            vps.sh("docker rm -f civic-observer-worker-1 >/dev/null")
            # 7. from now on, deploys and rollbacks as usual
            assert deploy("b2beef0").code == 0
            assert pw("rollback", "--service", CO).code == 0
            poll(lambda: "version=a1c0ffe color=green" in answer(CO), what="civic.observer on green")
            time.sleep(2)
        for name, load in (("civic.observer", co_load), ("django.civic.band", dj_load)):
            rep = load.report()
            print(f"moving in, {name}: {rep.describe()}")
            assert len(rep.samples) > 1000
            assert rep.failures == [], rep.describe()
        assert vps.running(CO) == {
            "civic-observer-web-green-1": "a1c0ffe",
            "civic-observer-worker-green-1": "a1c0ffe",
            "civic-observer-db-1": "15",
            "civic-observer-redis-1": "15",
        }
        assert vps.containers(CO)["civic-observer-web-1"]["state"] == "exited"  # stopped, kept: the way back
    finally:
        restore_compose_files(vps)

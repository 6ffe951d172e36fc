"""The warm-standby canary and `publicworks rollback`, against the sandbox VPS."""

from __future__ import annotations

import threading
import time

from tests.support.sandbox import answer, canary_deploy, config_with, deploy, kill, poll, pw, wait_canary

CO = "civic-observer"
GREEN = "civic-observer-web-green-1"
BLUE = "civic-observer-web-blue-1"


def test_during_a_canary_both_colors_answer_through_caddy_and_it_completes(vps):
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=14)
    c = wait_canary(vps)
    assert (c["old"], c["new"]) == ({"color": "blue", "version": "a1c0ffe"}, {"color": "green", "version": "b2beef0"})
    assert c["ends_at"] > c["started_at"]
    seen: set[str] = set()
    poll(
        lambda: (
            seen.update({answer(CO).split(" color=")[0]})
            or {"service=civic-observer version=a1c0ffe", "service=civic-observer version=b2beef0"} <= seen
        ),
        timeout=14,
        every=0.05,
        what="both colors through Caddy",
    )
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    assert "canary: 14s left" in out and "deployed civic-observer b2beef0 to green" in out
    st = vps.state(CO)
    assert (st["active"], st["canary"]) == ("green", None)
    assert vps.containers(CO)[BLUE]["state"] == "exited"
    assert vps.history()[-1].split(" | ")[1:5] == ["civic-observer", "b2beef0", "success", "green"]


def test_a_version_turning_unhealthy_mid_canary_is_rolled_back_automatically(vps):
    assert deploy("a1c0ffe").code == 0
    blue_answers: list[str] = []
    stop = threading.Event()

    def watch_blue():  # the old color, on the VPS's own loopback, all along
        while not stop.is_set():
            blue_answers.append(vps.get(8888).strip())

    watcher = threading.Thread(target=watch_blue, daemon=True)
    watcher.start()
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    vps.sh(f"docker exec {GREEN} touch /tmp/sick")  # green's /health/ now answers 500
    out, _ = p.communicate(timeout=60)
    stop.set()
    watcher.join()
    assert p.returncode == 1, out
    assert "failed 3 health probes in a row" in out and "HTTP 500" in out
    assert "ROLLED BACK: civic-observer b2beef0 was stopped during its canary" in out
    assert GREEN not in vps.running(CO) and vps.running(CO)[BLUE] == "a1c0ffe"
    st = vps.state(CO)
    assert (st["active"], st["canary"], st["versions"]["blue"]) == ("blue", None, "a1c0ffe")
    last = vps.history()[-1].split(" | ")
    assert last[1:5] == ["civic-observer", "a1c0ffe", "rollback", "blue"] and "reason=automatic" in last
    assert blue_answers and all(a.startswith("service=civic-observer version=a1c0ffe") for a in blue_answers)
    poll(lambda: all("version=a1c0ffe" in answer(CO) for _ in range(3)), what="Caddy to serve only blue")


def test_inv_rollback_during_a_canary_takes_effect_within_seconds(vps):
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    t0 = time.monotonic()
    r = pw("rollback", "--service", CO)
    poll(lambda: GREEN not in vps.running(CO), timeout=10, every=0.05, what="green to stop")
    took = time.monotonic() - t0
    print(
        f"inv rollback during a canary: green stopped {took:.2f}s after the call (rollback exited in {r.seconds:.2f}s)"
    )
    assert r.code == 0, r.text
    assert "rollback requested" in r.out and "green (b2beef0) stopped; blue (a1c0ffe) serves" in r.out
    assert took < 6  # the goal is 3 s; generous here
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 1 and "rollback requested by tests@runner" in out
    assert vps.state(CO)["active"] == "blue" and vps.running(CO)[BLUE] == "a1c0ffe"
    assert "reason=requested" in vps.history()[-1]


def test_the_designs_marker_file_is_honoured_and_consumed(vps):
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    t0 = time.monotonic()
    vps.sh("echo 'alice, by hand' > civic-observer/.rollback-requested")
    out, _ = p.communicate(timeout=30)
    took = time.monotonic() - t0
    print(f"marker file: deploy rolled back and exited {took:.2f}s after it appeared")
    assert p.returncode == 1 and "rollback requested by alice, by hand" in out
    assert took < 6
    assert vps.sh("ls -A civic-observer").split() == [
        "docker-compose.blue.yml",
        "docker-compose.green.yml",
        "docker-compose.production-base.yml",
    ]
    assert GREEN not in vps.running(CO)


def test_a_deploy_killed_mid_canary_leaves_both_serving_and_rollback_finishes_it(vps, server):
    from publicworks import lock, remote

    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    kill(p)
    r = remote.connect(server)
    try:
        poll(lambda: not lock.probe(r, server.lock_file).held, timeout=5, every=0.05, what="the lock to be freed")
    finally:
        r.close()
    assert vps.running(CO)[BLUE] == "a1c0ffe" and vps.running(CO)[GREEN] == "b2beef0"  # both serving
    assert vps.state(CO)["canary"]["new"] == {"color": "green", "version": "b2beef0"}
    r = pw("rollback", "--service", CO)
    assert r.code == 0, r.text
    assert "a canary was left unfinished" in r.out
    assert GREEN not in vps.running(CO) and vps.running(CO)[BLUE] == "a1c0ffe"
    st = vps.state(CO)
    assert (st["active"], st["canary"]) == ("blue", None)
    assert "reason=unfinished-canary" in vps.history()[-1]


def test_a_deploy_after_an_unfinished_canary_counts_its_new_color_as_serving(vps):
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    kill(p)
    r = deploy("c3d00d0")
    assert r.code == 0, r.text
    assert "a canary was left unfinished" in r.out and "green counts as serving" in r.out
    assert vps.running(CO)[BLUE] == "c3d00d0" and GREEN not in vps.running(CO)
    assert vps.state(CO)["previous"] == {"color": "green", "version": "b2beef0"}


def test_rollback_after_a_completed_deploy_restores_the_previous_version_and_color(vps):
    assert deploy("a1c0ffe").code == 0
    assert deploy("b2beef0").code == 0
    blue_id = vps.containers(CO)[BLUE]["id"]
    migrations = vps.sh("docker exec civic-observer-db-1 cat /data/migrations.log")
    r = pw("rollback", "--service", CO)
    assert r.code == 0, r.text
    assert "rolled back civic-observer from b2beef0 (green) to a1c0ffe on blue" in r.out
    assert vps.running(CO)[BLUE] == "a1c0ffe" and GREEN not in vps.running(CO)
    assert vps.containers(CO)[BLUE]["id"] == blue_id  # the stopped container itself, started again
    assert vps.state(CO)["active"] == "blue" and vps.state(CO)["previous"] == {"color": "green", "version": "b2beef0"}
    last = vps.history()[-1].split(" | ")
    assert last[1:5] == ["civic-observer", "a1c0ffe", "rollback", "blue"] and "from=green:b2beef0" in last
    assert vps.sh("docker exec civic-observer-db-1 cat /data/migrations.log") == migrations  # none on rollback
    poll(lambda: "version=a1c0ffe" in answer(CO), what="Caddy to serve blue again")


def test_rollback_pulls_only_when_the_image_is_gone(vps):
    assert deploy("a1c0ffe", "corkboard-django").code == 0
    assert deploy("b2beef0", "corkboard-django").code == 0
    vps.sh(
        "docker rm -f corkboard-django-blue-1 >/dev/null && "
        "docker rmi 10.200.0.2:5000/corkboard-django:a1c0ffe >/dev/null"
    )
    r = pw("rollback", "--service", "corkboard-django")
    assert r.code == 0, r.text
    assert vps.running("corkboard")["corkboard-django-blue-1"] == "a1c0ffe"


def test_rollback_to_an_older_version(vps):
    for v in ("a1c0ffe", "b2beef0", "c3d00d0"):
        assert deploy(v, "corkboard-django").code == 0
    r = pw("rollback", "--service", "corkboard-django", "--to", "a1c0ffe")
    assert r.code == 0, r.text
    assert vps.running("corkboard") == {"corkboard-django-green-1": "a1c0ffe"}
    assert pw("rollback", "--service", "corkboard-django", "--to", "nosuch1").code == 2


def test_rollback_across_a_migration_needs_yes(vps):
    for v in ("a1c0ffe", "b2beef0", "c3d00d0"):
        assert deploy(v).code == 0  # every civic-observer deploy here runs its migrations
    r = pw("rollback", "--service", CO, "--to", "a1c0ffe")
    assert r.code == 2 and "older than deploy(s) that ran migrations: b2beef0, c3d00d0" in r.err + r.out
    assert "--yes" in r.text and vps.running(CO)[BLUE] == "c3d00d0"
    r = pw("rollback", "--service", CO, "--to", "a1c0ffe", "--yes")
    assert r.code == 0, r.text
    assert vps.running(CO)[GREEN] == "a1c0ffe"


def test_rollback_with_nothing_to_roll_back_to(vps):
    assert pw("rollback", "--service", CO).code == 2
    assert deploy("a1c0ffe").code == 0
    r = pw("rollback", "--service", CO)
    assert r.code == 2 and "nothing to roll back to" in r.text
    assert vps.running(CO)[BLUE] == "a1c0ffe"


def test_a_failed_rollback_leaves_the_current_color_serving(vps, tmp_path):
    assert deploy("5103000").code == 0  # the slow starter: fine with 10 s to get ready
    assert deploy("a1c0ffe").code == 0
    r = pw("rollback", "--service", CO, env=config_with(tmp_path, ready_timeout=2))
    assert r.code == 1, r.text
    assert "ROLLBACK FAILED (health)" in r.out
    assert vps.running(CO)[GREEN] == "a1c0ffe" and BLUE not in vps.running(CO)
    assert vps.state(CO)["active"] == "green"
    assert "action=rollback" in vps.history()[-1] and "failure" in vps.history()[-1]


def test_after_an_automatic_canary_rollback_the_undo_button_refuses_the_rejected_version(vps):
    """The truth-under-faults sequence: B rolled back automatically; plain rollback must not bring B back."""
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    wait_canary(vps)
    vps.sh(f"docker exec {GREEN} touch /tmp/sick")
    assert p.wait(timeout=90) == 1
    assert "reason=automatic" in vps.history()[-1]
    r = pw("rollback", "--service", CO)
    assert r.code == 2, r.text
    assert "nothing to roll back to" in r.text and "b2beef0 (rejected: rolled back (automatic)" in r.text
    r = pw("rollback", "--service", CO, "--to", "b2beef0")
    assert r.code == 2 and "b2beef0 was rejected" in r.text and "--yes" in r.text
    assert vps.running(CO)[BLUE] == "a1c0ffe" and GREEN not in vps.running(CO)
    assert "rejected: b2beef0" in pw("status", "--service", CO).out


def test_after_a_requested_canary_rollback_plain_rollback_walks_further_back(vps):
    for v in ("c3d00d0", "a1c0ffe"):
        assert deploy(v, "corkboard-django").code == 0
    p = canary_deploy("b2beef0", seconds=120, service="corkboard-django")
    wait_canary(vps, "corkboard-django")
    assert pw("rollback", "--service", "corkboard-django").code == 0  # ends the canary: b2beef0 rejected
    assert p.wait(timeout=60) == 1
    r = pw("rollback", "--service", "corkboard-django")
    assert r.code == 0, r.text
    assert "rolled back corkboard-django from a1c0ffe (green) to c3d00d0 on blue" in r.out
    assert vps.running("corkboard") == {"corkboard-django-blue-1": "c3d00d0"}

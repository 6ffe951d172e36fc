"""`publicworks deploy` against the sandbox VPS: what runs, what the state and history say, what users get."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from publicworks import lock, remote
from publicworks.errors import LockBusy
from tests.support.sandbox import answer, as_root, config_with, deploy, kill, poll, pw, pw_start, sshd_accepted

CO = "civic-observer"


def test_first_deploy_is_blue_then_the_second_switches_to_green(vps):
    r = deploy("a1c0ffe")
    assert r.code == 0, r.text
    assert vps.running("civic-observer") == {
        "civic-observer-web-blue-1": "a1c0ffe",
        "civic-observer-worker-blue-1": "a1c0ffe",
        "civic-observer-db-1": "15",
    }
    assert vps.get(8888).startswith("service=civic-observer version=a1c0ffe color=blue")
    st = vps.state(CO)
    assert (st["active"], st["versions"]["blue"], st["previous"], st["canary"]) == ("blue", "a1c0ffe", None, None)
    poll(lambda: "version=a1c0ffe" in answer(CO), what="Caddy to route to blue")

    r = deploy("b2beef0")
    assert r.code == 0, r.text
    assert re.search(
        r"deployed civic-observer b2beef0 to green \(port 8889\) in [\d.]+s; blue \(a1c0ffe\) stopped", r.out
    )
    c = vps.containers("civic-observer")
    assert (
        c["civic-observer-web-green-1"]["state"] == "running"
        and c["civic-observer-web-green-1"]["version"] == "b2beef0"
    )
    assert c["civic-observer-web-blue-1"]["state"] == "exited"  # stopped, kept: the way back
    st = vps.state(CO)
    assert (st["active"], st["versions"], st["previous"]) == (
        "green",
        {"blue": "a1c0ffe", "green": "b2beef0"},
        {"color": "blue", "version": "a1c0ffe"},
    )
    hist = vps.history()
    assert [h.split(" | ")[1:5] for h in hist] == [
        ["civic-observer", "a1c0ffe", "success", "blue"],
        ["civic-observer", "b2beef0", "success", "green"],
    ]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| ", hist[0]) and " | tests@runner | migrations=ran" in hist[0]
    poll(lambda: "version=b2beef0 color=green" in answer(CO), what="Caddy to route to green")
    # The output: numbered steps with durations.
    for i, step in enumerate(["lock", "inspect", "pull", "migrate", "start", "health", "switch"], 1):
        assert f"[{i}/10] {step}" in r.out
    assert re.search(r"Caddy saw green healthy [\d.]+s after it answered through the tunnel", r.out)


def test_the_db_sidecar_keeps_its_container_across_deploys(vps):
    assert deploy("a1c0ffe").code == 0
    db = vps.containers("civic-observer")["civic-observer-db-1"]["id"]
    assert deploy("b2beef0").code == 0
    assert deploy("c3d00d0").code == 0
    after = vps.containers("civic-observer")["civic-observer-db-1"]
    assert (after["id"], after["state"]) == (db, "running")
    assert "migrated to c3d00d0" in vps.sh("docker exec civic-observer-db-1 cat /data/migrations.log")


def test_deploying_corkboard_django_leaves_datasette_untouched(vps):
    assert deploy("a1c0ffe", "corkboard-datasette").code == 0
    assert deploy("a1c0ffe", "corkboard-django").code == 0
    before = {n: c for n, c in vps.containers("corkboard").items() if "datasette" in n}
    assert deploy("b2beef0", "corkboard-django").code == 0
    assert deploy("c3d00d0", "corkboard-django").code == 0
    after = {n: c for n, c in vps.containers("corkboard").items() if "datasette" in n}
    assert after == before and after["corkboard-datasette-blue-1"]["state"] == "running"
    assert vps.running("corkboard")["corkboard-django-blue-1"] == "c3d00d0"


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(vps):
    assert deploy("a1c0ffe").code == 0
    poll(lambda: "version=a1c0ffe" in answer(CO), what="Caddy to route to blue")
    state_before = vps.state(CO)
    r = deploy("dead500")
    assert r.code == 1, r.text
    assert "HTTP 500" in r.out and "last 50 log lines of green" in r.out
    assert "FAILED: civic-observer dead500 not deployed (health). Now: blue (a1c0ffe) runs; green stopped" in r.out
    assert vps.state(CO) == state_before
    assert vps.running("civic-observer")["civic-observer-web-blue-1"] == "a1c0ffe"
    assert "civic-observer-web-green-1" not in vps.running("civic-observer")
    assert vps.history()[-1].split(" | ")[1:5] == ["civic-observer", "dead500", "failure", "green"]
    assert "step=health" in vps.history()[-1]
    for _ in range(10):
        assert "version=a1c0ffe" in answer(CO)


def test_a_failed_migration_changes_nothing_else(vps):
    assert deploy("a1c0ffe").code == 0
    r = deploy("0badm19")
    assert r.code == 1 and "migrate failed" in r.text and "relation does not exist" in r.text
    assert "civic-observer-web-green-1" not in vps.containers("civic-observer")
    assert vps.state(CO)["active"] == "blue" and "step=migrate" in vps.history()[-1]


def test_a_version_missing_from_the_registry_fails_at_pull(vps):
    r = deploy("nosuchtag")
    assert r.code == 1 and "pull failed" in r.text
    assert vps.containers("civic-observer") == {} and vps.state(CO) is None


def test_a_slow_starter_passes_its_ready_timeout_and_fails_a_shorter_one(vps, tmp_path):
    r = deploy("5103000")  # starts answering after ~6 s; ready_timeout is 20 s
    assert r.code == 0, r.text
    assert re.search(r"(\d+) probe\(s\) in ([\d.]+)s", r.out)
    assert float(re.search(r"probe\(s\) in ([\d.]+)s", r.out).group(1)) >= 5
    r = deploy("5103000", env=config_with(tmp_path, ready_timeout=2))
    assert r.code == 1 and "within 2s" in r.text
    assert vps.state(CO)["active"] == "blue"


def test_a_second_deploy_meets_the_lock_and_can_wait_for_it(vps, server):
    holder = remote.connect(server)
    held = lock.Lock(holder, server.lock_file, lock.me("deploy", "corkboard-django", "v42", "alice@laptop"))
    held.acquire()
    try:
        r = deploy("a1c0ffe")
        assert r.code == 3, r.text
        assert "deploy of corkboard-django v42 by alice@laptop since 20" in r.err
        assert "--wait-lock" in r.err
        p = pw_start("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0", "--wait-lock", "60")
        time.sleep(2)
        assert p.poll() is None  # still waiting
    finally:
        held.release()
        holder.close()
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert "waiting up to 60s" in out


def test_sigkill_of_a_deploy_frees_the_lock_within_5s(vps, server):
    assert deploy("a1c0ffe").code == 0
    p = pw_start("deploy", "--service", CO, "--version", "5103000", "--canary", "0")
    r = remote.connect(server)
    try:
        poll(lambda: lock.probe(r, server.lock_file).held, what="the deploy to take the lock")
        poll(lambda: "civic-observer-web-green-1" in vps.running("civic-observer"), what="green to start")
        kill(p)
        t0 = time.monotonic()
        poll(lambda: not lock.probe(r, server.lock_file).held, timeout=5, every=0.05, what="the lock to be freed")
        freed = time.monotonic() - t0
    finally:
        r.close()
    print(f"lock freed {freed * 1000:.0f} ms after SIGKILL")
    assert vps.running("civic-observer")["civic-observer-web-blue-1"] == "a1c0ffe"  # old still serving
    r = deploy("b2beef0")
    assert r.code == 0, r.text
    assert (
        vps.state(CO)["active"] == "green" and vps.running("civic-observer")["civic-observer-web-green-1"] == "b2beef0"
    )


def test_sigterm_before_healthy_stops_the_new_color_and_frees_the_lock(vps):
    assert deploy("a1c0ffe").code == 0
    p = pw_start("deploy", "--service", CO, "--version", "5103000", "--canary", "0")
    poll(lambda: "civic-observer-web-green-1" in vps.running("civic-observer"), what="green to start")
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1, out
    assert "interrupted (SIGTERM)" in out and "Now: blue (a1c0ffe) runs; green stopped" in out
    assert vps.running("civic-observer").keys() == {
        "civic-observer-web-blue-1",
        "civic-observer-worker-blue-1",
        "civic-observer-db-1",
    }
    assert deploy("b2beef0").code == 0  # the lock is free


def test_a_version_that_is_not_an_image_tag_is_refused_before_connecting(vps):
    before = sshd_accepted()
    r = deploy("abc;touch /tmp/pwned")
    assert r.code == 2 and "not a valid image tag" in r.err
    assert sshd_accepted() == before  # refused before connecting
    assert not Path("/tmp/pwned").exists()
    assert vps.sh("ls /tmp/pwned 2>/dev/null || echo absent").strip() == "absent"
    assert vps.containers() == {}


def test_an_unknown_service_lists_the_known_ones(vps):
    r = deploy("a1c0ffe", "civic-observr")
    assert r.code == 2 and "knows: civic-observer, corkboard-datasette, corkboard-django" in r.err


def test_dry_run_prints_the_plan_and_changes_nothing(vps):
    assert deploy("a1c0ffe").code == 0
    before = (vps.containers(), vps.state(CO), vps.history())
    r = pw("deploy", "--service", CO, "--version", "b2beef0", "--dry-run")
    assert r.code == 0, r.text
    assert "target: green on port 8889" in r.out and "serving now: blue (a1c0ffe) on port 8888" in r.out
    assert (
        "$ env IMAGE_TAG=b2beef0 docker compose --project-directory /home/deploy/civic-observer -p civic-observer"
        " -f /home/deploy/civic-observer/docker-compose.production-base.yml"
        " -f /home/deploy/civic-observer/docker-compose.green.yml up -d --pull missing -- web-green worker-green"
    ) in r.out
    assert "stop -t 10 -- web-blue worker-blue" in r.out
    assert (vps.containers(), vps.state(CO), vps.history()) == before


def test_one_deploy_opens_exactly_one_ssh_connection(vps):
    assert deploy("a1c0ffe").code == 0
    before = sshd_accepted()
    r = deploy("b2beef0", "civic-observer", "-v")
    assert r.code == 0
    assert "IMAGE_TAG=b2beef0 docker compose" in r.out  # -v shows each remote command
    assert sshd_accepted() - before == 1


def test_adopts_a_service_started_outside_public_works(vps):
    vps.sh("docker run -d --init --name legacy-web -p 127.0.0.1:8888:8000 10.200.0.2:5000/civic-observer:a1c0ffe")
    r = deploy("b2beef0")
    assert r.code == 0, r.text
    assert "legacy-web, started outside public-works: adopted as blue" in r.out
    assert vps.containers()["legacy-web"]["state"] == "exited"
    assert vps.state(CO)["active"] == "green"


def test_the_lock_refuses_every_contender_while_held(sandbox, server):
    a, b = remote.connect(server), remote.connect(server)
    try:
        with lock.Lock(a, server.lock_file, lock.me("deploy", CO, "v1", "first")) as held:
            held.acquire()
            for i in range(20):
                with pytest.raises(LockBusy, match="deploy of civic-observer v1 by first"):
                    lock.Lock(b, server.lock_file, lock.me("deploy", CO, f"v{i}", "second")).acquire()
        second = lock.Lock(b, server.lock_file, lock.me("deploy", CO, "v2", "second"))
        second.acquire()  # released by the with-block: free again at once
        second.release()
    finally:
        a.close()
        b.close()


def test_a_half_open_connection_frees_the_lock_after_the_missed_heartbeats(sandbox, server):
    """The network vanishes under a holder (no FIN, no RST): the server lets go without heartbeats."""
    holder, watcher = remote.connect(server), remote.connect(server)
    port = holder.transport.sock.getsockname()[1]
    rule = ["INPUT", "-p", "tcp", "-s", "10.200.0.1", "--sport", str(port), "-j", "DROP"]
    held = lock.Lock(holder, server.lock_file, lock.me("deploy", CO, "v1", "vanishing@laptop"), window=4)
    held.acquire()
    try:
        as_root("iptables", "-I", *rule)
        t0 = time.monotonic()
        poll(
            lambda: not lock.probe(watcher, server.lock_file).held,
            timeout=20,
            every=0.2,
            what="the server to free the lock of a vanished holder",
        )
        print(f"half-open holder: lock freed after {time.monotonic() - t0:.1f}s (window 4 s)")
        assert time.monotonic() - t0 > 3  # not before the heartbeat deadline
    finally:
        as_root("iptables", "-D", *rule, check=False)
        watcher.close()
        try:
            held.release()
        finally:
            holder.close()


def test_a_closed_pipe_never_stops_a_deploy_halfway(vps):
    """`publicworks deploy ... | head -3`: the reader goes away; the deploy finishes and records itself."""
    import subprocess
    import sys

    from tests.support.sandbox import pw_env

    assert deploy("a1c0ffe").code == 0
    p = subprocess.Popen(
        [sys.executable, "-m", "publicworks", "deploy", "--service", CO, "--version", "b2beef0", "--canary", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=pw_env(),
    )
    assert p.stdout is not None
    for _ in range(3):
        p.stdout.readline()
    p.stdout.close()  # what `head -3` does
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert vps.state(CO)["active"] == "green" and vps.running(CO)["civic-observer-web-green-1"] == "b2beef0"
    assert " | b2beef0 | success | green | " in vps.history()[-1]

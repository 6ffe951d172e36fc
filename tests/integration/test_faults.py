"""The fault matrix, on the sandbox: each fault, then what a user needs to be true.

After every fault: the old (or surviving) color answers through Caddy, the state names what runs, the
history holds the attempt with its outcome, the message names the cause, the exit code says it failed
(or succeeded), the lock is free and the next deploy succeeds.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support.sandbox import (
    Watched,
    answer,
    as_root,
    config_with,
    deploy,
    poll,
    pw,
    registry_refused,
    set_link,
    start_daemons,
    stop_daemon,
)

CO = "civic-observer"


def web(vps) -> dict[str, str]:
    """color -> version of the running web containers."""
    return {n.split("-")[3]: v for n, v in vps.running(CO).items() if "-web-" in n}


def settled(vps, color: str, version: str) -> None:
    """`color` alone serves `version`: through Caddy, per docker, and per the state."""
    assert web(vps) == {color: version}
    poll(lambda: f"version={version} color={color}" in answer(CO), timeout=30, what=f"Caddy to serve {color}")
    st = vps.state(CO)
    assert (st["active"], st["versions"][color], st["canary"]) == (color, version, None), st


def next_deploy_succeeds(vps, env=None) -> None:
    target = "green" if "blue" in web(vps) else "blue"
    r = deploy("c3d00d0", env=env) if env else deploy("c3d00d0")
    assert r.code == 0, r.text
    settled(vps, target, "c3d00d0")


@pytest.fixture
def blue(vps):
    assert deploy("a1c0ffe").code == 0
    settled(vps, "blue", "a1c0ffe")
    return vps


@pytest.fixture
def link():
    yield set_link
    set_link(True)  # whatever happened


def test_the_registry_stopped_during_pull(blue):
    with registry_refused():
        r = deploy("b2beef0")
    assert r.code == 1 and "pull failed" in r.text
    assert "Now: blue (a1c0ffe) runs" in r.out
    settled(blue, "blue", "a1c0ffe")
    assert " | b2beef0 | failure | green | " in blue.history()[-1] and "step=pull" in blue.history()[-1]
    next_deploy_succeeds(blue)


def test_an_unwritable_history_is_said_plainly_and_nothing_else_is_lost(blue):
    blue.sh("chmod 444 deploy-history.log")
    try:
        r = deploy("b2beef0")
    finally:
        blue.sh("chmod 644 deploy-history.log")
    assert r.code == 1
    assert "INCOMPLETE: b2beef0 is live on green; blue (a1c0ffe) stopped, but the history" in r.out
    assert "Permission denied" in r.out
    settled(blue, "green", "b2beef0")  # the deploy happened, and the state says so
    next_deploy_succeeds(blue)


def test_a_full_disk_under_the_history(blue, tmp_path):
    as_root("mkdir", "-p", "/home/deploy/full")
    as_root("mount", "-t", "tmpfs", "-o", "size=64k,uid=deploy", "tmpfs", "/home/deploy/full")
    try:
        as_root("sh", "-c", "dd if=/dev/zero of=/home/deploy/full/fill bs=4k 2>/dev/null; true")
        env = config_with(tmp_path, history_file='"/home/deploy/full/history.log"')
        r = deploy("b2beef0", env=env)
        assert r.code == 1 and "INCOMPLETE" in r.out
        assert "the history (/home/deploy/full/history.log) could not be written" in r.out
        settled(blue, "green", "b2beef0")
    finally:
        as_root("umount", "/home/deploy/full")
    next_deploy_succeeds(blue)


@pytest.mark.parametrize("garbage", ["", '{"active": "blu', '{"canary": {"old": {"color": "red"}}}', "[" * 50_000])
def test_a_truncated_or_garbage_state_file_while_containers_run(blue, garbage):
    blue.sh(f"printf %s {json.dumps(garbage)} > .publicworks/civic-observer.json")
    status = pw("status", "--service", CO)
    assert status.code == 0 and "civic-observer: up, blue serves a1c0ffe" in status.out
    r = deploy("b2beef0")
    assert r.code == 0, r.text
    if garbage:
        assert "is unreadable" in r.out and "ignoring it and going by what runs" in r.out
    settled(blue, "green", "b2beef0")


def test_caddy_stopped_in_the_middle_of_a_deploy(blue):
    # a slow starter: Caddy is gone before green answers, so nothing can have proven the switch yet
    w = Watched("deploy", "--service", CO, "--version", "5103000", "--canary", "0")
    w.wait_for("[6/10] health")
    stop_daemon("caddy")
    try:
        r = w.finish()
    finally:
        start_daemons()
    assert r.code == 1, r.out
    assert "Caddy did not call green (port 8889) healthy" in r.out and "did not answer" in r.out
    assert "Now: blue (a1c0ffe) runs; green stopped" in r.out
    settled(blue, "blue", "a1c0ffe")
    assert "step=switch" in blue.history()[-1]
    next_deploy_succeeds(blue)


def test_the_old_colors_container_exited_overnight(blue):
    blue.sh("docker stop -t 1 civic-observer-web-blue-1 civic-observer-worker-blue-1 >/dev/null")
    poll(lambda: answer(CO) != "service=civic-observer version=a1c0ffe", timeout=20, what="the site to go down")
    r = deploy("b2beef0")
    assert r.code == 0, r.text
    assert "the state says blue is active, but nothing runs: going by what runs" in r.out
    settled(blue, "green", "b2beef0")
    next_deploy_succeeds(blue)


# -- the link between the runner and the VPS, cut for longer than the lock's heartbeat window ----------------


@pytest.mark.parametrize("when", ["[3/10] pull", "[5/10] start", "[9/10] stop"])
def test_the_link_cut_mid_deploy(blue, link, tmp_path, when):
    env = config_with(tmp_path, lock_timeout=4)
    w = Watched("deploy", "--service", CO, "--version", "b2beef0", "--canary", "0", env=env)
    w.wait_for(when)
    link(False)
    time.sleep(8)  # the server frees the lock after 4 s without a heartbeat
    link(True)
    r = w.finish()
    assert r.code == 1, r.out
    assert "lost the deploy lock" in r.out or "SSH connection" in r.out, r.out
    assert " | b2beef0 | success | " not in "\n".join(blue.history())
    # after the stop was sent green is live; before it, blue still serves alone
    if when == "[9/10] stop":
        settled(blue, "green", "b2beef0")
    else:
        settled(blue, "blue", "a1c0ffe")
    next_deploy_succeeds(blue, env)


def test_the_link_cut_during_the_canary_leaves_both_serving(blue, link, tmp_path):
    env = config_with(tmp_path, lock_timeout=4)
    w = Watched("deploy", "--service", CO, "--version", "b2beef0", "--canary", "120", env=env)
    w.wait_for("canary: 120s left")  # the canary's loop runs
    link(False)
    time.sleep(8)
    link(True)
    r = w.finish()
    assert r.code == 1 and "UNFINISHED" in r.out, r.out
    assert web(blue) == {"blue": "a1c0ffe", "green": "b2beef0"}  # both serve, as the state says
    assert blue.state(CO)["canary"]["new"] == {"color": "green", "version": "b2beef0"}
    assert "canary=unfinished" in blue.history()[-1]
    r = pw("rollback", "--service", CO, env=env)  # the undo button ends it
    assert r.code == 0, r.text
    settled(blue, "blue", "a1c0ffe")


def test_a_deploy_that_lost_the_lock_never_acts_beside_the_next_one(blue, link, tmp_path):
    """The split brain of the truth-under-faults issue: V1 slow to start, the link cut longer than the
    heartbeat window, V2 deployed as soon as the link is back. V1's deploy must not act or claim success."""
    env = config_with(tmp_path, lock_timeout=4, ready_timeout=60)
    first = Watched("deploy", "--service", CO, "--version", "5103000", "--canary", "0", env=env)
    first.wait_for("[6/10] health")
    link(False)
    time.sleep(8)
    link(True)
    second = pw("deploy", "--service", CO, "--version", "b2beef0", "--canary", "0", "--wait-lock", "90", env=env)
    r = first.finish()
    assert second.code == 0, second.text
    assert r.code == 1, r.out
    assert "lost the deploy lock" in r.out
    # Two true orders: the second deploy took the lock first (the first then changes nothing more), or
    # the first saw it free first, took it back to stop its own green, and the second waited for it.
    assert "This run changed nothing after that" in r.out or (
        "This run took the lock again once it was free and finished cleanly" in r.out
        and "Now: blue (a1c0ffe) runs; green stopped" in r.out
    ), r.out
    settled(blue, "green", "b2beef0")  # the second deploy's color, never stopped or replaced by the first
    history = "\n".join(blue.history())
    assert " | 5103000 | success | " not in history and " | b2beef0 | success | green | " in history
    assert " | 5103000 | aborted | " in history

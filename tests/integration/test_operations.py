"""Living with it on the VPS: images pruned, the disk floor, logs and one-off commands, the freeze."""

from __future__ import annotations

import signal
import time

from tests.support.sandbox import Watched, config_with, deploy, pw

CO = "civic-observer"
DJ = "corkboard-django"
REPO = "10.200.0.2:5000/corkboard-django"


def tags(vps) -> set[str]:
    out = vps.sh(f"docker images --format '{{{{.Tag}}}}' {REPO}")
    return set(out.split())


def test_retention_keeps_exactly_what_a_rollback_may_need(vps, tmp_path):
    env = config_with(tmp_path, keep_images=2)
    for v in ("a1c0ffe", "b2beef0", "c3d00d0"):
        r = deploy(v, DJ, env=env)
        assert r.code == 0, r.text
    # kept: the two newest served (c3d00d0 on green, b2beef0 on blue, stopped); a1c0ffe went
    assert tags(vps) == {"b2beef0", "c3d00d0"}
    assert "removed 1 image(s) of corkboard-django (10.200.0.2:5000/corkboard-django:a1c0ffe)" in r.out
    r = pw("rollback", "--service", DJ, env=env)  # to b2beef0: its stopped container, no pull
    assert r.code == 0 and vps.running("corkboard") == {"corkboard-django-green-1": "b2beef0"}
    r = pw("rollback", "--service", DJ, "--to", "a1c0ffe", env=env)  # pruned: pulled again
    assert r.code == 0, r.text
    assert vps.running("corkboard") == {"corkboard-django-blue-1": "a1c0ffe"}
    dry = pw("prune", "--service", DJ, "--dry-run", env=env)
    assert dry.code == 0 and "would remove 1 image(s) of corkboard-django: " + REPO + ":c3d00d0" in dry.out
    assert "c3d00d0" in tags(vps)  # a dry run removes nothing
    assert pw("prune", "--service", DJ, env=env).code == 0 and tags(vps) == {"a1c0ffe", "b2beef0"}


def test_below_the_disk_floor_a_deploy_touches_nothing(vps, tmp_path):
    assert deploy("a1c0ffe").code == 0
    env = config_with(tmp_path, min_free_mb=10**8)  # more than this machine has
    before = (vps.containers(), vps.state(CO))
    r = deploy("b2beef0", env=env)
    assert r.code == 1 and "MB free on" in r.out and "server.min_free_mb is 100000000" in r.out
    assert (vps.containers(), vps.state(CO)) == before
    doctor = pw("doctor", "--service", CO, env=env)
    assert doctor.code == 1 and "BAD  disk: Docker's data root" in doctor.out


def test_logs_follow_ends_cleanly_on_ctrl_c(vps):
    assert deploy("a1c0ffe").code == 0
    w = Watched("logs", "--service", CO, "--tail", "5", "--follow")
    vps.sh("docker exec civic-observer-worker-blue-1 sh -c 'echo marker-from-the-worker > /proc/1/fd/1'")
    w.wait_for("marker-from-the-worker", timeout=30)
    assert any("worker-blue" in line and "marker-from-the-worker" in line for line in w.lines)
    w.p.send_signal(signal.SIGINT)
    r = w.finish(timeout=30)
    assert r.code == 0 and "Traceback" not in r.out
    time.sleep(0.5)
    assert "logs --no-color" not in vps.sh("ps -eo args || true")  # nothing left running on the server


def test_exec_runs_in_the_serving_version_and_passes_its_exit_code(vps):
    assert deploy("a1c0ffe").code == 0
    r = pw("exec", "--service", CO, "--", "sh", "-c", "echo running $APP_VERSION on $APP_COLOR; exit 7")
    assert r.code == 7, r.text
    assert "running a1c0ffe on blue" in r.out
    last = vps.history()[-1].split(" | ")
    assert last[1:5] == [CO, "a1c0ffe", "exec", "blue"] and "command=sh" in last and "exit=7" in last
    r = pw("exec", "--service", CO, "--", "sh", "-c", "echo 'a; b' \"$1\"", "x", "$(id)")
    assert r.code == 0 and "a; b $(id)" in r.out  # every argument reaches the container as it was given


def test_a_freeze_stops_deploys_but_not_rollbacks(vps):
    for v in ("a1c0ffe", "b2beef0"):
        assert deploy(v).code == 0
    assert pw("freeze", "--service", CO, "--reason", "migrating the database").code == 0
    r = deploy("c3d00d0")
    assert r.code == 3 and "frozen by tests@runner since" in r.text and "migrating the database" in r.text
    assert "deploys frozen by tests@runner" in pw("status", "--service", CO).out
    assert pw("rollback", "--service", CO).code == 0
    assert pw("unfreeze", "--service", CO).code == 0
    assert deploy("c3d00d0").code == 0
    statuses = [line.split(" | ")[3] for line in vps.history()]
    assert statuses[-5:] == ["freeze", "rollback", "unfreeze", "success"][-4:] or "freeze" in statuses


def test_a_pre_migrate_hook_runs_before_the_migration(vps, tmp_path):
    env = config_with(tmp_path, pre_migrate='"sh -c \\"echo dumped before migrating to $APP_VERSION\\""')
    assert deploy("a1c0ffe", env=env).code == 0
    r = deploy("b2beef0", env=env)
    assert r.code == 0 and "pre-migrate: sh -c" in r.out and "dumped before migrating to b2beef0" in r.out
    assert r.out.index("dumped before migrating") < r.out.index("applied migrations for b2beef0")


def test_exec_is_interactive_when_a_terminal_is_attached(vps):
    """A one-off command that reads what the person at the terminal types (createsuperuser does)."""
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.support.sandbox import poll, pw_env

    assert deploy("a1c0ffe").code == 0
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "publicworks",
            "exec",
            "--service",
            CO,
            "--",
            "sh",
            "-c",
            "printf 'name? '; read x; echo got-$x",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=pw_env(),
        close_fds=True,
    )
    os.close(slave)
    seen = b""

    def read_some() -> bytes:
        nonlocal seen
        if select.select([master], [], [], 0.2)[0]:
            try:
                seen += os.read(master, 1024)
            except OSError:
                pass
        return seen

    poll(lambda: b"name?" in read_some(), timeout=60, what="the prompt")
    os.write(master, b"alice\r")
    poll(lambda: b"got-alice" in read_some() or p.poll() is not None, timeout=30, what="the answer")
    assert p.wait(timeout=30) == 0 and b"got-alice" in seen
    os.close(master)

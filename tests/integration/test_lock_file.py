"""The lock file is the server's one safety mechanism: nobody else may hold, plant or redirect it."""

from __future__ import annotations

import json

from tests.support.sandbox import as_root, config_with, deploy, pw

CO = "civic-observer"
LOCK = "/home/deploy/.publicworks/deploy.lock"


def test_a_symlink_planted_at_the_lock_is_refused_and_its_target_untouched(vps):
    vps.sh("mkdir -p -m 700 .publicworks && echo precious > /tmp/target && ln -s /tmp/target .publicworks/deploy.lock")
    r = deploy("a1c0ffe")
    assert r.code == 1 and f"{LOCK} is a symbolic link; refusing to follow it" in r.text
    assert vps.sh("cat /tmp/target") == "precious\n" and vps.containers() == {}
    doctor = json.loads(pw("doctor", "--json").out)
    lock = next(c for c in doctor["checks"] if c["name"] == "lock")
    assert lock["status"] == "bad" and "symbolic link" in lock["detail"]


def test_a_lock_file_owned_by_someone_else_is_refused(vps):
    as_root(
        "sh",
        "-c",
        f"mkdir -p {LOCK.rsplit('/', 1)[0]} && chown deploy {LOCK.rsplit('/', 1)[0]} && "
        f"echo forged > {LOCK} && chown root {LOCK}",
    )
    try:
        r = deploy("a1c0ffe")
        assert r.code == 1 and "belongs to root, not deploy; refusing it" in r.text
        assert vps.containers() == {}
    finally:
        as_root("rm", "-f", LOCK)


def test_the_designs_tmp_path_still_works_and_doctor_warns(vps, tmp_path):
    env = config_with(tmp_path, lock_file='"/tmp/civic-deploy.lock"')
    assert deploy("a1c0ffe", env=env).code == 0
    doctor = pw("doctor", "--json", env=env)
    lock = next(c for c in json.loads(doctor.out)["checks"] if c["name"] == "lock")
    assert lock["status"] == "warn" and "the design's path" in lock["detail"] and "another local user" in lock["fix"]
    assert doctor.code == 0  # a warning, not a failure


def test_a_missing_lock_directory_is_said_clearly_by_deploy_and_doctor(vps, tmp_path):
    env = config_with(tmp_path, lock_file='"/srv/publicworks/deploy.lock"')
    r = deploy("a1c0ffe", env=env)
    assert r.code == 1 and "the lock's directory /srv/publicworks does not exist" in r.text
    doctor = pw("doctor", "--json", env=env)
    lock = next(c for c in json.loads(doctor.out)["checks"] if c["name"] == "lock")
    assert doctor.code == 1 and lock["status"] == "bad" and "mkdir -m 700 /srv/publicworks" in lock["fix"]

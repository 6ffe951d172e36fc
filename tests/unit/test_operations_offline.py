"""Living with it: the freeze, the disk floor, pruning old images, the pre-migrate hook, exec and logs."""

from __future__ import annotations

import shlex
from dataclasses import replace

import pytest

from publicworks import commands as cmd
from publicworks import logs, oneoff, prune
from publicworks.errors import LockBusy
from publicworks.history import Entry
from publicworks.observe import parse_ps
from tests.support.fake import World

CO = "civic-observer"


def serving(world: World, *versions: str) -> None:
    for v in versions:
        assert world.deploy(CO, v) == 0, world.text()
        world.clock.advance(60)


def with_service(world: World, **changes) -> World:
    cfg = world.cfg
    w = World(replace(cfg, services={**cfg.services, CO: replace(cfg.services[CO], **changes)}))
    return w


def test_a_frozen_service_refuses_deploys_naming_who_and_why_and_rollbacks_still_work(world):
    serving(world, "a1c0ffe", "b2beef0")
    world.server.files[world.cfg.server.frozen_file(CO)] = (
        '{"actor": "alice@laptop", "reason": "db migration in progress", "since": "2026-11-26T12:00:00Z"}\n'
    )
    mark = world.mark()
    with pytest.raises(LockBusy) as e:
        world.deploy(CO, "c3d00d0")
    assert "frozen by alice@laptop since 2026-11-26T12:00:00Z: db migration in progress" in e.value.message
    assert e.value.code == 3 and world.since(mark) == []  # nothing touched, not even the lock
    assert world.rollback(CO) == 0  # the undo button still works


def test_below_the_disk_floor_a_deploy_refuses_before_pulling(world, co):
    serving(world, "a1c0ffe")
    world.server.free_mb = 500  # the floor is 1024 MB
    mark = world.mark()
    assert world.deploy(CO, "b2beef0") == 1
    assert cmd.pull(co, "green", "b2beef0") not in world.since(mark)
    assert "only 500 MB free on /, where Docker keeps images (/var/lib/docker)" in world.text()
    assert "server.min_free_mb is 1024" in world.text()
    assert "publicworks prune --service S" in world.text() and world.server.state(CO)["active"] == "blue"


def test_retention_keeps_the_newest_served_versions_and_every_color_in_use(world):
    versions = ["v1", "v2", "v3", "v4", "v5", "v6", "v7"]
    serving(world, *versions)
    repo = "127.0.0.1:5000/civic-observer"
    # keep_images = 5: v3..v7; the stopped color (v6) is among them anyway
    assert world.server.images == {f"{repo}:{v}" for v in versions[2:]}
    assert world.rollback(CO) == 0  # to v6, on the stopped color: its image was kept
    world.clock.advance(60)
    assert world.rollback(CO, to="v3", yes=True) == 0  # across migrations: --yes
    assert f"{repo}:v3" in world.server.images


def test_the_prune_plan_never_removes_what_a_container_uses():
    from publicworks import config

    svc = replace(config.load("services.toml").services[CO], keep_images=1)
    images = prune.parse_images(
        "r/co\tv1\tsha256:1\t10MB\nr/co\tv2\tsha256:2\t10MB\nr/co\t<none>\tsha256:3\t1MB\nr/other\tv1\tsha256:4\t10MB\n"
    )
    ps = "x1\tcivic-observer-web-blue-1\tr/co:v1\texited\tcivic-observer\tweb-blue\t"
    entries = [Entry("t", CO, "v1", "success", "blue", "ci"), Entry("t", CO, "v2", "success", "green", "ci")]
    p = prune.decide(svc, {"r/co"}, images, parse_ps(ps), entries)
    assert p.remove == ()  # v2 is the newest served, v1 the stopped color; r/other is another service's
    assert p.keep == {"v1": "used by civic-observer-web-blue-1 (stopped)", "v2": "one of the 1 newest versions served"}
    entries.append(Entry("t", CO, "v3", "success", "blue", "ci"))
    p = prune.decide(svc, {"r/co"}, images, parse_ps(ps), entries)
    assert [i.ref for i in p.remove] == ["r/co:v2"]


def test_a_pre_migrate_hook_runs_first_and_its_failure_stops_the_deploy(world):
    w = with_service(world, pre_migrate=("sh", "/app/dump.sh"))
    svc = w.cfg.services[CO]
    assert w.deploy(CO, "a1c0ffe") == 0
    w.clock.advance(60)
    mark = w.mark()
    w.remote.on(lambda c: c == cmd.pre_migrate(svc, "green", "b2beef0"), lambda c: None)
    assert w.deploy(CO, "b2beef0") == 0
    changes = w.since(mark)
    assert changes.index(cmd.pre_migrate(svc, "green", "b2beef0")) < changes.index(cmd.migrate(svc, "green", "b2beef0"))
    from publicworks.remote import Result

    w.remote.on(
        lambda c: c == cmd.pre_migrate(svc, "blue", "c3d00d0"),
        lambda c: Result(c, 1, "", "pg_dump: could not connect\n"),
    )
    mark = w.mark()
    assert w.deploy(CO, "c3d00d0") == 1
    assert cmd.migrate(svc, "blue", "c3d00d0") not in w.since(mark) and "step=migrate" in w.server.history()[-1]
    assert "pg_dump: could not connect" in w.text()


def test_exec_runs_in_the_serving_version_quotes_every_argument_and_passes_the_exit_code_through(world, co):
    serving(world, "a1c0ffe", "b2beef0")
    from publicworks.remote import Result

    argv = ["python", "manage.py", "shell", "-c", "print('x; rm -rf /')"]
    world.remote.on(lambda c: "shell" in c.argv, lambda c: Result(c, 7, "", ""))
    code = oneoff.run(world.cfg, CO, argv, world.reporter(), connect_to=world.remote.connect, tty=False)
    assert code == 7
    command = world.remote.ran[-2]  # then the history line
    assert command == cmd.run_once(co, "green", "b2beef0", argv, tty=False)
    assert shlex.split(command.shell())[-5:] == argv  # the remote shell sees exactly these words
    last = world.server.history()[-1].split(" | ")
    assert last[1:5] == [CO, "b2beef0", "exec", "green"] and "command=python" in last and "exit=7" in last


def test_logs_names_the_units_of_the_colors_asked_for(world, co):
    assert logs.logs(world.cfg, CO, "both", 10, "10m", False, connect_to=world.remote.connect) == 0
    argv = world.remote.ran[-1].argv
    assert argv[-6:] == ("--", "web-blue", "worker-blue", "web-green", "worker-green")[-5:] or argv[
        argv.index("--") + 1 :
    ] == ("web-blue", "worker-blue", "web-green", "worker-green")
    assert ("--tail", "10") == argv[argv.index("--tail") : argv.index("--tail") + 2]
    assert "--follow" not in argv and "--since" in argv
    assert logs.logs(world.cfg, CO, "green", None, None, True, connect_to=world.remote.connect) == 0
    argv = world.remote.ran[-1].argv
    assert "--follow" in argv and argv[argv.index("--") + 1 :] == ("web-green", "worker-green")
    assert "/home/deploy/civic-observer/docker-compose.blue.yml" not in argv

"""A service on several hosts, through fake servers: locks in a fixed order, migrations once, host by host,
all or nothing."""

from __future__ import annotations

import json

import pytest

from publicworks import commands as cmd
from publicworks import fleet as fleet_mod
from publicworks.config import ConfigError, parse
from publicworks.errors import LockBusy, PublicWorksError
from publicworks.lock import Holder
from tests.support.fake import App, Fleet

CO = "civic-observer"
HOSTS = ("h1", "h2", "h3")


@pytest.fixture
def fleet(cfg, monkeypatch) -> Fleet:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("PUBLICWORKS_ACTOR", "tests@offline")
    return Fleet(cfg, CO)


def web(fleet: Fleet, host: str) -> dict[str, str]:
    return {n.split("-")[3]: v for n, v in fleet.server(host).running(CO).items() if "-web-" in n}


def serving(fleet: Fleet, version: str) -> None:
    assert fleet.deploy(CO, version) == 0, fleet.text()
    fleet.clock.advance(60)


def test_a_rolling_deploy_switches_every_host_and_records_it_on_each(fleet, co):
    serving(fleet, "a1c0ffe")
    assert fleet.deploy(CO, "b2beef0") == 0, fleet.text()
    for h in HOSTS:
        assert web(fleet, h) == {"green": "b2beef0"}
        assert fleet.server(h).state(CO)["active"] == "green"
        assert fleet.server(h).history()[-1].split(" | ")[1:5] == [CO, "b2beef0", "success", "green"]
        assert "hosts=h1,h2,h3" in fleet.server(h).history()[-1]
        assert fleet.server(h).lock_token is None
    migrations = [h for h in HOSTS if cmd.migrate(co, "green", "b2beef0") in fleet.remotes[h].ran]
    assert migrations == ["h1"]  # once, on the first host
    assert "deployed civic-observer b2beef0 on h1,h2,h3" in fleet.text()


def test_a_version_failing_on_the_second_host_switches_the_first_back_and_leaves_the_third_untouched(fleet):
    serving(fleet, "a1c0ffe")
    fleet.server("h2").apps["b2beef0"] = App(status=500)
    assert fleet.deploy(CO, "b2beef0") == 1
    for h in HOSTS:
        assert web(fleet, h) == {"blue": "a1c0ffe"}, h
        assert fleet.server(h).state(CO)["active"] == "blue"
        assert fleet.server(h).lock_token is None
    assert "outcome=switched back" in fleet.server("h1").history()[-1]
    assert "step=health" in fleet.server("h2").history()[-1]
    assert "outcome=untouched" in fleet.server("h3").history()[-1]
    assert cmd.up(fleet.cfg.services[CO], "green", "b2beef0") not in fleet.remotes["h3"].ran
    assert "FAILED: civic-observer b2beef0 failed on h2" in fleet.text()


def test_a_busy_host_gives_back_the_locks_taken_and_names_the_holder(fleet):
    serving(fleet, "a1c0ffe")
    fleet.server("h2").lock_token = "someone-else"
    fleet.server("h2").lock_holder = Holder("deploy", "corkboard-django", "v9", "ci", "now").to_json()
    with pytest.raises(LockBusy) as e:
        fleet.deploy(CO, "b2beef0")
    assert (
        e.value.message.startswith("on h2: another run holds the lock")
        and "corkboard-django v9 by ci" in e.value.message
    )
    assert fleet.server("h1").lock_token is None and fleet.server("h3").lock_token is None
    assert all(web(fleet, h) == {"blue": "a1c0ffe"} for h in HOSTS)


def test_a_canary_across_hosts_ends_on_every_host_at_one_request(fleet):
    serving(fleet, "a1c0ffe")
    marker = fleet.cfg.services[CO].marker

    def ask_on_h3(c) -> None:
        if c.argv[:3] == ("sh", "-c", cmd._ATOMIC_WRITE) and '"canary": {' in c.argv[-1]:
            fleet.clock.at(5, lambda: fleet.server("h3").files.__setitem__(marker, json.dumps({"actor": "bob"})))

    fleet.remotes["h3"].on(lambda c: True, ask_on_h3)
    assert fleet.deploy(CO, "b2beef0", canary=120) == 1
    for h in HOSTS:
        assert web(fleet, h) == {"blue": "a1c0ffe"}, h
        st = fleet.server(h).state(CO)
        assert st["active"] == "blue" and st["canary"] is None and "b2beef0" in st["rejected"]
        assert "reason=requested" in fleet.server(h).history()[-1]


def test_a_rollback_across_hosts_goes_to_the_same_version_everywhere(fleet):
    serving(fleet, "a1c0ffe")
    serving(fleet, "b2beef0")
    assert fleet.rollback(CO) == 0, fleet.text()
    for h in HOSTS:
        assert web(fleet, h) == {"blue": "a1c0ffe"}
        assert (
            "from=green:b2beef0" in fleet.server(h).history()[-1] and "hosts=h1,h2,h3" in fleet.server(h).history()[-1]
        )


def test_a_rollback_failing_on_one_host_switches_the_others_back(fleet):
    serving(fleet, "a1c0ffe")
    serving(fleet, "b2beef0")
    fleet.server("h2").apps["a1c0ffe"] = App(status=500)  # the old version no longer starts on h2
    assert fleet.rollback(CO) == 1
    for h in HOSTS:
        assert web(fleet, h) == {"green": "b2beef0"}, h
        assert fleet.server(h).state(CO)["active"] == "green"


def test_hosts_are_named_once_and_a_service_names_them():
    base = '[server]\nhost = "vps"\n[hosts.a]\nhost = "10.0.0.1"\nport = 2222\n[hosts.b]\nhost = "10.0.0.2"\n'
    svc = (
        '[services.web]\ndir = "/w"\nproject = "w"\ncompose_files = ["c.yml"]\nunits = ["w-{color}"]\n'
        "ports = { blue = 1, green = 2 }\n"
    )
    cfg = parse(base + svc + 'hosts = ["b", "a"]\n')
    assert [(t.name, t.host, t.port, t.user) for t in cfg.targets(cfg.services["web"])] == [
        ("b", "10.0.0.2", 22, "deploy"),
        ("a", "10.0.0.1", 2222, "deploy"),
    ]
    assert [t.host for t in parse(base + svc).targets(parse(base + svc).services["web"])] == ["vps"]
    with pytest.raises(ConfigError, match=r"services.web.hosts\[0\]: 'c' is not a host \(known: a, b\)"):
        parse(base + svc + 'hosts = ["c"]\n')
    with pytest.raises(ConfigError, match="hosts.x.host: 'root@h' is not a host"):
        parse(base + '[hosts.x]\nhost = "root@h"\n' + svc)


def test_a_service_on_one_named_host_deploys_there_not_to_the_server_host(cfg, monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    one = Fleet(cfg, CO, names=("h2",))  # only h2 exists: reaching [server] would fail
    assert one.deploy(CO, "a1c0ffe") == 0, one.text()
    assert {n.split("-")[3] for n in one.server("h2").running(CO) if "-web-" in n} == {"blue"}
    assert "[h2]" not in one.text()  # one host: the output is a single host's


def test_a_dry_run_across_hosts_shows_each_hosts_plan_and_changes_nothing(fleet):
    serving(fleet, "a1c0ffe")
    before = {h: fleet.server(h).history() for h in HOSTS}
    assert fleet.deploy_dry(CO, "b2beef0") == 0, fleet.text()
    for h in HOSTS:
        assert f"[{h}] " in fleet.text() and fleet.server(h).history() == before[h]
        assert web(fleet, h) == {"blue": "a1c0ffe"}


def test_history_across_hosts_is_merged_by_time_and_an_unreachable_host_is_named(fleet):
    serving(fleet, "a1c0ffe")
    serving(fleet, "b2beef0")

    def connect(server, **kw):
        if server.label == "h3":
            raise PublicWorksError("cannot reach deploy@10.9.0.4:22: timed out")
        return fleet.connect(server)

    text, code = fleet_mod.history(fleet.cfg, CO, 20, False, connect_to=connect)
    lines = text.splitlines()
    assert code == 1 and lines[0].split()[:2] == ["HOST", "TIME"]
    assert [ln.split()[0] for ln in lines[1:5]] == ["h1", "h2", "h1", "h2"]  # by time, each host's order kept
    assert lines[-1] == "h3: UNREACHABLE, its lines are missing: cannot reach deploy@10.9.0.4:22: timed out"
    rows = [
        json.loads(ln) for ln in fleet_mod.history(fleet.cfg, CO, 2, True, connect_to=fleet.connect)[0].splitlines()
    ]
    assert [(r["host"], r["version"]) for r in rows] == [("h2", "b2beef0"), ("h3", "b2beef0")]


def test_host_picks_one_of_the_services_hosts(fleet):
    svc = fleet.cfg.services[CO]
    assert fleet.cfg.target(svc, None).label == "h1" and fleet.cfg.target(svc, "h3").label == "h3"
    with pytest.raises(ConfigError, match="--host h9: civic-observer runs on h1, h2, h3"):
        fleet.cfg.target(svc, "h9")

"""Services on several hosts, against the three-VPS sandbox (sandbox/sandbox up --hosts 3): a real sshd,
Docker and Caddy on each of 10.200.0.2-4, one registry. They need all three VPSes at once, so they run
alone, after the parallel run: `pytest -m multihost` (./dev test does).

sandbox/services-hosts.toml: civic-observer on vps1, vps2, vps3; corkboard's django on vps2, vps3.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from publicworks import config, lock, remote
from tests.support.load import Load
from tests.support.sandbox import (
    ENV,
    ROOT,
    SB,
    SITES,
    VPS,
    Watched,
    answer,
    kill,
    poll,
    pw,
    pw_env,
    pw_start,
    sshd_accepted,
)

pytestmark = pytest.mark.multihost

CO, DJ = "civic-observer", "corkboard-django"
CONFIG = ROOT / "sandbox" / "services-hosts.toml"
FLEET = (VPS(1), VPS(2), VPS(3))


def env(**extra: str) -> dict[str, str]:
    return pw_env(**{"PUBLICWORKS_CONFIG": str(CONFIG), **extra})


def deploy(version: str, service: str = CO, *extra: str):
    return pw("deploy", "--service", service, "--version", version, "--canary", "0", *extra, env=env(), timeout=300)


def web(v: VPS, service: str = CO) -> dict[str, str]:
    """color -> version of the service's running web containers on one VPS."""
    unit = "web" if service == CO else "django"
    project = "civic-observer" if service == CO else "corkboard"
    return {
        name.split("-")[-2]: version
        for name, version in v.running(project).items()
        if name.startswith(f"{project}-{unit}-")
    }


def serves(v: VPS, version: str, service: str = CO) -> bool:
    return f" version={version} " in answer(service, ip=v.ip)


def line_of(out: str, host: str, step: str) -> int:
    """The number of the line where `host` began `step` (e.g. "[vps2] [5/10] start: ...")."""
    lines = out.splitlines()
    return next(i for i, line in enumerate(lines) if line.startswith(f"[{host}] [") and f"] {step}:" in line)


def lock_held(n: int) -> bool:
    server = config.load(CONFIG).hosts[f"vps{n}"]
    r = remote.connect(server)
    try:
        return lock.probe(r, server.lock_file).held
    finally:
        r.close()


@pytest.fixture
def fleet(monkeypatch) -> tuple[VPS, VPS, VPS]:
    import os

    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        pytest.fail("the multihost tests need all three VPSes to themselves: run them alone, pytest -m multihost")
    for v in FLEET:
        try:
            v.sh("true", timeout=10)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"VPS {v.n} of the sandbox is not reachable ({e}); start three: sandbox/sandbox up --hosts 3")
        v.clean()
    for k, val in ENV.items():
        monkeypatch.setenv(k, val)  # for lock_held's own connections
    return FLEET


def on_all(version: str, service: str = CO) -> None:
    r = deploy(version, service)
    assert r.code == 0, r.text
    hosts = FLEET if service == CO else FLEET[1:]
    for v in hosts:
        poll(lambda v=v: serves(v, version, service), what=f"vps{v.n}'s Caddy to serve {version}")


def test_a_rolling_deploy_and_its_rollback_drop_no_request_on_any_of_three_caddys(fleet):
    on_all("a1c0ffe")
    before = [sshd_accepted(v.n) for v in fleet]
    loads = [Load(f"http://{v.ip}/", SITES[CO], clients=4, cookie_clients=2, rate=40) for v in fleet]
    for load in loads:
        load.__enter__()
    try:
        time.sleep(1)
        r = deploy("b2beef0")
        assert r.code == 0, r.text
        rb = pw("rollback", "--service", CO, env=env(), timeout=300)
        time.sleep(1)
    finally:
        for load in loads:
            load.__exit__(None, None, None)
    assert rb.code == 0, rb.text
    assert [sshd_accepted(v.n) - b for v, b in zip(fleet, before, strict=True)] == [2, 2, 2]  # one per host per run
    # host by host: each host's old color stopped before the next host's new color started
    order = [line_of(r.out, h, step) for h in ("vps1", "vps2", "vps3") for step in ("start", "stop")]
    assert order == sorted(order), r.out
    assert "deployed civic-observer b2beef0 on vps1,vps2,vps3" in r.out
    assert "rolled back civic-observer to a1c0ffe on vps1,vps2,vps3" in rb.out
    for v, load in zip(fleet, loads, strict=True):
        report = load.report()
        assert len(report.samples) > 100 and report.failures == [], f"vps{v.n}: {report.describe()}"
        assert web(v) == {"blue": "a1c0ffe"} and v.state(CO)["active"] == "blue"
        last = v.history()[-2:]
        assert "| b2beef0 | success | green |" in last[0] and last[0].endswith("| hosts=vps1,vps2,vps3")
        assert "| a1c0ffe | rollback | blue |" in last[1] and last[1].endswith("| hosts=vps1,vps2,vps3")
        assert ("| migrations=ran |" in last[0]) == (v.n == 1)  # once, on the service's first host
        print(f"vps{v.n}: {report.describe()}")

    # status: one section per host, every color of every service there
    st = pw("status", "--json", env=env())
    assert st.code == 0, st.text
    rows = {h["host"]: h for h in json.loads(st.out)["hosts"]}
    assert set(rows) == {"vps1", "vps2", "vps3"}
    text = pw("status", env=env()).out
    assert text.index("== vps1") < text.index("== vps2") < text.index("== vps3")
    # history: every host's lines, merged by time, with the host they came from
    h = pw("history", "--service", CO, "--json", env=env())
    entries = [json.loads(line) for line in h.out.splitlines()]
    assert [(e["host"], e["version"]) for e in entries[-3:]] == [(f"vps{n}", "a1c0ffe") for n in (1, 2, 3)] or {
        e["host"] for e in entries[-3:]
    } == {"vps1", "vps2", "vps3"}
    assert all(a["time"] <= b["time"] for a, b in zip(entries, entries[1:], strict=False))
    table = pw("history", "--service", CO, env=env()).out
    assert "HOST" in table.splitlines()[0] and table.count("vps2") >= 3


def test_a_version_broken_on_host_2_switches_host_1_back_and_leaves_host_3_untouched(fleet):
    on_all("a1c0ffe")
    vps2 = fleet[1]
    green = "civic-observer/docker-compose.green.yml"
    original = vps2.sh(f"cat {green}")
    vps2.put(green, original.replace("      APP_COLOR: green\n", "      APP_COLOR: green\n      APP_KIND: broken\n"))
    try:
        r = deploy("b2beef0")
    finally:
        vps2.put(green, original)
    assert r.code == 1, r.text
    assert "failed on vps2" in r.out
    assert "not rolled out on vps1: switched back" in r.out and "not rolled out on vps3: untouched" in r.out
    for v in fleet:
        assert web(v) == {"blue": "a1c0ffe"}, f"vps{v.n}: {v.running('civic-observer')}"
        assert serves(v, "a1c0ffe") and v.state(CO)["active"] == "blue"
        assert "| b2beef0 | failure |" in v.history()[-1]
        assert not lock_held(v.n)
    assert "outcome=switched back" in fleet[0].history()[-1] and "outcome=untouched" in fleet[2].history()[-1]
    assert "failed_on=vps2" in fleet[0].history()[-1]


def test_sigkill_mid_roll_frees_every_lock_and_every_host_serves(fleet, tmp_path):
    on_all("a1c0ffe")
    run = Watched("deploy", "--service", CO, "--version", "b2beef0", "--canary", "0", env=env())
    run.wait_for("[vps2] [5/10] start", timeout=120)  # vps1 has switched; vps2 is starting
    kill(run.p)
    poll(lambda: not any(lock_held(n) for n in (1, 2, 3)), timeout=10, every=0.1, what="every lock to be freed")
    for v in fleet:
        poll(lambda v=v: " version=" in answer(CO, ip=v.ip), what=f"vps{v.n} to serve")
    assert web(fleet[0]) == {"green": "b2beef0"}  # switched before the kill; its state is not written yet
    assert web(fleet[2]) == {"blue": "a1c0ffe"}
    # what runs wins: the next deploy takes each host as it finds it and finishes the job (all three at
    # once: hosts_at_once = 3)
    at_once = CONFIG.read_text().replace(
        'hosts = ["vps1", "vps2", "vps3"]\n', 'hosts = ["vps1", "vps2", "vps3"]\nhosts_at_once = 3\n'
    )
    (tmp_path / "services.toml").write_text(at_once)
    r = pw(
        "deploy",
        "--service",
        CO,
        "--version",
        "c3d00d0",
        "--canary",
        "0",
        env=env(PUBLICWORKS_CONFIG=str(tmp_path / "services.toml")),
    )
    assert r.code == 0, r.text
    assert line_of(r.out, "vps3", "start") < line_of(r.out, "vps1", "stop")  # one batch of three
    for v in fleet:
        st = v.state(CO)
        assert st["versions"][st["active"]] == "c3d00d0" and serves(v, "c3d00d0")
        assert list(web(v).values()) == ["c3d00d0"]


def test_two_overlapping_multi_host_deploys_started_together_one_proceeds_the_other_exits_3(fleet):
    a = pw_start("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0", env=env())
    b = pw_start("deploy", "--service", DJ, "--version", "a1c0ffe", "--canary", "0", env=env())
    out_a, _ = a.communicate(timeout=300)
    out_b, _ = b.communicate(timeout=300)
    codes = {a.returncode, b.returncode}
    assert codes == {0, 3}, out_a + out_b
    loser, winner = (CO, DJ) if a.returncode == 3 else (DJ, CO)
    text = out_a if a.returncode == 3 else out_b
    assert "another run holds the lock" in text and f"deploy of {winner} a1c0ffe by tests@runner" in text
    assert not any(lock_held(n) for n in (1, 2, 3))
    served = FLEET if winner == CO else FLEET[1:]
    for v in served:
        st = v.state(winner) or {}
        assert st["versions"][st["active"]] == "a1c0ffe"
    for v in FLEET:
        assert v.state(loser) is None  # the one that stopped changed nothing anywhere


def test_freeze_status_and_history_across_hosts_with_one_host_down(fleet):
    on_all("a1c0ffe", DJ)
    r = pw("freeze", "--service", DJ, "--reason", "db migration by hand", env=env())
    assert r.code == 0 and [ln.split(":")[0] for ln in r.out.splitlines()] == ["vps2", "vps3"], r.text
    blocked = deploy("b2beef0", DJ)
    assert blocked.code == 3 and "db migration by hand" in blocked.text
    assert pw("unfreeze", "--service", DJ, env=env()).code == 0
    fleet[2].sh("docker exec corkboard-django-blue-1 sh -c 'echo marker-on-vps3 > /proc/1/fd/1'")
    logs = pw("logs", "--service", DJ, "--host", "vps3", "--tail", "5", env=env())
    assert logs.code == 0 and "marker-on-vps3" in logs.out, logs.text
    wrong = pw("logs", "--service", DJ, "--host", "vps1", env=env())
    assert wrong.code == 2 and "--host vps1: corkboard-django runs on vps2, vps3" in wrong.err

    pid = (SB / "vps3" / "sshd.pid").read_text().strip()
    subprocess.run(["kill", pid], check=True)
    try:
        poll(lambda: not Path(f"/proc/{pid}").exists(), what="vps3's sshd to stop")
        st = pw("status", "--service", DJ, env=env())
        h = pw("history", "--service", DJ, env=env())
        d = pw("doctor", "--service", DJ, env=env())
    finally:
        subprocess.run([str(ROOT / "sandbox" / "sandbox"), "revive", "3"], check=True, capture_output=True)
    assert st.code == 1 and "== vps2" in st.out and "== vps3\nUNREACHABLE: " in st.out, st.text
    assert d.code == 1 and "== vps2\n" in d.out and "== vps3\nBAD  ssh: " in d.out, d.text
    assert h.code == 1 and "\nvps2 " in h.out and "vps3: UNREACHABLE, its lines are missing" in h.out, h.text

"""`docker ps` into per-color views: only what public-works owns or may adopt, never a stranger's container."""

from publicworks.observe import conflicts, parse_ps, view
from publicworks.plan import deploy_plan
from publicworks.state import State

PS = "\n".join(
    [
        "c1\tcivic-observer-web-blue-1\t127.0.0.1:5000/civic-observer:a1c0ffe\trunning\tcivic-observer\tweb-blue\t127.0.0.1:8888->8000/tcp",
        "c2\tcivic-observer-worker-blue-1\t127.0.0.1:5000/civic-observer:a1c0ffe\trunning\tcivic-observer\tworker-blue\t",
        "c3\tcivic-observer-web-green-1\t127.0.0.1:5000/civic-observer:b2beef0\texited\tcivic-observer\tweb-green\t",
        "c4\tcivic-observer-db-1\t127.0.0.1:5000/sandbox-postgres:15\trunning\tcivic-observer\tdb\t",
        "c5\told-web\tregistry.example:5000/co@sha256:abc\trunning\t\t\t127.0.0.1:8889->8000/tcp",
        "garbage line",
    ]
)


def test_parse_ps():
    cs = parse_ps(PS)
    assert [c.id for c in cs] == ["c1", "c2", "c3", "c4", "c5"]
    assert cs[0].holds(8888) and cs[0].version == "a1c0ffe" and cs[0].running
    assert cs[4].version is None and cs[4].holds(8889)
    assert not cs[2].running


def test_view_separates_colors_and_adopts_a_container_on_exactly_loopback_and_the_port(co):
    v = view(co, parse_ps(PS))
    assert [c.id for c in v["blue"].containers] == ["c1", "c2"] and v["blue"].running and v["blue"].version == "a1c0ffe"
    assert [c.id for c in v["green"].containers] == ["c3"]
    assert [c.id for c in v["green"].adopted] == ["c5"] and v["green"].running
    assert v["green"].version == "b2beef0"  # the stopped unit's tag; the adopted one is untagged


def one(line: str) -> str:
    return "\t".join(("x9", "grafana", "grafana/grafana:10", "running", "monitoring", "grafana", line))


def test_a_stranger_on_another_address_is_a_conflict_never_adopted(co):
    ps = one("10.0.0.5:8888->3000/tcp")
    v = view(co, parse_ps(ps))
    assert v["blue"].adopted == () and [c.name for c in v["blue"].conflicts] == ["grafana"]
    assert not v["blue"].running
    msg = conflicts(v)[0]
    assert "port 8888 (blue) is held by grafana (compose project 'monitoring', image grafana/grafana:10)" in msg
    p = deploy_plan(co, v, State("civic-observer"), "v2")
    assert p.stop_old == () and p.conflicts  # nothing of it would ever be stopped


def test_port_ranges_and_wildcard_addresses_are_seen(co):
    for ports in (
        "0.0.0.0:8880-8890->8000-8010/tcp",
        "0.0.0.0:8888->8000/tcp, :::8888->8000/tcp",
        "127.0.0.1:8880-8890->8000-8010/tcp",
    ):
        v = view(co, parse_ps(one(ports)))
        assert [c.name for c in v["blue"].conflicts] == ["grafana"], ports
        assert [c.name for c in v["green"].conflicts] == ["grafana"] or "8888->" in ports, ports


def test_exactly_loopback_and_the_port_is_adopted(co):
    v = view(co, parse_ps(one("127.0.0.1:8888->3000/tcp")))
    assert [c.name for c in v["blue"].adopted] == ["grafana"] and v["blue"].conflicts == ()


def test_a_stopped_stranger_holds_nothing(co):
    ps = one("10.0.0.5:8888->3000/tcp").replace("running", "exited")
    assert conflicts(view(co, parse_ps(ps))) == []

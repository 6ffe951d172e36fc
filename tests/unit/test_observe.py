from publicworks.observe import parse_ps, view

PS = "\n".join([
    "c1\tcivic-observer-web-blue-1\t127.0.0.1:5000/civic-observer:a1c0ffe\trunning\tcivic-observer\tweb-blue\t127.0.0.1:8888->8000/tcp",
    "c2\tcivic-observer-worker-blue-1\t127.0.0.1:5000/civic-observer:a1c0ffe\trunning\tcivic-observer\tworker-blue\t",
    "c3\tcivic-observer-web-green-1\t127.0.0.1:5000/civic-observer:b2beef0\texited\tcivic-observer\tweb-green\t",
    "c4\tcivic-observer-db-1\t127.0.0.1:5000/sandbox-postgres:15\trunning\tcivic-observer\tdb\t",
    "c5\told-web\tregistry.example:5000/co@sha256:abc\trunning\t\t\t127.0.0.1:8889->8000/tcp, [::1]:8889->8000/tcp",
    "garbage line",
])


def test_parse_ps():
    cs = parse_ps(PS)
    assert [c.id for c in cs] == ["c1", "c2", "c3", "c4", "c5"]
    assert cs[0].ports == (8888,) and cs[0].version == "a1c0ffe" and cs[0].running
    assert cs[4].version is None and cs[4].ports == (8889,)
    assert not cs[2].running


def test_view_separates_colors_and_adopts_foreign_port_holders(co):
    v = view(co, parse_ps(PS))
    assert [c.id for c in v["blue"].containers] == ["c1", "c2"] and v["blue"].running and v["blue"].version == "a1c0ffe"
    assert [c.id for c in v["green"].containers] == ["c3"]
    assert [c.id for c in v["green"].adopted] == ["c5"] and v["green"].running
    assert v["green"].version == "b2beef0"  # the stopped unit's tag; the adopted one is untagged

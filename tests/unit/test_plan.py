"""Which color, which commands, in which order: every branch, without SSH."""

from publicworks import commands as cmd
from publicworks.observe import parse_ps, view
from publicworks.plan import decide, deploy_plan
from publicworks.state import Canary, Slot, State


def row(cid, unit, tag, state="running", port=None, project="civic-observer"):
    ports = f"127.0.0.1:{port}->8000/tcp" if port and state == "running" else ""
    return f"{cid}\t{project}-{unit}-1\t127.0.0.1:5000/civic-observer:{tag}\t{state}\t{project}\t{unit}\t{ports}"


def views(co, *rows):
    return view(co, parse_ps("\n".join(rows)))


def test_first_deploy_starts_blue_and_stops_nothing(co):
    p = deploy_plan(co, views(co), State("civic-observer"), "abc123")
    assert (p.target, p.target_port, p.old, p.stop_old) == ("blue", 8888, None, ())
    assert p.start == cmd.up(co, "blue", "abc123")
    assert p.notes == ()


def test_switch_targets_the_color_not_serving_and_stops_only_the_old_units(co):
    state = State("civic-observer", active="blue", versions={"blue": "a1"})
    p = deploy_plan(co, views(co, row("b1", "web-blue", "a1", port=8888), row("b2", "worker-blue", "a1")), state, "b2")
    assert (p.target, p.old) == ("green", Slot("blue", "a1"))
    assert p.stop_old == (cmd.stop(co, "blue", "a1"),)
    assert [step.value for step, _ in p.steps()] == [
        "pull",
        "migrate",
        "start",
        "health",
        "switch",
        "canary",
        "stop",
        "record",
    ]
    assert p.steps()[0][1] == [cmd.pull(co, "green", "b2")]
    assert p.stop_target == cmd.stop(co, "green", "b2")


def test_switch_back_from_green(co):
    state = State("civic-observer", active="green", versions={"green": "g1", "blue": "b0"})
    p = deploy_plan(
        co, views(co, row("g", "web-green", "g1", port=8889), row("b", "web-blue", "b0", "exited")), state, "n"
    )
    assert (p.target, p.old) == ("blue", Slot("green", "g1"))


def test_adopts_a_service_running_outside_public_works(co):
    foreign = "x1\tcivic-observer_web_1\tcivic-observer:legacy\trunning\tlegacy\tweb\t127.0.0.1:8888->8000/tcp"
    d = decide(views(co, foreign), State("civic-observer"))
    assert (d.serving, d.target, d.serving_version) == ("blue", "green", "legacy")
    assert "adopted as blue" in d.notes[0]
    p = deploy_plan(co, views(co, foreign), State("civic-observer"), "v2")
    assert p.stop_old == (cmd.stop_containers(["x1"], 30),)


def test_reality_wins_over_a_disagreeing_state(co):
    state = State("civic-observer", active="blue", versions={"blue": "a", "green": "b"})
    d = decide(views(co, row("g", "web-green", "b", port=8889), row("b", "web-blue", "a", "exited")), state)
    assert (d.serving, d.target) == ("green", "blue")
    assert d.notes == ("the state says blue is active, but only green runs: going by what runs",)


def test_nothing_runs_but_state_remembers_keeps_the_last_good_color(co):
    d = decide(views(co), State("civic-observer", active="green", versions={"green": "g"}))
    assert (d.serving, d.target) == (None, "blue")
    assert "nothing runs" in d.notes[0]


def test_unfinished_canary_counts_the_new_color_as_serving(co):
    canary = Canary(Slot("blue", "a"), Slot("green", "b"), "t0", "t1")
    state = State("civic-observer", active="blue", versions={"blue": "a", "green": "b"}, canary=canary)
    rows = (row("b", "web-blue", "a", port=8888), row("g", "web-green", "b", port=8889))
    d = decide(views(co, *rows), state)
    assert (d.serving, d.target, d.serving_version) == ("green", "blue", "b")
    assert "left unfinished" in d.notes[0]


def test_both_running_without_a_canary_goes_by_the_state(co):
    rows = (row("b", "web-blue", "a", port=8888), row("g", "web-green", "b", port=8889))
    d = decide(views(co, *rows), State("civic-observer", active="blue"))
    assert (d.serving, d.target) == ("blue", "green")


# -- rollback_plan: pure, from the views, the state and the history ---------------------------------------

from publicworks import history  # noqa: E402
from publicworks.plan import Refusal, RollbackPlan, rejected, rollback_plan  # noqa: E402


def line(version: str, status: str, color: str, **fields: str) -> history.Entry:
    return history.Entry("2026-11-26T10:00:00Z", "civic-observer", version, status, color, "ci", dict(fields))


def serving_green(co, version="b2", blue="a1"):
    return views(co, row("g", "web-green", version, port=8889), row("b", "web-blue", blue, "exited"))


def test_rollback_goes_to_the_newest_earlier_version_never_rolled_back_from(co):
    entries = [
        line("a1", "success", "blue"),
        line("x9", "success", "green"),
        line("a1", "rollback", "blue", **{"from": "green:x9"}),
        line("b2", "success", "green"),
    ]
    p = rollback_plan(co, serving_green(co), State("civic-observer"), entries, None, False)
    assert isinstance(p, RollbackPlan)
    assert (p.to.color, p.to.version, p.serving.version, p.reason) == ("blue", "a1", "b2", "previous")
    assert p.start == cmd.up(co, "blue", "a1") and p.stop_serving == (cmd.stop(co, "green", "b2"),)
    assert rejected(State("civic-observer"), entries) == {"x9": "rolled back (requested) at 2026-11-26T10:00:00Z by ci"}


def test_nothing_to_roll_back_to_lists_what_to_could_name(co):
    entries = [
        line("a1", "success", "blue"),
        line("b2", "success", "green"),
        line("a1", "rollback", "blue", **{"from": "green:b2"}),
    ]
    v = views(co, row("b", "web-blue", "a1", port=8888))
    r = rollback_plan(co, v, State("civic-observer"), entries, None, False)
    assert isinstance(r, Refusal) and not r.consent
    assert "nothing to roll back to" in r.reason and "--to could name: b2 (rejected: rolled back" in r.reason


def test_to_a_rejected_version_or_across_migrations_needs_consent(co):
    entries = [
        line("a1", "success", "blue"),
        line("b2", "success", "green", migrations="ran"),
        line("c3", "success", "blue", migrations="ran"),
        line("b2", "rollback", "green", **{"from": "blue:c3"}),
    ]
    v = serving_green(co, "b2", "c3")
    r = rollback_plan(co, v, State("civic-observer"), entries, "c3", False)
    assert isinstance(r, Refusal) and r.consent and "c3 was rejected" in r.reason
    r = rollback_plan(co, v, State("civic-observer"), entries, "a1", False)
    assert isinstance(r, Refusal) and r.consent and "older than deploy(s) that ran migrations: b2, c3" in r.reason
    p = rollback_plan(co, v, State("civic-observer"), entries, "a1", True)
    assert isinstance(p, RollbackPlan) and any("proceeding: --yes" in w for w in p.warnings)
    plain = rollback_plan(co, v, State("civic-observer"), entries, None, False)
    assert isinstance(plain, RollbackPlan) and plain.to.version == "a1"  # c3 is rejected: one step further back
    assert plain.warnings == (
        "a1 is older than deploy(s) that ran migrations: b2, c3. a1 would run against the migrated schema",
    )


def test_with_no_history_the_states_previous_is_the_way_back(co):
    state = State("civic-observer", active="green", versions={"green": "b2", "blue": "a1"}, previous=Slot("blue", "a1"))
    p = rollback_plan(co, serving_green(co), state, [], None, False)
    assert isinstance(p, RollbackPlan) and p.to.version == "a1"
    rej = State(
        "civic-observer", active="green", versions={"green": "b2"}, previous=Slot("blue", "a1"), rejected={"a1": "no"}
    )
    assert isinstance(rollback_plan(co, serving_green(co), rej, [], None, False), Refusal)

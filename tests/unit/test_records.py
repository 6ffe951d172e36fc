"""State transitions, the history format, and reading the lock without taking it."""

import json

from publicworks import history, state
from publicworks.lock import Holder, parse_probe
from publicworks.state import Slot, State


def test_history_line_has_the_designs_format():
    e = history.Entry("2024-11-27T14:32:01Z", "civic-observer", "abc123", "success", "green", "ci:run/1",
                      {"migrations": "ran"})
    assert e.line() == "2024-11-27T14:32:01Z | civic-observer | abc123 | success | green | ci:run/1 | migrations=ran"
    assert history.parse_line(e.line()) == e


def test_history_reads_the_designs_own_lines_and_keeps_garbage():
    text = "2024-11-27T14:32:01 | civic-observer | abc123 | success | green\nnot a history line\n\n"
    a, b = history.parse(text)
    assert (a.service, a.version, a.status, a.color, a.actor) == ("civic-observer", "abc123", "success", "green", "")
    assert not b.parsed and b.raw == "not a history line"


def test_history_fields_cannot_break_the_line():
    e = history.entry("s", "v", "failure", "blue", "evil | actor\nnext", step="health")
    assert e.line().count("\n") == 0 and e.line().split(" | ")[5] == "evil / actor next"


def test_state_round_trip_and_transitions():
    s0 = State("co")
    s1 = s0.deployed("blue", "a", None, migrated=True)
    s2 = s1.canary_started(Slot("blue", "a"), Slot("green", "b"), "t0", "t1", "me", migrated=False)
    assert s2.active == "blue" and s2.canary.new == Slot("green", "b")
    assert state.parse(s2.to_json(), "co") == s2
    s3 = s2.deployed("green", "b", Slot("blue", "a"), migrated=False)
    assert (s3.active, s3.previous, s3.canary, s3.migrated) == ("green", Slot("blue", "a"), None, ("a",))
    s4 = s3.rolled_back(Slot("blue", "a"), Slot("green", "b"))
    assert (s4.active, s4.active_version, s4.previous) == ("blue", "a", Slot("green", "b"))


def test_state_parse_tolerates_empty_and_rejects_garbage():
    assert state.parse("", "co") == State("co")
    try:
        state.parse("[1]", "co")
    except ValueError:
        pass
    else:
        raise AssertionError("a non-object state must not parse")


PROC_LOCKS = """1: POSIX  ADVISORY  WRITE 812 00:19:622 0 EOF
2: FLOCK  ADVISORY  WRITE 4142 fd:01:1059 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4244 fd:01:1059 0 EOF
"""


def test_lock_probe_finds_the_holder_by_inode():
    holder = Holder("deploy", "civic-observer", "abc", "ci", "2026-01-01T00:00:00Z")
    info = parse_probe(f"inode=1059\n{PROC_LOCKS}--- holder\n{holder.to_json()}\n")
    assert info.held and info.holder == holder
    assert info.describe() == "held by deploy of civic-observer abc by ci since 2026-01-01T00:00:00Z"


def test_lock_probe_free_when_no_flock_on_that_inode():
    assert not parse_probe(f"inode=999\n{PROC_LOCKS}--- holder\n{json.dumps({'actor': 'old'})}\n").held
    assert not parse_probe(f"inode=\n{PROC_LOCKS}--- holder\n").held  # no lock file yet

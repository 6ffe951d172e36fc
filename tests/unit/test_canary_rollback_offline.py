"""The canary and `rollback`, through the fake server: what stops, what the state says, what the history
holds, and which version the undo button brings back (never a rejected one without --yes)."""

from __future__ import annotations

import json
import signal

from publicworks import commands as cmd
from publicworks.lock import Holder
from tests.support.fake import App, World

CO = "civic-observer"
BLUE_A = {"civic-observer-web-blue-1": "a1c0ffe", "civic-observer-worker-blue-1": "a1c0ffe"}


def serving(world: World, *versions: str, service: str = CO) -> None:
    for v in versions:
        assert world.deploy(service, v) == 0, world.text()
        world.clock.advance(60)


def when_canary_starts(world: World, action, after: float = 3.0) -> None:
    """Run `action` `after` seconds into the canary (once its state is written)."""

    def is_canary_write(c) -> bool:
        return c.argv[:3] == ("sh", "-c", cmd._ATOMIC_WRITE) and '"canary": {' in c.argv[-1]

    fired = []

    def hook(c):
        if not fired:
            fired.append(1)
            world.clock.at(after, action)

    world.remote.on(is_canary_write, hook)


def request_rollback(world: World, who: str = "alice") -> None:
    world.server.files[world.cfg.services[CO].marker] = json.dumps({"actor": who}) + "\n"


def test_a_rollback_request_ends_the_canary_and_rejects_the_new_version(world, co):
    serving(world, "a1c0ffe")
    when_canary_starts(world, lambda: request_rollback(world))
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    assert world.server.running(CO) == BLUE_A
    assert cmd.stop(co, "blue", "a1c0ffe") not in world.remote.mutations()  # the old color never stopped
    st = world.server.state(CO)
    assert (st["active"], st["canary"]) == ("blue", None) and "b2beef0" in st["rejected"]
    h = world.server.history()[-1].split(" | ")
    assert h[1:5] == [CO, "a1c0ffe", "rollback", "blue"] and "reason=requested" in h and "from=green:b2beef0" in h
    assert "rollback requested by alice" in world.text()


def test_a_version_turning_unhealthy_is_rolled_back_automatically(world):
    serving(world, "a1c0ffe")
    world.server.apps["b2beef0"] = App(sick_after=40)  # healthy through the switch, sick mid-canary
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    assert world.server.running(CO) == BLUE_A
    assert "failed 3 health probes in a row" in world.text()
    assert "reason=automatic" in world.server.history()[-1]
    assert world.server.state(CO)["rejected"]["b2beef0"].startswith("rolled back (automatic) during its canary")


def test_a_completed_canary_stops_the_old_color(world, co):
    serving(world, "a1c0ffe")
    assert world.deploy(CO, "b2beef0", canary=30) == 0
    assert world.server.running(CO)[
        "civic-observer-web-green-1"
    ] == "b2beef0" and "civic-observer-web-blue-1" not in world.server.running(CO)
    assert world.server.state(CO)["canary"] is None


def test_caddy_calling_the_new_color_unhealthy_at_the_end_of_the_canary_keeps_the_old(world):
    serving(world, "a1c0ffe")
    when_canary_starts(world, lambda: world.server.caddy.blind.add("127.0.0.1:8889"), after=5)
    assert world.deploy(CO, "b2beef0", canary=30) == 1
    assert world.server.running(CO) == BLUE_A
    assert "at the end of its canary Caddy calls it unhealthy (green): blue is not stopped" in world.text()
    assert world.server.state(CO)["active"] == "blue" and world.server.state(CO)["canary"] is None


def test_sigterm_during_the_canary_leaves_both_serving_and_the_canary_recorded(world):
    serving(world, "a1c0ffe")
    when_canary_starts(world, lambda: signal.raise_signal(signal.SIGTERM))
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    assert world.server.running(CO)["civic-observer-web-green-1"] == "b2beef0"
    assert world.server.running(CO)["civic-observer-web-blue-1"] == "a1c0ffe"
    assert world.server.state(CO)["canary"]["new"] == {"color": "green", "version": "b2beef0"}
    assert "canary=unfinished" in world.server.history()[-1] and "UNFINISHED" in world.text()
    # the undo button then ends it
    assert world.rollback(CO) == 0
    assert world.server.running(CO) == BLUE_A
    assert "reason=unfinished-canary" in world.server.history()[-1]


def test_a_lock_lost_during_the_canary_writes_nothing_as_owner(world):
    serving(world, "a1c0ffe")
    when_canary_starts(world, world.remote.lose_lock)
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    h = world.server.history()[-1]
    assert " | aborted | " in h and "reason=lock-lost" in h
    assert world.server.state(CO)["canary"] is not None  # untouched since: the next run decides from what runs


def test_rollback_after_a_deploy_brings_the_previous_version_back_and_rejects_the_current(world, co):
    serving(world, "a1c0ffe", "b2beef0")
    mark = world.mark()
    assert world.rollback(CO) == 0
    changes = world.since(mark)
    assert changes[:2] == [cmd.up(co, "blue", "a1c0ffe"), cmd.stop(co, "green", "b2beef0")]
    assert world.server.running(CO) == BLUE_A
    st = world.server.state(CO)
    assert st["active"] == "blue" and "b2beef0" in st["rejected"]
    h = world.server.history()[-1].split(" | ")
    assert h[1:5] == [CO, "a1c0ffe", "rollback", "blue"] and "from=green:b2beef0" in h and "reason=previous" in h
    assert "migrations" not in " ".join(c.shell() for c in changes)  # never on rollback


def test_repeated_rollbacks_walk_further_back_then_refuse_listing_the_choices(world):
    dj = "corkboard-datasette"  # no migrations: nothing to consent to on the way back

    def serves() -> str:
        st = world.server.state(dj)
        return st["versions"][st["active"]]

    serving(world, "a1c0ffe", "b2beef0", "c3d00d0", service=dj)
    assert world.rollback(dj) == 0 and serves() == "b2beef0"
    world.clock.advance(30)
    assert world.rollback(dj) == 0 and serves() == "a1c0ffe"
    world.clock.advance(30)
    assert world.rollback(dj) == 2
    last = world.text().rstrip().splitlines()[-1]
    assert "nothing to roll back to" in last and "--to could name: b2beef0 (rejected:" in last
    assert "c3d00d0 (rejected:" in last
    assert "b2beef0 (rejected:" in last


def test_the_undo_button_warns_about_migrations_it_crosses_and_never_asks(world):
    serving(world, "a1c0ffe", "b2beef0", "c3d00d0")  # every civic-observer deploy runs migrations
    assert world.rollback(CO) == 0  # c3d00d0 -> b2beef0
    assert "b2beef0 is older than deploy(s) that ran migrations: c3d00d0" in world.text()
    world.clock.advance(30)
    assert world.rollback(CO) == 0  # b2beef0 -> a1c0ffe: crosses both, still one command
    assert "a1c0ffe is older than deploy(s) that ran migrations: b2beef0, c3d00d0" in world.text()


def test_after_an_automatic_canary_rollback_the_undo_button_never_brings_the_rejected_version_back(world):
    serving(world, "a1c0ffe")
    world.server.apps["b2beef0"] = App(sick_after=40)
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    world.clock.advance(10)
    assert world.rollback(CO) == 2  # a1c0ffe is the only good version, and it serves
    assert "nothing to roll back to" in world.text().splitlines()[-1]
    assert world.server.running(CO) == BLUE_A


def test_after_a_requested_canary_rollback_plain_rollback_goes_further_back(world):
    serving(world, "9a9a9a9", "a1c0ffe")
    when_canary_starts(world, lambda: request_rollback(world))
    assert world.deploy(CO, "b2beef0", canary=120) == 1
    world.clock.advance(10)
    assert world.rollback(CO) == 0
    st = world.server.state(CO)
    assert st["versions"][st["active"]] == "9a9a9a9"
    assert "b2beef0" not in world.server.running(CO).values()


def test_rollback_to_a_rejected_version_needs_yes_and_says_why(world):
    serving(world, "a1c0ffe", "b2beef0")
    assert world.rollback(CO) == 0
    world.clock.advance(30)
    assert world.rollback(CO, to="b2beef0") == 2
    assert "b2beef0 was rejected: rolled back (previous)" in world.text() and "--yes" in world.text()
    assert world.rollback(CO, to="b2beef0", yes=True) == 0
    st = world.server.state(CO)
    assert st["versions"][st["active"]] == "b2beef0" and "b2beef0" not in st["rejected"]


def test_rollback_to_across_a_migration_needs_consent_a_terminal_can_give(world):
    serving(world, "a1c0ffe", "b2beef0", "c3d00d0")  # every civic-observer deploy runs migrations
    assert world.rollback(CO, to="a1c0ffe") == 2
    assert "older than deploy(s) that ran migrations: b2beef0" in world.text()
    asked = []
    assert world.rollback(CO, to="a1c0ffe", ask=lambda q: bool(asked.append(q))) == 2  # answered no
    assert asked and "Roll back anyway? [y/N]" in asked[0]
    assert world.rollback(CO, to="a1c0ffe", ask=lambda q: True) == 0
    st = world.server.state(CO)
    assert st["versions"][st["active"]] == "a1c0ffe"


def test_rollback_to_what_serves_or_to_an_unknown_version_is_refused(world):
    serving(world, "a1c0ffe")
    assert world.rollback(CO, to="a1c0ffe") == 2
    assert world.rollback(CO, to="nosuch1") == 2
    assert "never served civic-observer" in world.text()


def test_a_rollback_whose_version_fails_its_health_check_leaves_the_current_serving(world):
    serving(world, "a1c0ffe", "b2beef0")
    world.server.apps["a1c0ffe"] = App(status=500)  # the old version is broken now (its database moved on)
    assert world.rollback(CO) == 1
    assert world.server.running(CO) == {
        "civic-observer-web-green-1": "b2beef0",
        "civic-observer-worker-green-1": "b2beef0",
    }
    assert "ROLLBACK FAILED (health)" in world.text()
    assert world.server.state(CO)["active"] == "green"
    assert "action=rollback" in world.server.history()[-1]


def canary_held_by(world: World, holder: Holder) -> dict:
    """The state records a canary of green b2beef0 beside blue a1c0ffe; another process holds the lock."""
    state = json.loads(world.server.files[world.cfg.state_file(CO)])
    state["canary"] = {
        "old": {"color": "blue", "version": "a1c0ffe"},
        "new": {"color": "green", "version": "b2beef0"},
        "started_at": "x",
        "ends_at": "y",
        "actor": "ci",
    }
    world.server.files[world.cfg.state_file(CO)] = json.dumps(state)
    world.server.lock_token = "someone-else"
    world.server.lock_holder = holder.to_json()
    return state


def test_rollback_during_a_running_canary_asks_the_deploy_and_waits(world, co):
    serving(world, "a1c0ffe")
    state = canary_held_by(world, Holder("deploy", CO, "b2beef0", "ci", "now"))

    def the_deploy_acts() -> None:
        assert co.marker in world.server.files
        del world.server.files[co.marker]
        state["canary"] = None
        world.server.files[world.cfg.state_file(CO)] = json.dumps(state)

    world.remote.on(
        lambda c: c.argv[:3] == ("sh", "-c", cmd._ATOMIC_WRITE) and c.argv[-2] == co.marker,
        lambda c: world.clock.at(1.0, the_deploy_acts) and None,
    )
    assert world.rollback(CO) == 0
    assert "rollback requested" in world.text() and "green (b2beef0) stopped; blue (a1c0ffe) serves" in world.text()


def test_rollback_while_another_service_holds_the_lock_is_busy_not_a_canary_request(world):
    serving(world, "a1c0ffe")
    canary_held_by(world, Holder("deploy", "corkboard-django", "v9", "ci", "now"))
    from publicworks.errors import LockBusy

    try:
        world.rollback(CO)
    except LockBusy as e:
        assert "deploy of corkboard-django v9 by ci" in e.message
    else:
        raise AssertionError("a rollback must not request a canary rollback from another service's deploy")
    assert world.cfg.services[CO].marker not in world.server.files

"""The deploy's promises, driven through a fake server: the exact mutating commands, and what is true after.

Every test asserts the outcome a user cares about — what runs, what the state and the history say, the
exit code — and the sequence of changes sent to the server.
"""

from __future__ import annotations

import json
import signal

import pytest

from publicworks import commands as cmd
from publicworks.commands import Command
from tests.support.fake import App, World

CO = "civic-observer"
BLUE_A = {"civic-observer-web-blue-1": "a1c0ffe", "civic-observer-worker-blue-1": "a1c0ffe"}


def first_then_second(world: World) -> None:
    assert world.deploy(CO, "a1c0ffe") == 0
    world.clock.advance(60)


def history_fields(world: World, i: int = -1) -> list[str]:
    return world.server.history()[i].split(" | ")


def test_a_first_deploy_starts_blue_and_records_it(world, co):
    mark = world.mark()
    assert world.deploy(CO, "a1c0ffe") == 0
    assert world.since(mark) == [
        cmd.pull(co, "blue", "a1c0ffe"),
        cmd.migrate(co, "blue", "a1c0ffe"),
        cmd.up(co, "blue", "a1c0ffe"),
        cmd.write_file(world.cfg.state_file(CO), world.server.files[world.cfg.state_file(CO)]),
        cmd.append_file(world.cfg.server.history_file, world.server.history()[-1] + "\n"),
    ]
    # every change went out fenced by the lock; nothing was sent unfenced
    assert all(f for c, f in zip(world.remote.ran, world.remote.fenced, strict=True) if c.mutating)
    assert world.server.running(CO) == {
        "civic-observer-web-blue-1": "a1c0ffe",
        "civic-observer-worker-blue-1": "a1c0ffe",
    }
    st = world.server.state(CO)
    assert (st["active"], st["versions"], st["canary"]) == ("blue", {"blue": "a1c0ffe"}, None)
    assert history_fields(world)[1:6] == [CO, "a1c0ffe", "success", "blue", "tests@offline"]
    assert world.server.lock_token is None  # released
    assert "Caddy not consulted (first deploy: nothing to stop)" in world.text()


def test_a_switch_waits_for_caddys_word_then_stops_the_old_color(world, co):
    first_then_second(world)
    mark = world.mark()
    assert world.deploy(CO, "b2beef0") == 0
    state = world.server.files[world.cfg.state_file(CO)]
    assert world.since(mark) == [
        cmd.pull(co, "green", "b2beef0"),
        cmd.migrate(co, "green", "b2beef0"),
        cmd.up(co, "green", "b2beef0"),
        cmd.stop(co, "blue", "a1c0ffe"),
        cmd.write_file(world.cfg.state_file(CO), state),
        cmd.append_file(world.cfg.server.history_file, world.server.history()[-1] + "\n"),
    ]
    assert world.server.running(CO) == {
        "civic-observer-web-green-1": "b2beef0",
        "civic-observer-worker-green-1": "b2beef0",
    }
    assert json.loads(state)["previous"] == {"color": "blue", "version": "a1c0ffe"}
    assert "Caddy saw green healthy" in world.text() and "(unhealthy → healthy)" in world.text()
    assert world.last_lines().startswith("deployed civic-observer b2beef0 to green (port 8889) in ")


def test_health_failing_stops_the_new_color_and_leaves_the_old_untouched(world, co):
    first_then_second(world)
    world.server.apps["dead500"] = App(status=500)
    before = world.server.state(CO)
    mark = world.mark()
    assert world.deploy(CO, "dead500") == 1
    assert world.since(mark) == [
        cmd.pull(co, "green", "dead500"),
        cmd.migrate(co, "green", "dead500"),
        cmd.up(co, "green", "dead500"),
        cmd.stop(co, "green", "dead500"),  # the undo: never the old color
        cmd.append_file(world.cfg.server.history_file, world.server.history()[-1] + "\n"),
    ]
    assert world.server.running(CO) == {
        "civic-observer-web-blue-1": "a1c0ffe",
        "civic-observer-worker-blue-1": "a1c0ffe",
    }
    assert world.server.state(CO) == before
    h = history_fields(world)
    assert h[1:5] == [CO, "dead500", "failure", "green"] and "step=health" in h and "migrations=ran" in h
    assert (
        "FAILED: civic-observer dead500 not deployed (health). Now: blue (a1c0ffe) runs; green stopped" in world.text()
    )


def test_a_failing_migration_changes_nothing_else(world, co):
    first_then_second(world)
    world.server.apps["0badm19"] = App(migrate_ok=False)
    mark = world.mark()
    assert world.deploy(CO, "0badm19") == 1
    assert [c.argv for c in world.since(mark)][:2] == [
        cmd.pull(co, "green", "0badm19").argv,
        cmd.migrate(co, "green", "0badm19").argv,
    ]
    assert cmd.up(co, "green", "0badm19") not in world.since(mark)
    assert "step=migrate" in history_fields(world) and "migrations=ran" not in history_fields(world)
    assert world.server.state(CO)["active"] == "blue"


def test_a_version_the_registry_lacks_fails_at_pull(world):
    world.server.missing.add("nosuchtag")
    assert world.deploy(CO, "nosuchtag") == 1
    assert world.server.running(CO) == {} and world.server.state(CO) is None
    assert "step=pull" in history_fields(world)


def signal_when(world: World, match, sig: signal.Signals = signal.SIGTERM) -> None:
    """Deliver `sig` to this process just before a matching command runs (as a cancelled CI job would)."""

    def fire(c: Command) -> None:
        signal.raise_signal(sig)

    world.remote.on(match, fire)


def test_sigterm_before_healthy_stops_the_new_color_and_frees_the_lock(world, co):
    first_then_second(world)
    world.server.apps["5103000"] = App(ready_after=6)
    signal_when(world, lambda c: c == cmd.up(co, "green", "5103000"))
    assert world.deploy(CO, "5103000") == 1
    assert world.server.running(CO) == {
        "civic-observer-web-blue-1": "a1c0ffe",
        "civic-observer-worker-blue-1": "a1c0ffe",
    }
    assert "interrupted (SIGTERM)" in world.text() and "Now: blue (a1c0ffe) runs; green stopped" in world.text()
    assert world.server.lock_token is None
    assert world.server.state(CO)["active"] == "blue"


def test_sigterm_after_healthy_without_canary_finishes_the_switch(world, co):
    first_then_second(world)
    stop_blue = cmd.stop(co, "blue", "a1c0ffe")
    # the signal lands while public-works waits for Caddy's word (after the health check passed)
    world.clock.at(0, lambda: None)
    fired = []
    world.remote.on(
        lambda c: c == cmd.up(co, "green", "b2beef0"),
        lambda c: world.clock.at(1.0, lambda: fired.append(signal.raise_signal(signal.SIGTERM))),
    )
    assert world.deploy(CO, "b2beef0") == 0
    assert fired and stop_blue in world.remote.mutations()
    assert world.server.state(CO)["active"] == "green"


def test_a_lock_lost_mid_run_changes_nothing_more_and_says_so(world, co):
    first_then_second(world)
    world.remote.on(lambda c: c == cmd.migrate(co, "green", "b2beef0"), lambda c: world.remote.lose_lock())
    mark = world.mark()
    assert world.deploy(CO, "b2beef0") == 1
    changes = world.since(mark)
    # the migration was refused by the server's fence; nothing else was tried, not even the undo
    assert changes[:2] == [cmd.pull(co, "green", "b2beef0"), cmd.migrate(co, "green", "b2beef0")]
    assert cmd.up(co, "green", "b2beef0") not in changes and cmd.stop(co, "blue", "a1c0ffe") not in changes
    h = history_fields(world)
    assert h[1:5] == [CO, "b2beef0", "aborted", "green"] and "reason=lock-lost" in h
    assert "ABORTED: civic-observer b2beef0: this run lost the deploy lock" in world.text()
    assert "This run changed nothing after that. Now: blue (a1c0ffe) runs" in world.text()
    assert world.server.state(CO)["active"] == "blue"


def test_a_lock_lost_during_the_stop_of_the_old_color_does_not_claim_success(world, co):
    first_then_second(world)
    world.remote.on(lambda c: c == cmd.stop(co, "blue", "a1c0ffe"), lambda c: world.remote.lose_lock())
    assert world.deploy(CO, "b2beef0") == 1
    assert not any(" | success | " in line and "b2beef0" in line for line in world.server.history())
    assert history_fields(world)[3] == "aborted"
    st = world.server.state(CO)
    assert st["active"] == "blue"  # nothing written after the lock was gone


@pytest.mark.parametrize(
    "step_command",
    ["pull", "run", "up", "stop", "write", "append"],
)
def test_an_unexpected_exception_at_any_step_goes_through_the_failure_path(world, co, step_command):
    first_then_second(world)

    def boom(c: Command) -> None:
        raise RuntimeError(f"injected at {step_command}")

    def matches(c: Command) -> bool:
        if step_command in ("write", "append"):
            script = cmd._ATOMIC_WRITE if step_command == "write" else cmd._APPEND
            return c.argv[:3] == ("sh", "-c", script) and "b2beef0" in " ".join(c.argv) and "failure" not in c.argv[-1]
        if step_command == "stop":
            return c == cmd.stop(co, "blue", "a1c0ffe")
        return c.mutating and step_command in c.argv and "b2beef0" in " ".join(c.argv) and "green" in " ".join(c.argv)

    world.remote.on(matches, boom)
    assert world.deploy(CO, "b2beef0") == 1
    text = world.text()
    assert f"RuntimeError: injected at {step_command}" in text
    assert world.server.lock_token is None
    running = world.server.running(CO)
    last = world.last_lines()
    if step_command in ("pull", "run", "up", "stop"):  # the old color never stopped: it serves on, alone
        assert running == {"civic-observer-web-blue-1": "a1c0ffe", "civic-observer-worker-blue-1": "a1c0ffe"}
        assert "b2beef0 not deployed" in last and "Now: blue (a1c0ffe) runs" in last
        assert world.server.state(CO)["active"] == "blue"
    else:  # the stop was sent: green is live, and everything says so
        assert running["civic-observer-web-green-1"] == "b2beef0"
        assert "b2beef0 is live on green" in last
    if step_command != "append":  # the history itself is what broke there
        assert any("b2beef0" in line for line in world.server.history()[-2:])


def test_a_failed_state_write_after_the_switch_says_what_is_live(world, co):
    first_then_second(world)
    world.server.unwritable.add(world.cfg.state_file(CO))
    assert world.deploy(CO, "b2beef0") == 1
    last = world.last_lines()
    assert last.startswith("INCOMPLETE: b2beef0 is live on green; blue (a1c0ffe) stopped, but the state file")
    assert "still serving" not in world.text()
    assert world.server.running(CO)["civic-observer-web-green-1"] == "b2beef0"
    h = history_fields(world)
    assert h[3] == "success" and "state=unwritten" in h  # the history says what happened


def test_an_unwritable_history_is_said_plainly(world):
    first_then_second(world)
    world.server.unwritable.add(world.cfg.server.history_file)
    assert world.deploy(CO, "b2beef0") == 1
    assert "could not append to the history /home/deploy/deploy-history.log: sh: can't create" in world.text()
    assert "INCOMPLETE: b2beef0 is live on green" in world.last_lines()
    assert world.server.state(CO)["active"] == "green"  # the state was written


def test_a_lock_lost_and_free_again_is_retaken_to_undo_this_runs_own_change(world, co):
    first_then_second(world)
    # the lock is lost while green starts; the `up` itself had already been accepted by the server
    up = cmd.up(co, "green", "b2beef0")
    world.remote.on(lambda c: c == up, lambda c: world.clock.at(0.2, world.remote.lose_lock))
    assert world.deploy(CO, "b2beef0") == 1
    assert world.server.running(CO) == BLUE_A
    assert "nothing had changed meanwhile: took it again to finish cleanly" in world.text()
    assert "took the lock again once it was free and finished cleanly. Now: blue (a1c0ffe) runs" in world.text()
    assert " | b2beef0 | aborted | green | " in world.server.history()[-1]
    assert world.server.lock_token is None


def test_a_lock_lost_while_another_run_acted_leaves_everything_to_that_run(world, co):
    first_then_second(world)

    def another_run_acts() -> None:
        world.remote.lose_lock()
        world.server.files[world.cfg.state_file(CO)] += " "  # it wrote the state

    world.remote.on(lambda c: c == cmd.up(co, "green", "b2beef0"), lambda c: world.clock.at(0.2, another_run_acts))
    assert world.deploy(CO, "b2beef0") == 1
    assert "another run acted" in world.text() and "changed nothing after that" in world.text()
    assert world.server.running(CO)["civic-observer-web-green-1"] == "b2beef0"  # not this run's to touch any more
    assert cmd.stop(co, "green", "b2beef0") not in world.remote.mutations()

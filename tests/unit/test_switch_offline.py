"""No proof, no switch: the old color stops only once Caddy's own health view calls the new one healthy.

Against the fake server's simulated Caddy 2.6 (health checks every interval, metrics refreshed every
10 s, every upstream reading healthy after a config load), and as a property of `proof.Proof` itself.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from publicworks import commands as cmd
from publicworks.caddy import Metrics
from publicworks.proof import Proof
from tests.support.fake import World

CO = "civic-observer"
BLUE_ONLY = {"civic-observer-web-blue-1": "a1c0ffe", "civic-observer-worker-blue-1": "a1c0ffe"}


def serving_blue(world: World) -> None:
    assert world.deploy(CO, "a1c0ffe") == 0
    world.clock.advance(60)


def test_caddy_not_proxying_the_new_color_refuses_before_anything_changes(world):
    serving_blue(world)
    world.server.caddy.load(world.server.caddy.without(8889))  # civic.band's Caddyfile today: 8888 only
    mark = world.mark()
    assert world.deploy(CO, "b2beef0") == 1
    assert world.since(mark) == [cmd.append_file(world.cfg.server.history_file, world.server.history()[-1] + "\n")]
    assert world.server.running(CO) == BLUE_ONLY
    text = world.text()
    assert "no reverse_proxy in Caddy's running config lists 127.0.0.1:8889 (green)" in text
    assert "reverse_proxy 127.0.0.1:8888 127.0.0.1:8889 {" in text  # the lines to add
    assert "step=inspect" in world.server.history()[-1]


def test_caddy_dropping_the_new_color_after_it_started_stops_it_again(world, co):
    serving_blue(world)
    world.remote.on(
        lambda c: c == cmd.up(co, "green", "b2beef0"),
        lambda c: world.server.caddy.load(world.server.caddy.without(8889)),
    )
    assert world.deploy(CO, "b2beef0") == 1
    assert world.server.running(CO) == BLUE_ONLY
    assert cmd.stop(co, "blue", "a1c0ffe") not in world.remote.mutations()
    h = world.server.history()[-1]
    assert " | failure | green | " in h and "step=switch" in h
    assert world.server.state(CO)["active"] == "blue"
    assert world.server.lock_token is None


def test_a_health_uri_that_differs_from_the_services_is_refused(world):
    serving_blue(world)
    world.server.caddy.load(world.server.caddy.render(world.cfg, **{CO: {"uri": "/healthz"}}))
    world.clock.advance(30)
    assert world.deploy(CO, "b2beef0") == 1
    assert "checks health_uri /healthz, but services.toml's health_path for civic-observer is /health/" in world.text()
    assert world.server.running(CO) == BLUE_ONLY


def test_caddy_down_refuses_and_says_so(world):
    serving_blue(world)
    world.server.caddy.up = False
    assert world.deploy(CO, "b2beef0") == 1
    assert "Caddy's admin API (localhost:2019 on the server) did not answer" in world.text()
    assert world.server.running(CO) == BLUE_ONLY


def test_caddy_going_down_during_the_switch_refuses_within_the_bound(world, co):
    serving_blue(world)
    world.remote.on(lambda c: c == cmd.up(co, "green", "b2beef0"), lambda c: setattr(world.server.caddy, "up", False))
    t0 = world.clock.t
    assert world.deploy(CO, "b2beef0") == 1
    assert world.clock.t - t0 < 60
    assert "Caddy did not call green (port 8889) healthy within" in world.text() and "did not answer" in world.text()
    assert world.server.running(CO) == BLUE_ONLY


def test_a_config_load_right_after_the_health_check_is_no_false_proof(world, co):
    """Caddy cannot reach green (its checks fail) although the tunnel check passes; a config load makes
    every upstream read healthy for a while. The deploy must not take that 1 for proof."""
    serving_blue(world)
    world.server.caddy.blind.add("127.0.0.1:8889")
    caddy = world.server.caddy
    world.remote.on(
        lambda c: c == cmd.up(co, "green", "b2beef0"), lambda c: world.clock.at(0.6, lambda: caddy.load(caddy.config))
    )
    assert world.deploy(CO, "b2beef0") == 1
    assert world.server.running(CO) == BLUE_ONLY
    assert "Caddy did not call green (port 8889) healthy" in world.text()
    assert "step=switch" in world.server.history()[-1]


def test_a_stale_healthy_reading_waits_for_a_whole_refresh(world):
    """Caddy was reloaded just before the deploy: green reads 1 although it is stopped. The proof then
    needs an unbroken 1 over interval + timeout + refresh after green answered through the tunnel."""
    serving_blue(world)
    world.server.caddy.load(world.server.caddy.config)
    assert world.deploy(CO, "b2beef0") == 0
    assert "Caddy saw green healthy" in world.text()


def test_the_switch_line_says_how_long_caddy_took(world):
    serving_blue(world)
    assert world.deploy(CO, "b2beef0") == 0
    line = next(ln for ln in world.text().splitlines() if "Caddy saw green healthy" in ln)
    seconds = float(line.split("healthy ")[1].split("s after")[0])
    assert 0 <= seconds <= 2 + 10 + 1  # one health interval and one metrics refresh at most


def test_a_service_not_behind_caddy_switches_on_the_tunnel_check_and_says_so(cfg, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("PUBLICWORKS_ACTOR", "tests@offline")
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    worker = replace(cfg.services[CO], behind_caddy=False)
    w = World(replace(cfg, services={**cfg.services, CO: worker}))
    w.server.caddy.up = False  # never asked
    assert w.deploy(CO, "a1c0ffe") == 0 and w.deploy(CO, "b2beef0") == 0
    assert "Caddy not consulted (services.civic-observer.behind_caddy = false)" in w.text()
    assert w.server.running(CO)["civic-observer-web-green-1"] == "b2beef0"


# -- the proof as a property -----------------------------------------------------------------------------


def simulate(
    interval: float, fails: bool, healthy_from: float, loads: list[float], phase: float, ask: bool = False
) -> Proof:
    """Caddy 2.6 for one upstream: checks every `interval` after each load, metrics refreshed every 10 s,
    healthy by default after a load. The proof is fed a reading every 0.2 s from t=0 — with `ask`, also
    where Caddy routes a pinned request at that moment (its health flag now, not as of the last refresh)."""
    p = Proof(("127.0.0.1:8889",), interval, 2.0)
    p.healthy_at = healthy_from
    load_times = sorted([-phase, *loads])

    def gauge(t: float) -> tuple[float, int]:
        done = [lt for lt in load_times if lt <= t]
        last_load, epoch = done[-1], len(done)
        tick = last_load + math.floor((t - last_load) / 10) * 10
        if tick - last_load < interval:
            return 1.0, epoch
        check = last_load + math.floor((tick - last_load) / interval) * interval
        return (0.0 if fails or check < healthy_from else 1.0), epoch

    def routed(t: float) -> bool:
        last_load = max(lt for lt in load_times if lt <= t)
        if t - last_load < interval:
            return True  # healthy by default until the first check after a load
        check = last_load + math.floor((t - last_load) / interval) * interval
        return not fails and check >= healthy_from

    t = 0.0
    while t < healthy_from + p.bound + 1 and p.proven_at is None:
        value, epoch = gauge(t)
        p.observe(t, Metrics({"127.0.0.1:8889": value}, float(epoch), 1.0), routed(t) if ask else None)
        t += 0.2
    return p


@settings(max_examples=300, deadline=None)
@given(
    interval=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    healthy_from=st.floats(0.5, 30),
    loads=st.lists(st.floats(0, 60), max_size=3),
    phase=st.floats(0, 30),
    ask=st.booleans(),
)
def test_no_proof_while_caddys_checks_fail_whatever_the_reloads(interval, healthy_from, loads, phase, ask):
    assert simulate(interval, True, healthy_from, loads, phase, ask).proven_at is None


@settings(max_examples=300, deadline=None)
@given(
    interval=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    healthy_from=st.floats(0.5, 30),
    phase=st.floats(0, 30),
    ask=st.booleans(),
)
def test_proof_comes_within_the_bound_once_caddys_checks_pass(interval, healthy_from, phase, ask):
    p = simulate(interval, False, healthy_from, [], phase, ask)
    assert p.proven_at is not None and p.proven_at - healthy_from <= p.bound
    if ask:  # asked, Caddy's word comes with its next check, not with the metric's next refresh
        assert p.proven_at - healthy_from <= max(interval, p.interval + p.timeout + 0.5) + 0.5, p.how

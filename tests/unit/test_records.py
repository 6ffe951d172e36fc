"""State transitions and their validation, the history format, reading the lock, Slack's payload, the target."""

import json

import pytest

from publicworks import history, notify, state
from publicworks.config import ConfigError, parse
from publicworks.lock import Holder, parse_probe
from publicworks.ssh import target
from publicworks.state import Slot, State


def test_history_line_has_the_designs_format():
    e = history.Entry(
        "2024-11-27T14:32:01Z", "civic-observer", "abc123", "success", "green", "ci:run/1", {"migrations": "ran"}
    )
    assert e.line() == "2024-11-27T14:32:01Z | civic-observer | abc123 | success | green | ci:run/1 | migrations=ran"
    assert history.parse_line(e.line()) == e


def test_history_reads_the_designs_own_lines_and_keeps_garbage():
    text = "2024-11-27T14:32:01 | civic-observer | abc123 | success | green\nnot a history line\n\n"
    a, b = history.parse(text)
    assert (a.service, a.version, a.status, a.color, a.actor) == ("civic-observer", "abc123", "success", "green", "")
    assert not b.parsed and b.raw == "not a history line"


def test_history_fields_cannot_break_the_line():
    e = history.entry("2026-01-01T00:00:00Z", "s", "v", "failure", "blue", "evil | actor\nnext", step="health")
    assert e.line().count("\n") == 0 and e.line().split(" | ")[5] == "evil / actor next"


def test_state_round_trip_and_transitions():
    s0 = State("co")
    s1 = s0.deployed("blue", "a", None, migrated=True, at="t1")
    s2 = s1.canary_started(Slot("blue", "a"), Slot("green", "b"), "t9", "me", migrated=False, at="t2")
    assert s2.active == "blue" and s2.canary and s2.canary.new == Slot("green", "b")
    assert state.parse(s2.to_json(), "co") == s2
    s3 = s2.deployed("green", "b", Slot("blue", "a"), migrated=False, at="t3")
    assert (s3.active, s3.previous, s3.canary, s3.migrated) == ("green", Slot("blue", "a"), None, ("a",))
    s4 = s3.rolled_back(Slot("blue", "a"), Slot("green", "b"), "rolled back", at="t4")
    assert (s4.active, s4.active_version, s4.previous, s4.rejected) == (
        "blue",
        "a",
        Slot("green", "b"),
        {"b": "rolled back"},
    )
    assert state.parse(s4.to_json(), "co") == s4
    assert s4.deployed("green", "b", Slot("blue", "a"), False, "t5").rejected == {}  # deployed again on purpose


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        '{"migrated": null, "active": "blue", "versions": {"blue": 3}}',
        '{"canary": {"old": {"color": "red", "version": "a"}, "new": {"color": "purple", "version": "b"}}}',
        '{"canary": {"old": {"color": "blue"}, "new": {"color": "blue"}}}',
        '{"active": "magenta"}',
        '{"versions": {"blue": "a", "orange": "b"}}',
        '{"previous": "blue"}',
        '{"rejected": ["a"]}',
        "[" * 100_000 + "]" * 100_000,
        '{"active": "blue"',
    ],
)
def test_a_corrupt_state_is_refused_whole_with_a_reason(text):
    with pytest.raises(ValueError) as e:
        state.parse(text, "co")
    assert str(e.value)


def test_a_null_migrated_list_is_just_empty():
    assert state.parse('{"migrated": null, "active": "blue"}', "co").migrated == ()


PROC_LOCKS = """1: POSIX  ADVISORY  WRITE 812 00:19:622 0 EOF
2: FLOCK  ADVISORY  WRITE 4142 fd:01:1059 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4244 fd:01:1059 0 EOF
3: FLOCK  ADVISORY  WRITE 4300 00:2d:777 0 EOF
"""


def test_lock_probe_finds_the_holder_by_device_and_inode():
    holder = Holder("deploy", "civic-observer", "abc", "ci", "2026-01-01T00:00:00Z")
    info = parse_probe(f"file=64769:1059\n--- locks\n{PROC_LOCKS}--- holder\n{holder.to_json()}\n")
    assert info.held and info.holder == holder
    assert info.describe() == "held by deploy of civic-observer abc by ci since 2026-01-01T00:00:00Z"
    assert info.by_canary_of("civic-observer") and not info.by_canary_of("corkboard-django")


def test_lock_probe_the_same_inode_on_another_device_is_not_ours():
    assert not parse_probe(f"file=45:1059\n--- locks\n{PROC_LOCKS}--- holder\n").held
    assert parse_probe(f"file=45:777\n--- locks\n{PROC_LOCKS}--- holder\n").held


def test_lock_probe_free_and_stale_holder_text_is_ignored():
    stale = json.dumps({"action": "deploy", "actor": "old"})
    assert not parse_probe(f"file=64769:999\n--- locks\n{PROC_LOCKS}--- holder\n{stale}\n").held
    assert not parse_probe(f"--- locks\n{PROC_LOCKS}--- holder\n").held  # no lock file yet
    assert parse_probe("symlink\n--- locks\n--- holder\n").describe().startswith("the lock file is a symbolic link")


def test_slack_escapes_an_apps_html_caps_it_and_links_the_run():
    html = "<html><body>Bad & broken " + "x" * 5000 + "</body></html>"
    p = notify.payload(
        "failure", "civic-observer", f"b2 failed at health: {html}", link="https://github.com/o/r/actions/runs/1"
    )
    block = p["blocks"][0]["text"]["text"]
    assert "<html>" not in block and "&lt;html&gt;" in block and "&amp;" in block
    assert len(p["text"]) <= notify.MAX_TEXT and block.endswith("(<https://github.com/o/r/actions/runs/1|CI run>)")


def test_a_webhook_url_with_a_trailing_newline_still_works_and_garbage_turns_notifications_off():
    class Out:
        warned: list[str] = []

        def note(self, text: str) -> None: ...

        def warn(self, text: str) -> None:
            self.warned.append(text)

    out = Out()
    assert (
        notify.Notifier.from_env(out, {"SLACK_WEBHOOK_URL": "https://hooks.example/x\n"}).url
        == "https://hooks.example/x"
    )
    assert notify.Notifier.from_env(out, {"SLACK_WEBHOOK_URL": "not a url"}).url is None and out.warned


GOOD = (
    '[server]\nhost = "vps"\n[services.web]\ndir = "/w"\nproject = "w"\ncompose_files = ["c.yml"]\n'
    'units = ["w-{color}"]\nports = { blue = 1, green = 2 }\n'
)


def test_where_to_connect_is_decided_once_toml_then_ssh_config_then_environment():
    server = parse(GOOD).server
    assert str(target(server, {}, {})) == "deploy@vps:22"
    assert str(target(server, {}, {"user": "ops", "port": "2222"})) == "ops@vps:2222"
    env = {"PUBLICWORKS_HOST": "10.0.0.9", "PUBLICWORKS_USER": "me", "PUBLICWORKS_PORT": "2200"}
    assert str(target(server, env, {"user": "ops", "port": "2222"})) == "me@10.0.0.9:2200"


def test_the_environment_never_redirects_a_host_named_under_hosts():
    from dataclasses import replace

    named = replace(parse(GOOD).server, host="10.0.0.3", name="vps2")
    env = {"PUBLICWORKS_HOST": "10.0.0.9", "PUBLICWORKS_USER": "me", "PUBLICWORKS_PORT": "2200"}
    assert str(target(named, env, {"user": "ops"})) == "ops@10.0.0.3:22"  # its ssh config alias still applies


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUBLICWORKS_HOST": "root@h"}, "PUBLICWORKS_HOST: 'root@h' is not a host name or address"),
        ({"PUBLICWORKS_HOST": "h:2304"}, "PUBLICWORKS_HOST: 'h:2304' is not a host name or address"),
        ({"PUBLICWORKS_PORT": "ssh"}, "PUBLICWORKS_PORT: expected an integer, got 'ssh'"),
        ({"PUBLICWORKS_PORT": "99999"}, "PUBLICWORKS_PORT: 99999 is not a TCP port"),
    ],
)
def test_bad_overrides_are_one_line_not_a_traceback(env, message):
    with pytest.raises(ConfigError) as e:
        target(parse(GOOD).server, env, {})
    assert str(e.value).startswith(message)

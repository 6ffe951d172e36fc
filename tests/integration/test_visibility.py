"""Visibility: `publicworks history`, `publicworks status`, Slack notifications, GitHub Actions output."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from publicworks import lock, remote
from tests.support.sandbox import canary_deploy, deploy, kill, pw, pw_env, wait_canary

CO = "civic-observer"


# -- history -----------------------------------------------------------------------------------------


def test_history_table_json_limit_and_a_malformed_line(vps):
    for v in ("a1c0ffe", "b2beef0"):
        assert deploy(v).code == 0
    assert deploy("a1c0ffe", "corkboard-django").code == 0
    vps.sh("echo 'this line was written by hand' >> deploy-history.log")
    assert deploy("dead500").code == 1
    r = pw("history")
    assert r.code == 0, r.text
    lines = r.out.splitlines()
    assert lines[0].split() == ["TIME", "SERVICE", "VERSION", "STATUS", "COLOR", "ACTOR", "DETAILS"]
    assert [ln.split()[1:5] for ln in lines[1:4]] == [
        ["civic-observer", "a1c0ffe", "success", "blue"],
        ["civic-observer", "b2beef0", "success", "green"],
        ["corkboard-django", "a1c0ffe", "success", "blue"],
    ]
    assert lines[4] == "(unparsed) this line was written by hand"
    assert lines[5].split()[1:5] == ["civic-observer", "dead500", "failure", "blue"]  # newest last
    assert lines[1].index("a1c0ffe") == lines[3].index("a1c0ffe")  # aligned

    r = pw("history", "--service", CO, "--limit", "2", "--json")
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [(e["version"], e["status"]) for e in rows] == [("b2beef0", "success"), ("dead500", "failure")]
    assert rows[1]["fields"]["step"] == "health" and rows[1]["actor"] == "tests@runner"
    assert [json.loads(x) for x in pw("history", "--limit", "2", "--json").out.splitlines()][0] == {
        "raw": "this line was written by hand"
    }


def test_history_on_a_million_lines_costs_what_it_costs_on_ten(vps):
    def fill(n: int) -> None:
        script = (
            f"awk 'BEGIN{{for(i=0;i<{n};i++) printf \"2026-01-01T00:00:%02dZ | corkboard-django | v%d | success | "
            '%s | bot\\n", i%60, i, (i%2?"blue":"green")}\' > deploy-history.log'
        )
        vps.sh(script, timeout=120)

    def timed(*args: str) -> float:
        best = min(pw("history", "--limit", "20", *args).seconds for _ in range(3))
        return best

    fill(10)
    small = timed()
    small_filtered = timed("--service", "corkboard-django")
    fill(1_000_000)
    assert vps.sh("wc -l < deploy-history.log").strip() == "1000000"
    big = timed()
    big_filtered = timed("--service", "corkboard-django")
    r = pw("history", "--limit", "20")
    assert r.out.splitlines()[-1].split()[2] == "v999999" and len(r.out.splitlines()) == 21
    print(
        f"history --limit 20: 10 lines {small:.3f}s, 1,000,000 lines {big:.3f}s (ratio {big / small:.2f}); "
        f"--service: {small_filtered:.3f}s vs {big_filtered:.3f}s (ratio {big_filtered / small_filtered:.2f})"
    )
    assert big < small * 3 + 1 and big_filtered < small_filtered * 3 + 1


# -- status ------------------------------------------------------------------------------------------


def test_status_healthy_and_one_color_down(vps):
    assert deploy("a1c0ffe").code == 0
    assert deploy("b2beef0").code == 0
    r = pw("status", "--service", CO)
    assert r.code == 0, r.text
    assert "civic-observer: up, green serves b2beef0" in r.out
    assert "green port 8889  serving  b2beef0" in r.out and "HTTP 200" in r.out
    assert "blue  port 8888  stopped  a1c0ffe" in r.out and "connection refused" in r.out
    assert "last: " in r.out and "success b2beef0 on green by tests@runner" in r.out and "lock: free" in r.out
    data = json.loads(pw("status", "--service", CO, "--json").out)
    s = data["services"][0]
    assert (s["up"], s["serving"], s["serving_version"]) == (True, "green", "b2beef0")
    assert s["colors"]["green"]["health"]["status"] == 200 and s["colors"]["blue"]["health"]["status"] is None
    # right after the switch, Caddy's own word (asked through its site, not its 10 s-old metric)
    assert s["colors"]["green"]["caddy"] == "healthy", s["colors"]

    vps.sh("docker stop -t 1 civic-observer-web-green-1 >/dev/null")  # the serving color dies overnight
    r = pw("status", "--service", CO)
    assert r.code == 0 and "civic-observer: DOWN — no color answers 200 on /health/" in r.out


def test_status_shows_a_running_canary_and_the_lock_holder(vps):
    assert deploy("a1c0ffe").code == 0
    p = canary_deploy("b2beef0", seconds=120)
    try:
        wait_canary(vps)
        r = pw("status", "--service", CO)
        assert r.code == 0, r.text
        assert "canary: running (green b2beef0 beside blue a1c0ffe, 1" in r.out  # ~119 s left
        assert "lock: held by deploy of civic-observer b2beef0 by tests@runner since" in r.out
        assert "green port 8889  serving" in r.out or "green port 8889  running" in r.out
    finally:
        kill(p)
    r = pw("status", "--service", CO)
    assert "canary: LEFT UNFINISHED (green b2beef0 beside blue a1c0ffe); both serve" in r.out
    assert "lock: free" in r.out


def test_status_names_a_holder_that_is_not_a_canary(vps, server):
    holder = remote.connect(server)
    try:
        with lock.Lock(holder, server.lock_file, lock.me("rollback", "corkboard-django", "", "bob@laptop")) as held:
            held.acquire()
            r = pw("status")
            assert "lock: held by rollback of corkboard-django by bob@laptop since" in r.out
            assert "corkboard-django: not deployed yet" in r.out
    finally:
        holder.close()


# -- Slack -------------------------------------------------------------------------------------------


class Webhook:
    """A real HTTP server standing in for Slack: records posts, or answers 500, or never answers."""

    def __init__(self, mode: str = "ok") -> None:
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                if mode == "hang":
                    time.sleep(30)
                    return
                self.send_response(500 if mode == "500" else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/s3cr3t-token-xyz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [p["text"] for p in self.posts]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hooks = []

    def make(mode: str = "ok") -> Webhook:
        hooks.append(Webhook(mode))
        return hooks[-1]

    yield make
    for h in hooks:
        h.close()


def test_slack_hears_success_failure_and_rollback_in_order(vps, webhook):
    hook = webhook()
    env = pw_env(SLACK_WEBHOOK_URL=hook.url)
    runs = [
        deploy("a1c0ffe", env=env),
        deploy("dead500", env=env),
        deploy("b2beef0", env=env),
        pw("rollback", "--service", CO, env=env),
    ]
    assert [r.code for r in runs] == [0, 1, 0, 0]
    t = hook.texts()
    assert [x.split("]")[0] + "]" for x in t] == [
        "[deploying]",
        "[success]",
        "[deploying]",
        "[failure]",
        "[deploying]",
        "[success]",
        "[rollback]",
    ]
    assert t[0] == "[deploying] civic-observer: deploying a1c0ffe (tests@runner)"
    assert t[1].startswith("[success] civic-observer: a1c0ffe live on blue in ")
    assert t[3].startswith("[failure] civic-observer: dead500 failed at health:") and "Now: blue (a1c0ffe) runs" in t[3]
    assert t[6] == "[rollback] civic-observer: previous: b2beef0 → a1c0ffe (tests@runner)"
    assert hook.posts[0]["blocks"][0]["text"]["type"] == "mrkdwn"
    for r in runs:
        assert hook.url not in r.text and "s3cr3t" not in r.text


def test_slack_hears_the_canary(vps, webhook):
    hook = webhook()
    env = pw_env(SLACK_WEBHOOK_URL=hook.url)
    assert deploy("a1c0ffe", env=env).code == 0
    r = pw("deploy", "--service", CO, "--version", "b2beef0", "--canary", "2", env=env)
    assert r.code == 0, r.text
    assert [x.split("]")[0] + "]" for x in hook.texts()[2:]] == [
        "[deploying]",
        "[canary-started]",
        "[canary-finished]",
        "[success]",
    ]


def test_an_automatic_canary_rollback_is_announced(vps, webhook):
    hook = webhook()
    env = pw_env(SLACK_WEBHOOK_URL=hook.url)
    assert deploy("a1c0ffe", env=env).code == 0
    p = canary_deploy("b2beef0", seconds=120, env=env)
    wait_canary(vps)
    vps.sh("docker exec civic-observer-web-green-1 touch /tmp/sick")
    p.communicate(timeout=60)
    assert hook.texts()[-1].startswith("[rollback] civic-observer: automatic: b2beef0 → a1c0ffe during the canary")


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_broken_webhook_never_fails_or_stalls_a_deploy(vps, webhook, mode):
    assert deploy("a1c0ffe").code == 0
    baseline = deploy("b2beef0")
    assert baseline.code == 0
    hook = webhook(mode)
    r = deploy("a1c0ffe", env=pw_env(SLACK_WEBHOOK_URL=hook.url))
    assert r.code == 0, r.text
    assert hook.posts  # it was tried
    own = float(re.search(r"to blue \(port 8888\) in ([\d.]+)s", r.out).group(1))
    print(f"webhook {mode}: the run took {r.seconds:.1f}s, its deploy {own:.1f}s")
    assert r.seconds - own < 5 + 3  # the 5 s timeout, once, plus start-up and slack for a loaded machine
    assert "Slack notification failed" in r.out and r.out.count("Slack notification failed") == 1
    assert hook.url not in r.text and "s3cr3t" not in r.text
    assert vps.state(CO)["active"] == "blue"


def test_without_a_webhook_one_line_says_notifications_are_off(vps):
    r = deploy("a1c0ffe")
    assert r.out.count("Slack notifications are off (SLACK_WEBHOOK_URL is not set)") == 1


# -- GitHub Actions ----------------------------------------------------------------------------------


def test_github_actions_output_groups_annotations_and_the_job_summary(vps, tmp_path):
    summary = tmp_path / "summary.md"
    env = pw_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    assert deploy("a1c0ffe", env=env).code == 0
    r = deploy("dead500", env=env)
    assert r.code == 1
    assert "::group::[6/10] health" in r.out and "::endgroup::" in r.out
    assert "::error::health failed: green (dead500) did not answer /health/ with 200" in r.out
    md = summary.read_text()
    assert "### ✅ deployed civic-observer a1c0ffe to blue (port 8888)" in md
    assert "### ❌ FAILED: civic-observer dead500 not deployed (health). Now: blue (a1c0ffe) runs; green stopped" in md
    assert "| colors | blue (a1c0ffe) → green |" in md and "| health |" in md
    assert "civic-observer \\| dead500 \\| failure \\| green" in md  # the history line, escaped for the table
    assert "\x1b[" not in r.out  # no colour codes in CI logs

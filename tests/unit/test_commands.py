"""The exact remote commands: argv tuples, quoted once by shlex, never built from input by hand."""

import shlex
import subprocess

from publicworks import commands as cmd

BASE = (
    "env",
    "IMAGE_TAG=abc123",
    "docker",
    "compose",
    "--project-directory",
    "/home/deploy/civic-observer",
    "-p",
    "civic-observer",
    "-f",
    "/home/deploy/civic-observer/docker-compose.production-base.yml",
    "-f",
    "/home/deploy/civic-observer/docker-compose.green.yml",
)


def test_pull(co):
    c = cmd.pull(co, "green", "abc123")
    assert c.argv == BASE + ("pull", "--quiet", "--", "web-green", "worker-green") and c.mutating


def test_migrate_runs_a_one_off_container_of_the_first_unit(co):
    assert cmd.migrate(co, "green", "abc123").argv == BASE + (
        "run",
        "--rm",
        "-T",
        "--",
        "web-green",
        "python",
        "manage.py",
        "migrate",
        "--noinput",
    )


def test_no_migrate_command(cfg):
    assert cmd.migrate(cfg.services["corkboard-datasette"], "blue", "x") is None


def test_up_names_only_the_units_after_a_double_dash(co):
    assert cmd.up(co, "green", "abc123").argv == BASE + (
        "up",
        "-d",
        "--pull",
        "missing",
        "--",
        "web-green",
        "worker-green",
    )


def test_stop_is_stop_not_down_with_the_grace_period(co):
    assert cmd.stop(co, "green", "abc123").argv == BASE + ("stop", "-t", "30", "--", "web-green", "worker-green")


def test_shared_project_unit_touches_only_its_own_services(django):
    argv = cmd.up(django, "blue", "v9").argv
    assert argv == (
        "env",
        "IMAGE_TAG=v9",
        "docker",
        "compose",
        "--project-directory",
        "/home/deploy/corkboard",
        "-p",
        "corkboard",
        "-f",
        "/home/deploy/corkboard/docker-compose.yml",
        "up",
        "-d",
        "--pull",
        "missing",
        "--",
        "django-blue",
    )


def test_reads_are_not_mutating_and_changes_are(co):
    assert not any(
        c.mutating
        for c in (
            cmd.ps(),
            cmd.logs(co, "blue", "x"),
            cmd.read_file("/x"),
            cmd.tail_file("/x", 3),
            cmd.lock_probe("/x"),
            cmd.write_marker("/m", "note"),
        )
    )
    assert all(
        c.mutating
        for c in (
            cmd.write_file("/x", ""),
            cmd.append_file("/x", ""),
            cmd.consume_marker("/m"),
            cmd.stop_containers(["id"], 3),
        )
    )


def test_file_contents_are_arguments_not_shell_text():
    evil = "x'; touch /tmp/pwned; echo '"
    c = cmd.write_file("/home/deploy/.publicworks/s.json", evil)
    assert c.argv[-2:] == ("/home/deploy/.publicworks/s.json", evil)
    assert shlex.split(c.shell()) == list(c.argv)  # round-trips: the remote shell sees exactly this argv


def test_a_fenced_command_wraps_the_same_argv_and_unwraps_exactly(co):
    inner = cmd.stop(co, "blue", "a1")
    f = cmd.fenced(inner, "/home/deploy/.publicworks/deploy.lock", "tok123")
    assert f.argv[:7] == (
        "sh",
        "-c",
        cmd._FENCED,
        "fence",
        "/home/deploy/.publicworks/deploy.lock.fence",
        "tok123",
        str(inner.timeout).removesuffix(".0"),
    )
    assert f.argv[7:] == inner.argv and f.mutating
    assert cmd.unfenced(f) == inner and cmd.unfenced(inner) is inner


def test_the_fence_runs_only_under_its_token_and_a_live_holder(tmp_path):
    """The fence script itself, with a local sh: the token and the holder's liveness decide."""
    fence = tmp_path / "l.fence"
    holder = subprocess.Popen(["sleep", "30"])
    try:
        fence.write_text(f"tok {holder.pid}\n")

        def run(token: str) -> subprocess.CompletedProcess:
            c = cmd.fenced(cmd.Command(("sh", "-c", "echo ran")), str(tmp_path / "l"), token)
            return subprocess.run(c.argv, capture_output=True, text=True)

        ok = run("tok")
        assert (ok.returncode, ok.stdout) == (0, "ran\n")
        refused = run("other")
        assert refused.returncode == cmd.FENCE_EXIT and cmd.FENCE_MARK in refused.stderr and refused.stdout == ""
    finally:
        holder.kill()
        holder.wait()
    dead = subprocess.run(cmd.fenced(cmd.Command(("true",)), str(tmp_path / "l"), "tok").argv, capture_output=True)
    assert dead.returncode == cmd.FENCE_EXIT  # the holder is gone: the token proves nothing any more


def test_logs(co):
    assert cmd.logs(co, "blue", "abc123").argv[-7:] == (
        "logs",
        "--no-color",
        "--tail",
        "50",
        "--",
        "web-blue",
        "worker-blue",
    )


def test_lock_hold_fail_fast_and_wait():
    c = cmd.lock_hold("/home/deploy/.publicworks/deploy.lock", 0, 20, "tok")
    assert c.argv[:2] == ("bash", "-c") and c.argv[3:] == (
        "lock",
        "/home/deploy/.publicworks/deploy.lock",
        "0",
        "20",
        "tok",
    )
    assert cmd.lock_hold("/l", 30, 4, "t").argv[-3:] == ("30", "4", "t")


def test_tail_reads_only_the_end():
    assert cmd.tail_file("/home/deploy/deploy-history.log", 20).argv == (
        "sh",
        "-c",
        '[ ! -e "$1" ] || tail -n "$2" "$1"',
        "sh",
        "/home/deploy/deploy-history.log",
        "20",
    )

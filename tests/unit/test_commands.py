"""The exact remote commands: argv tuples, quoted once by shlex, never built from input by hand."""

import shlex

from publicworks import commands as cmd

BASE = ("env", "IMAGE_TAG=abc123", "docker", "compose", "--project-directory", "/home/deploy/civic-observer",
        "-p", "civic-observer", "-f", "/home/deploy/civic-observer/docker-compose.production-base.yml",
        "-f", "/home/deploy/civic-observer/docker-compose.green.yml")


def test_pull(co):
    assert cmd.pull(co, "green", "abc123").argv == BASE + ("pull", "--quiet", "web-green", "worker-green")


def test_migrate_runs_a_one_off_container_of_the_first_unit(co):
    assert cmd.migrate(co, "green", "abc123").argv == BASE + (
        "run", "--rm", "-T", "web-green", "python", "manage.py", "migrate", "--noinput")


def test_no_migrate_command(cfg):
    assert cmd.migrate(cfg.services["corkboard-datasette"], "blue", "x") is None


def test_up_names_only_the_units(co):
    assert cmd.up(co, "green", "abc123").argv == BASE + ("up", "-d", "--pull", "missing", "web-green", "worker-green")


def test_stop_is_stop_not_down_with_the_grace_period(co):
    assert cmd.stop(co, "green", "abc123").argv == BASE + ("stop", "-t", "30", "web-green", "worker-green")


def test_shared_project_unit_touches_only_its_own_services(django):
    argv = cmd.up(django, "blue", "v9").argv
    assert argv == ("env", "IMAGE_TAG=v9", "docker", "compose", "--project-directory", "/home/deploy/corkboard",
                    "-p", "corkboard", "-f", "/home/deploy/corkboard/docker-compose.yml",
                    "up", "-d", "--pull", "missing", "django-blue")


def test_logs(co):
    assert cmd.logs(co, "blue", "abc123").argv[-6:] == ("logs", "--no-color", "--tail", "50", "web-blue", "worker-blue")


def test_file_contents_are_arguments_not_shell_text():
    evil = "x'; touch /tmp/pwned; echo '"
    c = cmd.write_file("/home/deploy/.publicworks/s.json", evil)
    assert c.argv[-2:] == ("/home/deploy/.publicworks/s.json", evil)
    assert shlex.split(c.shell()) == list(c.argv)  # round-trips: the remote shell sees exactly this argv


def test_lock_hold_fail_fast_and_wait():
    assert cmd.lock_hold("/tmp/civic-deploy.lock", 0).argv[:5] == ("flock", "-n", "-E", "75", "/tmp/civic-deploy.lock")
    assert cmd.lock_hold("/tmp/civic-deploy.lock", 30).argv[:6] == ("flock", "-w", "30", "-E", "75", "/tmp/civic-deploy.lock")
    assert cmd.lock_hold("/tmp/l", 0).argv[-5:-2] == ("bash", "-c", cmd._LOCK_HOLD)


def test_tail_reads_only_the_end():
    assert cmd.tail_file("/home/deploy/deploy-history.log", 20).argv == (
        "sh", "-c", '[ ! -e "$1" ] || tail -n "$2" "$1"', "sh", "/home/deploy/deploy-history.log", "20")

"""services.toml validation: one test per kind of error, each naming the key path; and the real file loads."""

from pathlib import Path

import pytest

from publicworks import config
from publicworks.config import ConfigError, check_version, parse

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[server]
host = "vps.example"

[services.web]
dir = "/home/deploy/web"
project = "web"
compose_files = ["base.yml", "docker-compose.{color}.yml"]
units = ["web-{color}"]
ports = { blue = 8000, green = 8001 }
"""


def err(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse(text)
    return str(e.value)


def test_the_real_services_toml_has_the_designs_three_services():
    cfg = config.load(ROOT / "services.toml")
    assert cfg.server.lock_file == "/home/deploy/.publicworks/deploy.lock"  # only the deploy user writes there
    assert cfg.server.history_file == "/home/deploy/deploy-history.log"
    co = cfg.services["civic-observer"]
    assert (co.ports, co.dir) == ({"blue": 8888, "green": 8889}, "/home/deploy/civic-observer")
    assert co.files("green") == [
        "/home/deploy/civic-observer/docker-compose.production-base.yml",
        "/home/deploy/civic-observer/docker-compose.green.yml",
    ]
    assert cfg.services["corkboard-django"].ports == {"blue": 8000, "green": 8001}
    assert cfg.services["corkboard-datasette"].ports == {"blue": 40001, "green": 40002}
    assert {cfg.services[s].project for s in ("corkboard-django", "corkboard-datasette")} == {"corkboard"}
    assert co.health_path == "/health/" and co.version_env == "IMAGE_TAG" and co.canary_seconds == 600
    assert all(s.behind_caddy for s in cfg.services.values())


def test_the_sandbox_services_toml_loads():
    assert set(config.load(ROOT / "sandbox" / "services.toml").services) == {
        "civic-observer",
        "corkboard-django",
        "corkboard-datasette",
    }


def test_defaults_apply():
    cfg = parse(GOOD)
    svc = cfg.services["web"]
    assert (svc.health_path, svc.version_env, svc.migrate, svc.canary_seconds, svc.canary_failures) == (
        "/health/",
        "IMAGE_TAG",
        (),
        600.0,
        3,
    )
    assert (cfg.server.lock_timeout, cfg.server.heartbeat, cfg.server.ssh_timeout) == (20.0, 5.0, 15.0)


def test_unknown_key():
    assert err(GOOD + 'colour = "x"\n') == (
        "services.web.colour: unknown key (known: dir, project, compose_files, units, ports, health_path, "
        "version_env, migrate, ready_timeout, canary_seconds, canary_failures, canary_probe_interval, "
        "stop_grace, behind_caddy, keep_images, pre_migrate, hosts, hosts_at_once)"
    )


def test_unknown_top_level_and_server_keys():
    assert err(GOOD + "[extra]\n").startswith("extra: unknown key (known: server, hosts, caddy, services)")
    assert err(GOOD.replace('host = "vps.example"', 'host = "x"\nlockfile = "/x"')).startswith(
        "server.lockfile: unknown key"
    )


def test_wrong_type_names_the_key_path():
    assert err(GOOD.replace("green = 8001", 'green = "8001"')) == "services.web.ports.green: expected an integer"
    assert (
        err(GOOD.replace('units = ["web-{color}"]', 'units = "web-{color}"'))
        == "services.web.units: expected a list of strings"
    )
    assert err(GOOD + "ready_timeout = true\n") == "services.web.ready_timeout: expected a number"
    assert err(GOOD + "behind_caddy = 1\n") == "services.web.behind_caddy: expected true or false"


def test_missing_color():
    assert err(GOOD.replace(", green = 8001", "")) == "services.web.ports.green: missing (both colors need a port)"


def test_unknown_color():
    assert err(GOOD.replace("green = 8001", "green = 8001, red = 8002")) == (
        "services.web.ports.red: unknown color (colors are blue and green)"
    )


def test_port_used_twice():
    text = (
        GOOD + '\n[services.api]\ndir = "/a"\nproject = "api"\ncompose_files = ["c.yml"]\n'
        'units = ["a-{color}"]\nports = { blue = 9000, green = 8001 }\n'
    )
    assert err(text) == "services.api.ports.green: port 8001 is already used by services.web.ports.green"


def test_missing_required_key():
    assert err(GOOD.replace('project = "web"\n', "")) == "services.web.project: required"
    assert err(GOOD.replace('host = "vps.example"', "")) == "server.host: required"


def test_unit_without_color_placeholder():
    assert "must contain {color}" in err(GOOD.replace('units = ["web-{color}"]', 'units = ["web"]'))


def test_units_sharing_a_project_must_be_disjoint():
    text = (
        GOOD + '\n[services.web2]\ndir = "/a"\nproject = "web"\ncompose_files = ["c.yml"]\n'
        'units = ["web-{color}"]\nports = { blue = 9000, green = 9001 }\n'
    )
    assert err(text) == "services.web2.units: 'web-blue' is also a unit of services.web (same compose project 'web')"


def test_relative_paths_and_bad_values():
    assert err(GOOD.replace('dir = "/home/deploy/web"', 'dir = "web"')) == "services.web.dir: must be an absolute path"
    assert err(GOOD + 'health_path = "health"\n').startswith("services.web.health_path: must start with '/'")
    assert err(GOOD + 'version_env = "IMAGE-TAG"\n') == "services.web.version_env: not an environment variable name"
    assert err(GOOD + "ready_timeout = 0\n") == "services.web.ready_timeout: must be > 0 and <= 3600, got 0"
    assert err(GOOD + 'migrate = "python \'unclosed"\n').startswith("services.web.migrate:")
    assert err(GOOD.replace("green = 8001", "green = 70000")) == "services.web.ports.green: 70000 is not a TCP port"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12"])
def test_numbers_must_be_finite_and_bounded(value):
    assert err(GOOD + f"ready_timeout = {value}\n").startswith("services.web.ready_timeout: must be")
    assert err(GOOD + f"canary_seconds = {value}\n").startswith("services.web.canary_seconds: must be")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'compose_files = ["docker-compose.{colour}.yml"]',
            "services.web.compose_files[0]: 'docker-compose.{colour}.yml': only {color} may appear in braces",
        ),
        ('units = ["-rm-{color}"]', "services.web.units[0]: '-rm-{color}' is not a compose service name"),
        ('units = ["web-{color}\\n"]', "services.web.units[0]: 'web-{color}\\n' is not a compose service name"),
        ('health_path = "/health/\\r\\nX: y"', "services.web.health_path: must start with '/' and hold only printable"),
        ('project = "p\\n"', "services.web.project: a compose project name"),
    ],
)
def test_values_that_would_fail_only_at_deploy_time_fail_now(line, message):
    key = line.split(" =")[0]
    text = "\n".join(ln for ln in GOOD.splitlines() if not ln.startswith(key + " ")) + "\n" + line + "\n"
    assert err(text).startswith(message)


def test_server_paths_and_addresses_are_checked():
    def server(line: str) -> str:
        return err(GOOD.replace('host = "vps.example"', f'host = "vps.example"\n{line}'))

    assert server('history_file = "/../../etc/passwd"').startswith("server.history_file: must be a normalised path")
    assert server('state_dir = "/home//deploy"').startswith("server.state_dir: must be a normalised path")
    assert server('caddy_admin = "localhost"') == (
        "server.caddy_admin: expected host:port of Caddy's admin API, e.g. localhost:2019; got 'localhost'"
    )
    assert server("lock_timeout = 1") == "server.lock_timeout: must be >= 2 and <= 3600, got 1"
    assert err(GOOD.replace('host = "vps.example"', 'host = "root@vps"')).startswith(
        "server.host: 'root@vps' is not a host"
    )


def test_caddy_admin_is_required_while_a_service_is_behind_caddy():
    text = GOOD.replace('host = "vps.example"', 'host = "vps.example"\ncaddy_admin = ""')
    assert err(text).startswith("server.caddy_admin: required, because web is behind Caddy")
    assert parse(text + "behind_caddy = false\n").services["web"].behind_caddy is False


def test_not_toml():
    assert "not valid TOML" in err("[server\n")


def test_no_services():
    assert err('[server]\nhost = "x"\n') == "services: at least one [services.NAME] table is required"


def test_publicworks_config_points_elsewhere(tmp_path, monkeypatch):
    f = tmp_path / "other.toml"
    f.write_text(GOOD)
    monkeypatch.setenv("PUBLICWORKS_CONFIG", str(f))
    assert set(config.load().services) == {"web"}
    monkeypatch.setenv("PUBLICWORKS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="cannot read"):
        config.load()


def test_unknown_service_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown service 'nope'.*knows: web"):
        parse(GOOD).service("nope")


@pytest.mark.parametrize("good", ["abc123", "a1c0ffe", "v1.2.3", "_x", "A" * 128, "1.0-rc_1"])
def test_valid_versions(good):
    assert check_version(good) == good


@pytest.mark.parametrize("bad", ["", "abc;touch /tmp/pwned", "-rf", ".hidden", "a b", "a" * 129, "x$(id)", "tag\n"])
def test_invalid_versions(bad):
    with pytest.raises(ConfigError, match="not a valid image tag"):
        check_version(bad)


def test_caddy_durations_are_checked():
    text = GOOD.replace("[server]", '[caddy]\nhealth_interval = "2 seconds"\n\n[server]')
    assert err(text) == "caddy.health_interval: expected a duration like 2s or 250ms, got '2 seconds'"


HOSTS = GOOD.replace(
    "[services.web]\n",
    '[hosts.a]\nhost = "10.0.0.2"\n\n[hosts.b]\nhost = "10.0.0.3"\nuser = "ops"\nport = 2222\n\n'
    '[services.web]\nhosts = ["b", "a"]\nhosts_at_once = 2\n',
)


def test_hosts_are_named_once_and_inherit_the_rest_from_server():
    cfg = parse(HOSTS)
    web = cfg.services["web"]
    a, b = cfg.hosts["a"], cfg.hosts["b"]
    assert (a.host, a.user, a.port, a.label) == ("10.0.0.2", "deploy", 22, "a")
    assert (b.host, b.user, b.port, b.lock_file) == ("10.0.0.3", "ops", 2222, cfg.server.lock_file)
    assert [s.label for s in cfg.targets(web)] == ["b", "a"]  # the service's own order: the roll's order
    assert web.hosts_at_once == 2


def test_a_service_without_hosts_runs_on_the_server_host():
    cfg = parse(GOOD)
    assert cfg.targets(cfg.services["web"]) == [cfg.server] and cfg.server.label == "vps.example"


def test_a_host_named_under_hosts_and_as_server_is_one_host_for_status():
    text = HOSTS.replace('host = "vps.example"', 'host = "10.0.0.2"').replace(
        '[services.web]\nhosts = ["b", "a"]',
        '[services.api]\ndir = "/x"\nproject = "api"\ncompose_files = ["c.yml"]\n'
        'units = ["api-{color}"]\nports = { blue = 9000, green = 9001 }\n\n[services.web]\nhosts = ["b", "a"]',
    )
    cfg = parse(text)
    rows = cfg.by_host(list(cfg.services.values()))
    assert [(server.host, [s.name for s in svcs]) for server, svcs in rows] == [
        ("10.0.0.2", ["api", "web"]),
        ("10.0.0.3", ["web"]),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('hosts = ["b", "a"]', 'hosts = ["b", "c"]'), "services.web.hosts[1]: 'c' is not a host (known: a, b)"),
        (('hosts = ["b", "a"]', 'hosts = ["a", "a"]'), "services.web.hosts: a host is named twice"),
        (("[hosts.a]", "[hosts.A]"), "hosts.A: a host name is lowercase letters, digits, '-' and '_'"),
        (("port = 2222", "port = 0"), "hosts.b.port: 0 is not a TCP port"),
        (('host = "10.0.0.2"', 'hots = "10.0.0.2"'), "hosts.a"),
        (("hosts_at_once = 2", "hosts_at_once = 0"), "services.web.hosts_at_once"),
    ],
)
def test_host_errors_name_the_key_path(change, message):
    assert err(HOSTS.replace(*change)).startswith(message)


def test_hosts_without_a_hosts_table_say_how_to_add_one():
    text = GOOD.replace("[services.web]\n", '[services.web]\nhosts = ["vps2"]\n')
    assert err(text) == "services.web.hosts[0]: 'vps2' is not a host (known: none: add a [hosts.NAME] table)"


def test_the_sandbox_services_file_for_three_hosts_loads():
    cfg = config.load(ROOT / "sandbox" / "services-hosts.toml")
    assert [s.host for s in cfg.targets(cfg.services["civic-observer"])] == ["10.200.0.2", "10.200.0.3", "10.200.0.4"]
    assert [s.label for s in cfg.targets(cfg.services["corkboard-django"])] == ["vps2", "vps3"]
    assert len(cfg.by_host(list(cfg.services.values()))) == 3

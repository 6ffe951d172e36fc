"""No proof, no switch — against the sandbox's real Caddy. Each test changes Caddy's running config
through the admin API (the `admin` fixture puts it back afterwards, even on failure)."""

from __future__ import annotations

import time

import httpx

from publicworks import caddy, config
from tests.support.load import Load
from tests.support.sandbox import (
    ROOT,
    SITES,
    VPS_IP,
    Watched,
    answer,
    deploy,
    poll,
    start_daemons,
    stop_daemon,
)

CO = "civic-observer"
ADMIN = "http://localhost:2019"
BLUE_A = {
    "civic-observer-web-blue-1": "a1c0ffe",
    "civic-observer-worker-blue-1": "a1c0ffe",
    "civic-observer-db-1": "15",
}


def handler_url(admin) -> str:
    svc = config.load(ROOT / "sandbox" / "services.toml").services[CO]
    both, _ = caddy.service_handlers(admin.get(f"{ADMIN}/config/").json(), svc)
    return f"{ADMIN}{both[0].url}"


def serving_blue(vps) -> None:
    assert deploy("a1c0ffe").code == 0
    poll(lambda: "version=a1c0ffe" in answer(CO), what="Caddy to serve blue")


def test_caddy_not_proxying_the_new_color_refuses_with_zero_failed_requests(vps, admin):
    """civic.band's Caddyfile today: civic.observer proxied to 8888 only (the design's problem #1)."""
    serving_blue(vps)
    assert admin.patch(f"{handler_url(admin)}/upstreams", json=[{"dial": "127.0.0.1:8888"}]).status_code == 200
    with Load(f"http://{VPS_IP}/", SITES[CO], clients=6, cookie_clients=3, rate=100) as load:
        time.sleep(1)
        r = deploy("b2beef0")
        time.sleep(3)  # past the next health check: still served
    assert r.code == 1, r.text
    assert "no reverse_proxy in Caddy's running config lists 127.0.0.1:8889 (green)" in r.out
    assert "reverse_proxy 127.0.0.1:8888 127.0.0.1:8889 {" in r.out  # what to add to the template
    assert vps.running(CO) == BLUE_A and vps.state(CO)["active"] == "blue"
    report = load.report()
    assert len(report.samples) > 200 and report.failures == [], report.describe()


def test_a_health_uri_that_differs_from_the_services_is_refused(vps, admin):
    serving_blue(vps)
    url = f"{handler_url(admin)}/health_checks/active/uri"
    assert admin.patch(url, json="/healthz").status_code == 200
    r = deploy("b2beef0")
    assert r.code == 1, r.text
    assert "checks health_uri /healthz, but services.toml's health_path for civic-observer is /health/" in r.out
    assert vps.running(CO) == BLUE_A


def test_caddy_stopped_is_a_clear_refusal_before_anything_changes(vps):
    serving_blue(vps)
    stop_daemon("caddy")
    try:
        r = deploy("b2beef0")
    finally:
        start_daemons()
    assert r.code == 1
    assert "Caddy's admin API (localhost:2019 on the server) did not answer" in r.out
    assert "step=inspect" in vps.history()[-1] and vps.running(CO) == BLUE_A


def test_a_config_load_just_before_the_switch_is_no_false_proof(vps, admin):
    """Caddy's checks fail for green (its expected body never matches) while the tunnel check passes.
    A /load right as green turns healthy makes Caddy report every upstream healthy for up to 10 s:
    that reading must not be taken for proof."""
    serving_blue(vps)
    url = handler_url(admin)
    handler = admin.get(url).json()
    handler["health_checks"]["active"]["expect_body"] = "never-in-any-answer"
    assert admin.patch(url, json=handler).status_code == 200
    full = admin.get(f"{ADMIN}/config/").json()
    w = Watched("deploy", "--service", CO, "--version", "b2beef0", "--canary", "0")
    w.wait_for("[7/10] switch")
    assert admin.post(f"{ADMIN}/load", json=full).status_code == 200  # the same config, loaded anew
    r = w.finish()
    assert r.code == 1, r.out
    assert "Caddy did not call green (port 8889) healthy" in r.out
    assert "Caddy's config changed 1 time(s) meanwhile" in r.out
    assert "step=switch" in vps.history()[-1]
    assert {n for n in vps.running(CO)} == set(BLUE_A)  # green stopped again, blue never stopped


def test_a_tls_site_is_asked_where_caddy_routes_and_the_switch_follows_at_once(vps, admin):
    """civic.band's sites are HTTPS: Caddy is asked through its TLS listener (TLS over the SSH channel)."""
    serving_blue(vps)
    config = admin.get(f"{ADMIN}/config/").json()
    srv = config["apps"]["http"]["servers"]["srv0"]
    srv["listen"] = [":8443"]
    srv.pop("automatic_https", None)
    config["apps"]["tls"] = {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}}
    config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    assert admin.post(f"{ADMIN}/load", json=config).status_code == 200

    def over_tls() -> str:
        try:
            with httpx.Client(verify=False, timeout=5, trust_env=False) as c:
                r = c.get(
                    f"https://{VPS_IP}:8443/", headers={"Host": SITES[CO]}, extensions={"sni_hostname": SITES[CO]}
                )
            return r.text if r.status_code == 200 else ""
        except httpx.HTTPError:
            return ""

    poll(lambda: "version=a1c0ffe" in over_tls(), what="Caddy to serve over TLS")
    time.sleep(3)  # past the first checks after the load
    r = deploy("b2beef0")
    assert r.code == 0, r.text
    assert "(Caddy routed to it: " in r.out, r.out
    assert "version=b2beef0" in over_tls()

"""Asking Caddy where it routes: the site, listener and cookie read from its running config (pure)."""

from __future__ import annotations

import copy

from publicworks import caddy
from publicworks.pin import NOT_A_DIAL, Pin, cookie_value, pin

# Caddy 2.6's running config for a Caddyfile site `civic.observer { import civic-observer }` (HTTPS on :443),
# as the admin API returns it.
PROXY = {
    "handler": "reverse_proxy",
    "health_checks": {"active": {"interval": 2000000000, "timeout": 2000000000, "uri": "/health/"}},
    "load_balancing": {"selection_policy": {"policy": "cookie"}, "try_duration": 5000000000},
    "upstreams": [{"dial": "127.0.0.1:8888"}, {"dial": "127.0.0.1:8889"}],
}
CONFIG = {
    "apps": {
        "http": {
            "servers": {
                "srv0": {
                    "listen": [":443"],
                    "routes": [
                        {
                            "match": [{"host": ["civic.observer", "www.civic.observer"]}],
                            "handle": [{"handler": "subroute", "routes": [{"handle": [PROXY]}]}],
                            "terminal": True,
                        }
                    ],
                }
            }
        }
    }
}


def ask(config) -> tuple[Pin | None, str]:
    (h,) = caddy.handlers(config)
    return pin(config, h, "/health/")


def test_a_tls_site_is_asked_over_https_on_the_servers_own_listener():
    p, why = ask(CONFIG)
    assert why == "" and p is not None
    assert (p.url, p.host, p.cookie) == ("https://127.0.0.1:443/health/", "civic.observer", "lb")
    # Caddy 2.6 sets hex(HMAC-SHA256(secret, dial)); "" when the Caddyfile gives no secret
    assert p.values["127.0.0.1:8888"] == "9ab5d8e421a754d990b553215b126824ff7c6dca10342007dcde680fab5d4ba3"


def test_a_plain_http_server_a_secret_and_a_cookie_name_are_honoured():
    config = copy.deepcopy(CONFIG)
    server = config["apps"]["http"]["servers"]["srv0"]
    server["listen"] = ["tcp/10.0.0.5:80"]
    server["automatic_https"] = {"disable": True}
    server["routes"][0]["handle"][0]["routes"][0]["handle"][0]["load_balancing"]["selection_policy"] = {
        "policy": "cookie",
        "name": "color",
        "secret": "s3cret",
    }
    p, _ = ask(config)
    assert p is not None and p.url == "http://10.0.0.5:80/health/" and p.cookie == "color"
    assert p.values["127.0.0.1:8888"] == cookie_value("s3cret", "127.0.0.1:8888") != cookie_value("", "127.0.0.1:8888")


def test_what_cannot_be_asked_says_why():
    other = copy.deepcopy(CONFIG)
    proxy = other["apps"]["http"]["servers"]["srv0"]["routes"][0]["handle"][0]["routes"][0]["handle"][0]
    proxy["load_balancing"]["selection_policy"] = {"policy": "round_robin"}
    assert ask(other) == (None, "its reverse_proxy does not use lb_policy cookie")
    nohost = copy.deepcopy(CONFIG)
    nohost["apps"]["http"]["servers"]["srv0"]["routes"][0]["match"] = [{"host": ["*.civic.observer"]}]
    assert ask(nohost) == (None, "no listener and host name lead to its reverse_proxy")


def test_a_set_cookie_names_the_upstream_caddy_chose():
    p, _ = ask(CONFIG)
    assert p is not None
    green = p.values["127.0.0.1:8889"]
    assert p.chosen(f"lb={green}; Path=/") == "127.0.0.1:8889"
    assert p.chosen(f"other={green}; Path=/") is None  # another cookie
    assert p.chosen(f"lb={NOT_A_DIAL}") is None and p.chosen(None) is None

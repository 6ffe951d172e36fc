"""The rendered Caddy config, and finding a service's upstreams in Caddy's running JSON config."""

from publicworks import caddy

RUNNING = {
    "apps": {
        "http": {
            "servers": {
                "srv0": {
                    "routes": [
                        {
                            "match": [{"host": ["civic.observer"]}],
                            "handle": [
                                {
                                    "handler": "subroute",
                                    "routes": [
                                        {
                                            "handle": [
                                                {
                                                    "handler": "reverse_proxy",
                                                    "upstreams": [
                                                        {"dial": "127.0.0.1:8888"},
                                                        {"dial": "127.0.0.1:8889"},
                                                    ],
                                                    "health_checks": {
                                                        "active": {"interval": 2000000000, "uri": "/health/"}
                                                    },
                                                }
                                            ]
                                        }
                                    ],
                                }
                            ],
                        },
                        {
                            "match": [{"host": ["django.civic.band"]}],
                            "handle": [
                                {
                                    "handler": "subroute",
                                    "routes": [
                                        {
                                            "handle": [
                                                {"handler": "reverse_proxy", "upstreams": [{"dial": "localhost:8000"}]}
                                            ]
                                        }
                                    ],
                                }
                            ],
                        },
                    ]
                }
            }
        }
    }
}


def test_render_prints_the_snippet_and_both_colors_per_service(cfg):
    text = caddy.render(cfg)
    assert text.splitlines()[3:11] == [
        "(health-proxy) {",
        "\tlb_policy cookie",
        "\tlb_try_duration 5s",
        "\tlb_try_interval 250ms",
        "\thealth_uri /health/",
        "\thealth_interval 2s",
        "\thealth_timeout 2s",
        "}",
    ]
    assert (
        "(civic-observer) {\n\treverse_proxy 127.0.0.1:8888 127.0.0.1:8889 {\n\t\timport health-proxy\n\t}\n}" in text
    )
    assert "reverse_proxy 127.0.0.1:40001 127.0.0.1:40002 {" in text
    assert "lb_retries" not in text


def test_render_one_service(cfg):
    text = caddy.render(cfg, "corkboard-django")
    assert "(health-proxy)" in text and "(corkboard-django)" in text and "(civic-observer)" not in text


def test_handlers_and_service_matching(cfg):
    hs = caddy.handlers(RUNNING)
    assert [h.url for h in hs] == [
        "/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0",
        "/config/apps/http/servers/srv0/routes/1/handle/0/routes/0/handle/0",
    ]
    both, one = caddy.service_handlers(RUNNING, cfg.services["civic-observer"])
    assert (len(both), one) == (1, [])
    both, one = caddy.service_handlers(RUNNING, cfg.services["corkboard-django"])
    assert both == [] and one[0].ports() == {8000}  # the design's problem #1
    assert caddy.service_handlers(RUNNING, cfg.services["corkboard-datasette"]) == ([], [])


def test_port_of_only_loopback_dials():
    assert [caddy.port_of(d) for d in ("127.0.0.1:8888", "localhost:8000", "[::1]:9", "10.0.0.1:8888", "x")] == [
        8888,
        8000,
        9,
        None,
        None,
    ]


def test_health_interval_of_a_service_from_the_running_config(cfg):
    assert caddy.health_interval(RUNNING, cfg.services["civic-observer"]) == 2.0
    assert caddy.health_interval(RUNNING, cfg.services["corkboard-django"]) == 30.0  # Caddy's default
    assert caddy.health_interval(RUNNING, cfg.services["corkboard-datasette"]) is None


def test_durations():
    assert [caddy.parse_duration(d) for d in ("2s", "250ms", "1m30s", "1.5s")] == [2.0, 0.25, 90.0, 1.5]
    for bad in ("", "2", "2 s", "s2"):
        try:
            caddy.parse_duration(bad)
        except ValueError:
            continue
        raise AssertionError(bad)

"""Several hosts: the wall time of a deploy (canary 0) of civic-observer on 1 host against the same deploy
on 3 hosts rolled one at a time (hosts_at_once = 1), interleaved, the same moments of Caddy's 10 s
metrics cycle for both. Needs the three-VPS sandbox (./dev bench starts it)."""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.sandbox import ROOT, VPS, poll, pw, pw_env

CO = "civic-observer"
PORTS = {"blue": 8888, "green": 8889}


def _gauge(v: VPS, port: int) -> str:
    out = v.sh("busybox wget -q -O - http://localhost:2019/metrics")
    m = re.search(rf'upstreams_healthy{{upstream="127.0.0.1:{port}"}} (\S+)', out)
    return m.group(1) if m else "?"


def _config(tmp: Path, hosts: list[str]) -> dict[str, str]:
    text = (ROOT / "sandbox" / "services-hosts.toml").read_text()
    text = text.replace('hosts = ["vps1", "vps2", "vps3"]', "hosts = [" + ", ".join(f'"{h}"' for h in hosts) + "]")
    f = tmp / f"services-{len(hosts)}.toml"
    f.write_text(text)
    return pw_env(PUBLICWORKS_CONFIG=str(f))


def bench_hosts(line) -> None:
    fleet = [VPS(1), VPS(2), VPS(3)]
    for v in fleet:
        v.clean()
    tmp = Path(tempfile.mkdtemp())
    envs = {1: _config(tmp, ["vps1"]), 3: _config(tmp, ["vps1", "vps2", "vps3"])}
    first = pw("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0", env=envs[3], timeout=300)
    assert first.code == 0, first.text
    walls: dict[int, list[float]] = {1: [], 3: []}
    switches: dict[int, list[float]] = {1: [], 3: []}
    serving = {v.n: "blue" for v in fleet}
    rng = random.Random(11)
    cycle = ("a1c0ffe", "b2beef0", "c3d00d0")  # every deploy changes the version on every host it touches
    rounds = 6
    for i in range(rounds):
        offset = rng.uniform(0, 10)
        for n in (1, 3):
            version = cycle[(2 * i + (1 if n == 1 else 2)) % 3]
            involved = fleet[:n]
            for v in involved:  # the idle color long stopped, as between two real deploys
                idle = "green" if serving[v.n] == "blue" else "blue"
                poll(lambda v=v, p=PORTS[idle]: _gauge(v, p) == "0", timeout=30, every=0.5, what="Caddy to settle")
            time.sleep(offset)
            r = pw("deploy", "--service", CO, "--version", version, "--canary", "0", env=envs[n], timeout=300)
            assert r.code == 0, r.text
            walls[n].append(r.seconds)
            switches[n] += [float(x) for x in re.findall(r"Caddy saw \w+ healthy ([\d.]+)s after", r.out)]
            for v in involved:
                serving[v.n] = "green" if serving[v.n] == "blue" else "blue"
    med = statistics.median
    ratio = med(walls[3]) / med(walls[1])
    line(
        f"deploy wall time, civic-observer, canary 0, {rounds} each: 1 host median {med(walls[1]):.2f}s, "
        f"3 hosts one at a time median {med(walls[3]):.2f}s: ratio {ratio:.2f} (goal <= 2.80)"
    )
    line(
        f"  of which Caddy's proof per host: median {med(switches[1]):.2f}s (1 host), {med(switches[3]):.2f}s "
        f"(3 hosts); the rest: {med(walls[1]) - med(switches[1]):.2f}s vs "
        f"{med(walls[3]) - 3 * med(switches[3]):.2f}s"
    )
    for v in fleet:
        v.clean()
